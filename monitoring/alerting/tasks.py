"""Celery tasks of alerting: delivery of the outbox and escalation, both swept by beat."""

from __future__ import annotations

from celery import shared_task

from monitoring.tasks import RETRIED


@shared_task(**RETRIED)
def deliver_notifications() -> int:
    """Send what the outbox holds and is due (after each alert commit, and every minute)."""
    from monitoring.alerting.outbox import deliver_pending

    return deliver_pending()


@shared_task(**RETRIED)
def escalate_alerts() -> int:
    """Escalate alerts nobody acknowledged within their model policy's escalate_after_minutes."""
    from monitoring.alerting.services import alerts_escalate_by_policy

    return len(alerts_escalate_by_policy())


@shared_task(**RETRIED)
def check_heartbeats() -> int:
    """Alert on each model silent past its policy's heartbeat interval; resolve those that reported."""
    from monitoring.alerting.heartbeat import heartbeats_check

    return len(heartbeats_check())
