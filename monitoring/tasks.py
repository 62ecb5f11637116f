"""Celery tasks of the monitoring domain: thin, idempotent, retried on infrastructure errors."""

from __future__ import annotations

import datetime as dt

import psycopg
from celery import shared_task
from django.db import InterfaceError, OperationalError

from audit.envelope import format_time, parse_time
from monitoring.models import RegisteredModel, Run
from monitoring.services.policies import policy_load
from monitoring.services.runs import run_execute

# Worth retrying: the database or the network went away. A ProgrammingError is not.
INFRASTRUCTURE_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError, ConnectionError)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
    soft_time_limit=540,
    time_limit=600,
)
def run_monitoring(model: str, start: str, end: str) -> dict:
    """One run of the model's policy on [start, end). Idempotent: a redelivery records nothing twice."""
    outcome = run_execute(model=model, start=parse_time(start), end=parse_time(end))
    return {"run_id": outcome.run_id, "status": outcome.status, "recorded_now": outcome.recorded_now}


@shared_task
def schedule_due_runs(now: str | None = None) -> list[str]:
    """Beat calls this every minute: each active model whose policy has a schedule gets a run of
    its latest complete period (windows aligned to the schedule), once."""
    moment = parse_time(now) if now else dt.datetime.now(dt.UTC)
    queued = []
    for model in RegisteredModel.objects.filter(retired=False).values_list("name", flat=True):
        policy = policy_load(model)
        every = policy.policy["schedule"].get("every_minutes")
        if not every:
            continue
        period = dt.timedelta(minutes=every)
        epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        end = epoch + ((moment - epoch) // period) * period
        start = _window_start(model, policy.policy["window"], end)
        if start is None:
            continue
        if Run.objects.filter(
            model_name=model, window_start=start, window_end=end, policy_version=policy.version
        ).exists():
            continue
        run_monitoring.delay(model, format_time(start), format_time(end))
        queued.append(model)
    return queued


def _window_start(model: str, window: dict, end: dt.datetime) -> dt.datetime | None:
    if "hours" in window:
        return end - dt.timedelta(hours=window["hours"])
    from monitoring.selectors import last_rows_start

    return last_rows_start(model=model, end=end, rows=window["last_rows"])


@shared_task(autoretry_for=INFRASTRUCTURE_ERRORS, retry_backoff=True, max_retries=10)
def deliver_notifications() -> int:
    """Send what the outbox holds and is due (after each alert commit, and every minute)."""
    from monitoring.notifications import deliver_pending

    return deliver_pending()


@shared_task(autoretry_for=INFRASTRUCTURE_ERRORS, retry_backoff=True, max_retries=10)
def escalate_alerts() -> int:
    """Escalate alerts nobody acknowledged within their model policy's escalate_after_minutes."""
    from monitoring.services.alerts import alerts_escalate_by_policy

    return len(alerts_escalate_by_policy())


@shared_task(autoretry_for=INFRASTRUCTURE_ERRORS, retry_backoff=True, max_retries=10)
def evaluate_delayed_labels(model: str) -> int:
    """After labels arrive: realized performance of past runs' windows, beside their estimates."""
    from monitoring.services.delayed_labels import runs_evaluate_labels

    return len(runs_evaluate_labels(model))


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=INFRASTRUCTURE_ERRORS,
    retry_backoff=True,
    max_retries=10,
    time_limit=600,
)
def execute_remediation(request_id: str) -> str:
    """Carry out an approved request; a redelivery of a finished one changes nothing."""
    from monitoring.services.remediations import remediation_load, remediation_run

    if remediation_load(request_id).state not in ("approved",):
        return remediation_load(request_id).state
    return remediation_run(request_id).state


@shared_task(autoretry_for=INFRASTRUCTURE_ERRORS, retry_backoff=True, max_retries=10)
def remediation_deadlines() -> dict:
    """Expire undecided requests past their deadline; alert on overdue break-glass reviews."""
    from monitoring.services.remediations import break_glass_overdue, remediations_expire

    return {"expired": remediations_expire(), "overdue_reviews": len(break_glass_overdue())}
