"""Notifications through a transactional outbox.

An alert event and its outbox rows are written in one transaction (a subscriber of the alert
events), so a notification goes out if and only if the event committed. A Celery task delivers
pending rows after the commit and beat sweeps up retries; every attempt is recorded.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction

from audit.events import Closed, Event
from audit.store import RecordedEvent
from monitoring.alerting.domain import AlertResolved
from monitoring.alerting.models import Alert, Notification, NotificationAttempt
from monitoring.alerting.notifiers import DeliveryError, notifier

MAX_ATTEMPTS = 12
BATCH = 500


class Delivery(Closed):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after MAX_ATTEMPTS


def notifiers_for(model: str) -> list[str]:
    from monitoring.policies.services import policy_load

    configured = getattr(settings, "NOTIFIERS", {})
    return [name for name in policy_load(model).policy.get("notify", []) if name in configured]


def enqueue_notification(event: Event, recorded: RecordedEvent) -> None:
    """Outbox rows for an alert event just appended (its read model is up to date), one per
    notifier of the model's policy; none while the alert is silenced, except its resolution."""
    alert = Alert.objects.filter(alert_id=recorded.payload["alert_id"]).first()
    if alert is None:
        return
    silenced = alert.silenced_until is not None and alert.silenced_until > dt.datetime.now(dt.UTC)
    if silenced and not isinstance(event, AlertResolved):
        return
    message = {
        "event": recorded.type,
        "seq": recorded.seq,
        "alert_id": str(alert.alert_id),
        "model": alert.model_name,
        "check": alert.check_name,
        "feature": alert.feature,
        "segment": alert.segment,
        "severity": alert.severity,
        "summary": alert.summary,
        "status": alert.status,
    }
    rows = [
        Notification(notifier=name, event_seq=recorded.seq, message=message) for name in notifiers_for(alert.model_name)
    ]
    if rows:
        Notification.objects.bulk_create(rows)
        transaction.on_commit(_deliver_soon, robust=True)  # beat delivers what is left


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
