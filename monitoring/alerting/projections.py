"""The read model of alerts, kept in step with the alert streams, and the outbox rows that
follow each new alert event (a subscriber: in the same transaction, never on a rebuild)."""

from __future__ import annotations

from audit import projections
from audit.envelope import parse_time
from audit.store import RecordedEvent
from monitoring.alerting.domain import (
    AlertAcknowledged,
    AlertEscalated,
    AlertRaised,
    AlertResolved,
    AlertSilenced,
    AlertStatus,
    AlertUpdated,
    status_after,
)
from monitoring.alerting.models import Alert
from monitoring.alerting.outbox import enqueue_notification


def _alert_raised(event: AlertRaised, recorded: RecordedEvent) -> None:
    Alert.objects.create(
        alert_id=event.alert_id,
        model_name=event.model,
        check_name=event.check,
        feature=event.feature or "",
        segment=event.segment or "",
        dedupe_key=event.dedupe_key,
        severity=event.severity,
        summary=event.summary,
        status=status_after(None, event),
        run_id=event.run_id or "",
        window_end=parse_time(event.window_end) if event.window_end else None,
        raised_at=recorded.occurred_at,
        raised_seq=recorded.seq,
        raised_event_id=recorded.event_id,
    )


def _alert_changed(event, recorded: RecordedEvent) -> None:
    alert = Alert.objects.filter(alert_id=event.alert_id).first()
    if alert is None:
        return
    alert.status = status_after(AlertStatus(alert.status), event)
    alert.updated_seq = recorded.seq
    match event:
        case AlertUpdated():
            alert.severity, alert.summary = event.severity, event.summary
            if event.window_end:
                alert.window_end = parse_time(event.window_end)
        case AlertAcknowledged():
            alert.acknowledged_by, alert.acknowledged_at = recorded.actor["id"], recorded.occurred_at
        case AlertResolved():
            alert.resolved_at, alert.resolution = recorded.occurred_at, event.how
        case AlertEscalated():
            alert.escalated_at = recorded.occurred_at
        case AlertSilenced():
            alert.silenced_until = parse_time(event.until)
    alert.save()


ALERTS = projections.register(
    projections.Projection(
        name="monitoring.alerts",
        handlers={
            AlertRaised: _alert_raised,
            **dict.fromkeys(
                [AlertUpdated, AlertAcknowledged, AlertResolved, AlertEscalated, AlertSilenced], _alert_changed
            ),
        },
        models=[Alert],
    )
)
for _kind in (AlertRaised, AlertUpdated, AlertAcknowledged, AlertResolved, AlertEscalated):
    projections.subscribe(_kind, enqueue_notification)
