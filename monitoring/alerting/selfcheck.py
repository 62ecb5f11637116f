"""Tell people when the scheduled full verification of the audit log fails: one message to every
configured notifier (settings.NOTIFIERS), whatever the models' policies name, since the log is
everyone's. Named in settings.AUDIT_VERIFY_FAILURE_HANDLERS; audit.selfcheck calls it.

Sent at once, not through the outbox (whose rows belong to alert events of the log): a message
that does not get through is logged, the next scheduled verification fails and sends again, and
Prometheus alerts on the same outcome (AuditLogVerificationFailed)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from audit.models import LogVerification
from monitoring.alerting.notifiers import notifier

logger = logging.getLogger(__name__)

EVENT = "log_verification_failed"


def notify_log_verification_failed(verification: LogVerification) -> dict[str, str]:
    """Send the failure to every configured notifier; one that fails is logged and does not stop
    the others. Returns each notifier's outcome by name."""
    message = log_verification_message(verification)
    outcomes = {}
    for name in getattr(settings, "NOTIFIERS", {}):
        try:
            outcomes[name] = notifier(name).send(message)
        except Exception as error:  # noqa: BLE001 - DeliveryError, or a notifier configured wrongly
            logger.error("notifier %s could not send the failed log verification %s: %s", name, verification.id, error)
            outcomes[name] = f"failed: {error}"
    return outcomes


def log_verification_message(verification: LogVerification) -> dict[str, Any]:
    """The message in the shape notifiers expect of an alert's (event, alert_id, model, severity,
    summary); alert_id is fixed so that a pager groups repeated failures into one incident."""
    return {
        "event": EVENT,
        "alert_id": "audit-log-verification",
        "model": "audit-log",
        "severity": "critical",
        "summary": f"the full verification of the audit log failed: {verification.problem}",
        "verification_id": verification.id,
        "started_at": verification.started_at.isoformat(),
        "finished_at": verification.finished_at.isoformat() if verification.finished_at else None,
        "events_checked": verification.events_checked,
        "failed_seq": verification.failed_seq,
        "problem": verification.problem,
    }
