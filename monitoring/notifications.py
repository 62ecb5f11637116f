"""Notifications through a transactional outbox.

An alert event and its outbox rows are written in one transaction, so a notification goes out
if and only if the event committed. A Celery task delivers pending rows after the commit and
beat sweeps up retries; every attempt is recorded. Notifiers are configured by name in
settings.NOTIFIERS (secrets stay there, never in the log) and chosen per policy
(`"notify": ["ops-webhook", "pagerduty"]`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils.module_loading import import_string

from audit.store import RecordedEvent

ALERT_EVENTS = {
    "monitoring.AlertRaised",
    "monitoring.AlertUpdated",
    "monitoring.AlertAcknowledged",
    "monitoring.AlertResolved",
    "monitoring.AlertEscalated",
}
MAX_ATTEMPTS = 12
TIMEOUT = 10.0


class DeliveryError(Exception):
    pass


class Notifier:
    """Sends one alert event somewhere. `send` raises DeliveryError when it should be retried."""

    def __init__(self, name: str, **options: Any):
        self.name = name
        self.options = options

    def send(self, message: dict[str, Any]) -> str:
        raise NotImplementedError

    def _now(self) -> float:
        return time.time()

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        try:
            response = requests.post(
                url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=TIMEOUT
            )
        except requests.RequestException as error:
            raise DeliveryError(f"{url}: {error}") from error
        if response.status_code >= 300:
            raise DeliveryError(f"{url} answered {response.status_code}: {response.text[:200]}")
        return f"{response.status_code}"


class WebhookNotifier(Notifier):
    """JSON POST signed with HMAC-SHA256 over "<timestamp>.<body>" (X-Driftledger-Signature:
    t=<timestamp>,v1=<hex>), so a receiver can check origin and freshness."""

    def send(self, message: dict[str, Any]) -> str:
        body = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
        stamp = str(int(self._now()))
        digest = hmac.new(self.options["secret"].encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return self._post(self.options["url"], body, {"X-Driftledger-Signature": f"t={stamp},v1={digest}"})


class SlackNotifier(Notifier):
    """A Slack incoming webhook."""

    def send(self, message: dict[str, Any]) -> str:
        text = f"[{message['severity'].upper()}] {message['model']}: {message['summary']} ({message['event']})"
        return self._post(self.options["url"], json.dumps({"text": text}).encode(), {})


class PagerDutyNotifier(Notifier):
    """PagerDuty Events API v2: trigger, acknowledge and resolve one incident per alert,
    identified by a deterministic dedup_key (the alert id)."""

    ACTIONS = {"monitoring.AlertAcknowledged": "acknowledge", "monitoring.AlertResolved": "resolve"}

    def send(self, message: dict[str, Any]) -> str:
        action = self.ACTIONS.get(message["event"], "trigger")
        event: dict[str, Any] = {
            "routing_key": self.options["routing_key"],
            "event_action": action,
            "dedup_key": f"driftledger-{message['alert_id']}",
        }
        if action == "trigger":
            event["payload"] = {
                "summary": f"{message['model']}: {message['summary']}"[:1024],
                "source": f"driftledger/{message['model']}",
                "severity": "critical" if message["severity"] == "critical" else "warning",
                "custom_details": message,
            }
        url = self.options.get("url", "https://events.pagerduty.com/v2/enqueue")
        return self._post(url, json.dumps(event).encode(), {})


class EmailNotifier(Notifier):
    def send(self, message: dict[str, Any]) -> str:
        subject = f"[Driftledger {message['severity']}] {message['model']}: {message['summary']}"[:200]
        body = json.dumps(message, indent=2, sort_keys=True)
        try:
            send_mail(subject, body, self.options.get("sender", settings.DEFAULT_FROM_EMAIL), self.options["to"])
        except OSError as error:
            raise DeliveryError(f"mail: {error}") from error
        return "sent"


def notifiers_for(model: str) -> list[str]:
    from monitoring.services.policies import policy_load

    configured = getattr(settings, "NOTIFIERS", {})
    return [name for name in policy_load(model).policy.get("notify", []) if name in configured]


def enqueue_notifications(events: Iterable[RecordedEvent]) -> int:
    """Outbox rows for the alert events just appended, in the same transaction."""
    from monitoring.models import Alert, Notification

    rows = []
    for event in events:
        if event.type not in ALERT_EVENTS:
            continue
        alert = Alert.objects.filter(alert_id=event.payload["alert_id"]).first()
        if alert is None:
            continue
        if (
            alert.silenced_until
            and alert.silenced_until > dt.datetime.now(dt.UTC)
            and event.type != "monitoring.AlertResolved"
        ):
            continue
        message = {
            "event": event.type,
            "seq": event.seq,
            "alert_id": str(alert.alert_id),
            "model": alert.model_name,
            "check": alert.check_name,
            "feature": alert.feature,
            "segment": alert.segment,
            "severity": alert.severity,
            "summary": alert.summary,
            "status": alert.status,
        }
        rows += [
            Notification(notifier=name, event_seq=event.seq, message=message)
            for name in notifiers_for(alert.model_name)
        ]
    if rows:
        Notification.objects.bulk_create(rows)
        transaction.on_commit(_deliver_soon)
    return len(rows)


def _deliver_soon() -> None:
    from monitoring.tasks import deliver_notifications

    deliver_notifications.delay()


def deliver_pending(now: dt.datetime | None = None) -> int:
    """Try every pending notification that is due; returns how many were sent."""
    from monitoring.models import Notification, NotificationAttempt

    moment = now or dt.datetime.now(dt.UTC)
    sent = 0
    due = Notification.objects.filter(status="pending", next_attempt_at__lte=moment).order_by("id")
    for row_id in list(due.values_list("id", flat=True)[:500]):
        with transaction.atomic():
            row = Notification.objects.select_for_update(skip_locked=True).filter(id=row_id, status="pending").first()
            if row is None:
                continue
            notifier = _notifier(row.notifier)
            try:
                outcome = notifier.send(row.message)
            except (DeliveryError, KeyError) as error:
                row.attempts += 1
                NotificationAttempt.objects.create(notification=row, ok=False, detail=str(error)[:2000])
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                else:
                    row.next_attempt_at = moment + dt.timedelta(seconds=min(2**row.attempts, 3600))
                row.save()
                continue
            row.attempts += 1
            row.status = "sent"
            row.save()
            NotificationAttempt.objects.create(notification=row, ok=True, detail=outcome)
            sent += 1
    return sent


def _notifier(name: str) -> Notifier:
    config = dict(settings.NOTIFIERS[name])
    return import_string(config.pop("class"))(name, **config)
