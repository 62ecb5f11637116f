"""Celery tasks of runs: thin, idempotent, retried on infrastructure errors."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from audit.envelope import format_time, parse_time
from monitoring.runs.models import Run
from monitoring.tasks import DURABLE, RETRIED


@shared_task(
    **DURABLE,
    retry_backoff_max=60,
    soft_time_limit=settings.RUN_TIME_LIMIT_SECONDS,  # the run records RunFailed, with the reason
    time_limit=settings.RUN_TIME_LIMIT_SECONDS + 30,  # the worker process is killed: the sweeper fails the run
)
def run_monitoring(model: str, start: str, end: str, requested_by: dict | None = None, revision: int = 0) -> dict:
    """One run of the model's policy on [start, end), recorded as the scheduler's or as the
    person's who asked (`requested_by`: an actor's kind, id and name); `revision` > 0 for a re-run
    of the window. Idempotent: a redelivery records nothing twice."""
    from audit.store import Actor
    from monitoring.runs.services import SCHEDULER, run_execute

    actor = Actor(requested_by["kind"], requested_by["id"], requested_by["name"]) if requested_by else SCHEDULER
    outcome = run_execute(model=model, start=parse_time(start), end=parse_time(end), actor=actor, revision=revision)
    return {"run_id": outcome.run_id, "status": outcome.status.value, "recorded_now": outcome.recorded_now}


@shared_task
def schedule_due_runs(now: str | None = None) -> list[str]:
    """Beat calls this every minute: each active model whose policy has a schedule gets a run of
    its latest complete period (windows aligned to the schedule), once."""
    from monitoring.policies.services import policy_load
    from monitoring.registry.models import RegisteredModel

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
    from monitoring.ingestion.selectors import last_rows_start

    return last_rows_start(model=model, end=end, rows=window["last_rows"])


@shared_task(**RETRIED)
def evaluate_delayed_labels(model: str) -> int:
    """After labels arrive: realized performance of past runs' windows, beside their estimates."""
    from monitoring.runs.delayed_labels import runs_evaluate_labels

    return len(runs_evaluate_labels(model))


@shared_task(**RETRIED)
def fail_stalled_runs() -> list[str]:
    """Beat calls this every minute: runs whose worker vanished end as failed, with an alert."""
    from monitoring.runs.services import runs_fail_stalled

    return runs_fail_stalled()


_RUN_LIMITS = {
    "soft_time_limit": settings.RUN_TIME_LIMIT_SECONDS,
    "time_limit": settings.RUN_TIME_LIMIT_SECONDS + 30,
}


@shared_task(**DURABLE, retry_backoff_max=60, **_RUN_LIMITS)
def measure_run_part(run_id: str, index: int) -> bool:
    """One feature group of a run fanned out over the workers (monitoring.runs.fanout)."""
    from monitoring.runs.fanout import part_measure

    return part_measure(run_id, index)


@shared_task(**DURABLE, retry_backoff_max=60, **_RUN_LIMITS)
def combine_run_parts(run_id: str) -> dict | None:
    """The run from its measured parts: computed, stored and recorded as one process would."""
    from monitoring.runs.fanout import fanout_combine

    outcome = fanout_combine(run_id)
    if outcome is None:
        return None
    return {"run_id": outcome.run_id, "status": outcome.status.value, "recorded_now": outcome.recorded_now}
