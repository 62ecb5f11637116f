"""The app's models module, where Django looks for them: each concept keeps its read models in
its own package (monitoring/<concept>/models.py); importing them here registers them."""

from monitoring.alerting.models import Alert, Notification, NotificationAttempt
from monitoring.ingestion.models import Batch, IdempotentResponse
from monitoring.registry.models import Deployment, ModelApiKey, ModelVersion, RegisteredModel
from monitoring.remediation.models import Remediation
from monitoring.runs.models import Run, RunFanout, RunPart

__all__ = [
    "Alert",
    "Batch",
    "Deployment",
    "IdempotentResponse",
    "ModelApiKey",
    "ModelVersion",
    "Notification",
    "NotificationAttempt",
    "RegisteredModel",
    "Remediation",
    "Run",
    "RunFanout",
    "RunPart",
]
