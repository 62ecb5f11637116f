"""Celery tasks of remediation: execution of approved requests, and the deadlines beat watches."""

from __future__ import annotations

from celery import shared_task

from monitoring.tasks import DURABLE, RETRIED

EXECUTION_TIME_LIMIT = 600  # seconds: the worker is killed past it; beat then fails the execution


@shared_task(**DURABLE, time_limit=EXECUTION_TIME_LIMIT)
def execute_remediation(request_id: str) -> str:
    """Carry out an approved request; a redelivery of a finished one changes nothing."""
    from monitoring.remediation.domain import RemediationState
    from monitoring.remediation.services import remediation_load, remediation_run

    state = remediation_load(request_id).state
    if state is not RemediationState.APPROVED:
        return str(state)
    return str(remediation_run(request_id).state)


@shared_task(**RETRIED)
def remediation_deadlines() -> dict:
    """Expire undecided requests past their deadline; alert on overdue break-glass reviews;
    expire approved requests never carried out before their approval lapsed; queue again the
    others whose execution was never queued (the broker was down); fail executions whose worker
    was lost, and retrains whose pipeline never reported."""
    from monitoring.remediation.services import (
        break_glass_overdue,
        remediations_expire,
        remediations_lapsed,
        remediations_stalled,
        remediations_stranded,
    )

    return {
        "expired": remediations_expire(),
        "overdue_reviews": len(break_glass_overdue()),
        "lapsed": len(remediations_lapsed()),
        "requeued": len(remediations_stranded(queue=True)),
        "stalled": len(remediations_stalled()),
    }
