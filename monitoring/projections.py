"""Projections that keep the monitoring read models in step with the log."""

from audit import projections
from audit.store import RecordedEvent
from monitoring.models import Alert, RegisteredModel


def _model_registered(event: RecordedEvent) -> None:
    payload = event.payload
    RegisteredModel.objects.create(
        name=payload["name"],
        task=payload["task"],
        owner=payload["owner"],
        description=payload.get("description", ""),
        registered_at=event.occurred_at,
        registered_seq=event.seq,
    )


def _alert_raised(event: RecordedEvent) -> None:
    payload = event.payload
    Alert.objects.create(
        alert_id=payload["alert_id"],
        model_name=payload["model"],
        check_name=payload["check"],
        severity=payload["severity"],
        summary=payload["summary"],
        raised_at=event.occurred_at,
        raised_seq=event.seq,
    )


REGISTRY = projections.register(
    projections.Projection(
        name="monitoring.registry",
        handlers={"monitoring.ModelRegistered": _model_registered},
        models=[RegisteredModel],
    )
)
ALERTS = projections.register(
    projections.Projection(
        name="monitoring.alerts",
        handlers={"monitoring.AlertRaised": _alert_raised},
        models=[Alert],
    )
)
