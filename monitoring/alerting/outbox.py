"""Notifications through a transactional outbox.

An alert event and its outbox rows are written in one transaction (a subscriber of the alert
events), so a notification goes out if and only if the event committed. A Celery task delivers
pending rows after the commit and beat sweeps up retries; every attempt is recorded.

One degradation notifies once: the alerts a run raised are one incident (the run's id), and the
events of one kind (raised, updated, acknowledged, resolved, escalated) of one incident that are
not yet sent travel in one message, which lists every alert and carries the run's diagnosis.
Alerts that no run raised (another system's, a heartbeat) are an incident each.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import transaction

from audit.events import Closed, Event
from audit.store import RecordedEvent
from monitoring.alerting.domain import AlertResolved, AlertStatus
from monitoring.alerting.models import Alert, Notification, NotificationAttempt
from monitoring.alerting.notifiers import DeliveryError, notifier
from monitoring.runs.domain import Level
from monitoring.runs.models import Run

MAX_ATTEMPTS = 12
BATCH = 500
SUMMARISED = 5  # alerts named in an incident's summary; the message lists them all


class Delivery(Closed):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after MAX_ATTEMPTS


def notifiers_for(model: str) -> list[str]:
    from monitoring.policies.services import policy_load

    configured = getattr(settings, "NOTIFIERS", {})
    return [name for name in policy_load(model).policy.get("notify", []) if name in configured]


def enqueue_notification(event: Event, recorded: RecordedEvent) -> None:
    """The outbox row of each notifier of the model's policy for an alert event just appended
    (its read model is up to date): a new row, or the incident's row of that event that waits
    to be sent; nothing while the alert is silenced, except its resolution."""
    alert = Alert.objects.filter(alert_id=recorded.payload["alert_id"]).first()
    if alert is None:
        return
    silenced = alert.silenced_until is not None and alert.silenced_until > dt.datetime.now(dt.UTC)
    if silenced and not isinstance(event, AlertResolved):
        return
    item = {
        "alert_id": str(alert.alert_id),
        "check": alert.check_name,
        "feature": alert.feature,
        "segment": alert.segment,
        "severity": alert.severity,
        "summary": alert.summary,
        "status": alert.status,
    }
    incident = f"run:{alert.run_id}" if alert.run_id else f"alert:{alert.alert_id}"
    if Notification.objects.filter(incident="", message__alert_id=str(alert.alert_id)).exists():
        incident = f"alert:{alert.alert_id}"  # notified before incidents: a receiver knows it by its own id
    queued = False
    for name in notifiers_for(alert.model_name):
        pending = (
            Notification.objects.select_for_update(skip_locked=True)  # one being sent: a new row, never a wait
            .filter(notifier=name, incident=incident, status=Delivery.PENDING, attempts=0, message__event=recorded.type)
            .first()
        )
        if pending is None:
            pending = Notification(notifier=name, event_seq=recorded.seq, incident=incident, message={})
        alerts = [*(a for a in pending.message.get("alerts", []) if a["alert_id"] != item["alert_id"]), item]
        pending.message = incident_message(recorded.type, pending.event_seq, alert.model_name, incident, alerts)
        pending.save()
        queued = True
    if queued:
        transaction.on_commit(_deliver_soon, robust=True)  # beat delivers what is left


def incident_message(event: str, seq: int, model: str, incident: str, alerts: list[dict]) -> dict:
    """One message for the alerts of an incident: the first alert's fields (what a receiver of
    one alert reads), the worst severity, a summary naming each alert, the run's diagnosis, and
    how many of the incident's alerts are still open, and still unacknowledged."""
    order = [level.value for level in Level]
    kind, _, ident = incident.partition(":")
    members = Alert.objects.filter(run_id=ident) if kind == "run" else Alert.objects.filter(alert_id=ident)
    diagnosis = _diagnosis(ident) if kind == "run" else None
    found = f"{diagnosis['cause'].replace('_', ' ')} ({diagnosis['scope']}): " if diagnosis else ""
    if len(alerts) == 1:
        summary = found + alerts[0]["summary"]
    else:
        shown = "; ".join(a["summary"] for a in alerts[:SUMMARISED])
        more = f"; and {len(alerts) - SUMMARISED} more" if len(alerts) > SUMMARISED else ""
        summary = f"{found}{len(alerts)} alerts of the incident of run {ident[:8]}: {shown}{more}"
    return {
        **alerts[0],
        "event": event,
        "seq": seq,
        "model": model,
        "incident": incident,
        "severity": max((a["severity"] for a in alerts), key=order.index),
        "summary": summary,
        "diagnosis": diagnosis,
        "alerts": alerts,
        "open_alerts": members.exclude(status=AlertStatus.RESOLVED).count(),
        "unacknowledged_alerts": members.filter(status=AlertStatus.OPEN).count(),
    }


def _diagnosis(run_id: str) -> dict | None:
    """The run's diagnosis (cause and scope), when the run is known."""
    try:
        key = uuid.UUID(run_id)
    except ValueError:
        return None
    found = Run.objects.filter(run_id=key).values_list("diagnosis", flat=True).first()
    return {"cause": found["cause"], "scope": found["scope"]} if found else None


def _deliver_soon() -> None:
    from monitoring.alerting.tasks import deliver_notifications

    deliver_notifications.delay()


def deliver_pending(now: dt.datetime | None = None) -> int:
    """Try every pending notification that is due; returns how many were sent."""
    moment = now or dt.datetime.now(dt.UTC)
    sent = 0
    due = Notification.objects.filter(status=Delivery.PENDING, next_attempt_at__lte=moment).order_by("id")
    for row_id in list(due.values_list("id", flat=True)[:BATCH]):
        with transaction.atomic():
            row = (
                Notification.objects.select_for_update(skip_locked=True)
                .filter(id=row_id, status=Delivery.PENDING)
                .first()
            )
            if row is None:
                continue
            row.attempts += 1
            try:
                outcome = notifier(row.notifier).send(row.message)
            except (DeliveryError, KeyError) as error:
                NotificationAttempt.objects.create(notification=row, ok=False, detail=str(error)[:2000])
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = Delivery.FAILED
                else:
                    row.next_attempt_at = moment + dt.timedelta(seconds=min(2**row.attempts, 3600))
                row.save()
                continue
            row.status = Delivery.SENT
            row.save()
            NotificationAttempt.objects.create(notification=row, ok=True, detail=outcome)
            sent += 1
    return sent
