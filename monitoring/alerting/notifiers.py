"""Notifiers: where an alert's events are sent (webhook, Slack, PagerDuty, email), configured
by name in settings.NOTIFIERS (secrets stay there, never in the log) and chosen per policy
(`"notify": ["ops-webhook", "pagerduty"]`). The outbox (outbox.py) decides when."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

from monitoring.alerting.domain import AlertAcknowledged, AlertResolved

TIMEOUT = 10.0
SIGNATURE_HEADER = "X-Driftledger-Signature"


def webhook_signature(secret: str, body: bytes, stamp: str) -> str:
    """`t=<stamp>,v1=<hex HMAC-SHA256 over "<stamp>.<body>">`: origin and freshness for a
    receiver, the same for notifications and for the training pipeline in both directions."""
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def webhook_signature_valid(secret: str, body: bytes, header: str, *, now: float, max_age: int = 300) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp = parts.get("t", "")
    if not secret or not stamp.isdigit() or abs(now - int(stamp)) > max_age:
        return False
    return hmac.compare_digest(header.encode(), webhook_signature(secret, body, stamp).encode())


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
        signature = webhook_signature(self.options["secret"], body, str(int(self._now())))
        return self._post(self.options["url"], body, {SIGNATURE_HEADER: signature})


class SlackNotifier(Notifier):
    """A Slack incoming webhook."""

    def send(self, message: dict[str, Any]) -> str:
        text = f"[{message['severity'].upper()}] {message['model']}: {message['summary']} ({message['event']})"
        return self._post(self.options["url"], json.dumps({"text": text}).encode(), {})


class PagerDutyNotifier(Notifier):
    """PagerDuty Events API v2: trigger, acknowledge and resolve one incident per Driftledger
    incident (the alerts of one run), identified by a deterministic dedup_key; it is acknowledged
    once every open alert of it is, and resolved once none is open."""

    ACTIONS = {AlertAcknowledged.type_name: "acknowledge", AlertResolved.type_name: "resolve"}

    def send(self, message: dict[str, Any]) -> str:
        action = self.ACTIONS.get(message["event"], "trigger")
        if action == "resolve" and message.get("open_alerts"):
            return f"kept open: {message['open_alerts']} alert(s) of the incident are open"
        if action == "acknowledge" and message.get("unacknowledged_alerts"):
            return f"not acknowledged: {message['unacknowledged_alerts']} alert(s) of the incident are not"
        event: dict[str, Any] = {
            "routing_key": self.options["routing_key"],
            "event_action": action,
            "dedup_key": _dedup_key(message),
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


def _dedup_key(message: dict[str, Any]) -> str:
    """A run's incident by its run; an alert no run raised, or notified before incidents, by its
    own id (the key PagerDuty has known it by)."""
    incident = message.get("incident") or ""
    return f"driftledger-{incident}" if incident.startswith("run:") else f"driftledger-{message['alert_id']}"


class EmailNotifier(Notifier):
    def send(self, message: dict[str, Any]) -> str:
        subject = f"[Driftledger {message['severity']}] {message['model']}: {message['summary']}"[:200]
        body = json.dumps(message, indent=2, sort_keys=True)
        try:
            send_mail(subject, body, self.options.get("sender", settings.DEFAULT_FROM_EMAIL), self.options["to"])
        except OSError as error:
            raise DeliveryError(f"mail: {error}") from error
        return "sent"


def notifier(name: str) -> Notifier:
    config = dict(settings.NOTIFIERS[name])
    return import_string(config.pop("class"))(name, **config)
