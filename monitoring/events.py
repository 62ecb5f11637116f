"""Event types of the monitoring domain (schema 1). A released type never changes meaning."""

from audit import registry

NoneType = type(None)

MODEL_REGISTERED = registry.register(
    "monitoring.ModelRegistered",
    schema=1,
    required={"name": str, "task": str, "owner": str, "data_schema": dict},
    optional={"description": str},
    description="A model is put under monitoring.",
)
RUN_STARTED = registry.register(
    "monitoring.RunStarted",
    schema=1,
    required={"run_id": str, "model": str, "policy_version": int, "window": dict},
    description="A monitoring run begins on a window of the model's data.",
)
RUN_COMPLETED = registry.register(
    "monitoring.RunCompleted",
    schema=1,
    required={"run_id": str, "model": str, "status": str, "checks": list},
    optional={"result_digest": str, "input_digests": list},
    description="A monitoring run finished; per check: statistic, p-value or distance, threshold, status.",
)
THRESHOLD_CHANGED = registry.register(
    "monitoring.ThresholdChanged",
    schema=1,
    required={"model": str, "check": str, "metric": str, "previous": (float, NoneType), "new": float},
    optional={"feature": str, "level": str},
    description="A monitoring threshold is changed; the reason is in the envelope.",
)
ALERT_RAISED = registry.register(
    "monitoring.AlertRaised",
    schema=1,
    required={"alert_id": str, "model": str, "check": str, "severity": str, "summary": str},
    optional={"feature": str, "segment": str, "run_id": str},
    description="A check crossed its threshold.",
)
REMEDIATION_REQUESTED = registry.register(
    "monitoring.RemediationRequested",
    schema=1,
    required={"request_id": str, "model": str, "action": str, "parameters": dict, "evidence": list},
    description="Someone asks for a rollback, retraining or threshold change; evidence cites events.",
)
REMEDIATION_APPROVED = registry.register(
    "monitoring.RemediationApproved",
    schema=1,
    required={"request_id": str, "signer_name": str, "signed_at": str, "meaning": str},
    description="An approver signs the request (21 CFR 11.50: printed name, time, meaning).",
)
