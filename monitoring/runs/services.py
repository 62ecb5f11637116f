"""Monitoring runs: compute the policy's checks on a window and record the outcome.

A run is identified by (model, policy version, window): its id is derived from them, so
running twice, or a redelivered task, records one run. It appends `RunStarted`, computes
(`monitoring.runs.compute_run`), stores the full result as a content-addressed file whose
digest, with the digests of every input batch, goes into `RunCompleted`; or it appends
`RunFailed` with the reason. Database and broker errors are not failures of the run: they
propagate, so the task retries.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from psycopg.pq import TransactionStatus

from audit.aggregates import InvalidCommand, aggregate_execute, aggregate_load
from audit.blobs import blob_save
from audit.canonical import canonicalize
from audit.envelope import format_time
from audit.events import Event
from audit.store import Actor, ConcurrencyConflict
from monitoring.alerting.services import alerts_from_failed_run, alerts_from_run
from monitoring.ingestion.selectors import Window, window_from_batches, window_load
from monitoring.policies.document import BASELINE_SHIFTS_DAYS
from monitoring.policies.domain import PolicyAggregate
from monitoring.policies.services import policy_load
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.budget import RunOverBudget, run_budget_check, run_rows_estimate
from monitoring.runs.checks import compute_run, labels_by_id, rows_per_window
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import (
    Check,
    RunAggregate,
    RunCompleted,
    RunDiagnosed,
    RunFailed,
    RunStatus,
    RunWindow,
    run_id_for,
)
from monitoring.runs.models import Run
from monitoring.tasks import INFRASTRUCTURE_ERRORS

# The figures' engine: raised whenever a change makes the same inputs give other figures, so that
# `reproduce_run` can say why an older run is not recomputed byte for byte (docs/monitoring.md).
# 2: cohort figures with their uncertainty, new cohorts measured against the whole reference.
# 3: a change of encoding in a categorical column is a critical data-quality finding.
# 4: a classifier's prediction drift tests its score (a number) and its predicted classes (shares).
# 5: label-free estimation calibrates as scikit-learn's isotonic regression does (tied scores).
# 6: KPIs are judged in each segment their rows carry as well as as a whole.
# 8: the result names the versions of the libraries that computed it (`versions`).
# 7: overlapping cohorts are attributed to the one that explains most of the gap (share × gap).
ENGINE = 8
NUMERICAL_LIBRARIES = ("numpy", "scipy", "pyarrow")  # what a figure's last digits depend on
SCHEDULER = Actor("service", "monitoring-worker", "Driftledger monitoring worker")
SWEEPER = Actor("system", "run-sweeper", "Driftledger run sweeper")
ATTEMPTS = 3  # a lost race on an alert (its dedupe index, its stream) replays the whole outcome


class RunInputError(ValueError):
    """The run cannot be computed from what the model reported."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: RunStatus
    result_digest: str | None
    recorded_now: bool  # False: the run had been recorded before


def run_load(run_id: str) -> RunAggregate:
    return aggregate_load(RunAggregate(run_id))


def run_execute(
    *, model: str, start: dt.datetime, end: dt.datetime, actor: Actor = SCHEDULER, revision: int = 0
) -> RunOutcome:
    """The run of the model's policy on [start, end); `revision` > 0: a re-run a person asked for."""
    try:
        run_id, policy, finished = _run_started(model, start, end, actor, revision)
    except SoftTimeLimitExceeded as error:  # out of time before the run could even start
        return run_out_of_time(model=model, start=start, end=end, actor=actor, error=error, revision=revision)
    if finished is not None:
        return finished
    try:
        result, inputs = _compute(model, start, end, policy.version, policy.policy, run_id)
        checks = [Check.model_validate(check) for check in result["checks"]]
        digest = blob_save(canonicalize(result))
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 - whatever broke the computation is the run's failure
        _connection_after_interruption()
        return run_fail(run_id, failure_reason(error), actor=actor)
    try:
        return _record(
            run_id, lambda run: run.complete(checks=checks, result_digest=digest, input_digests=inputs), actor
        )
    except INFRASTRUCTURE_ERRORS:
        raise
    except DatabaseError as error:  # the outcome itself cannot be stored (a value the database refuses)
        return run_fail(run_id, f"its outcome could not be recorded: {failure_reason(error)}", actor=actor)


def _run_started(
    model: str, start: dt.datetime, end: dt.datetime, actor: Actor, revision: int = 0
) -> tuple[str, PolicyAggregate, RunOutcome | None]:
    """The run's id and policy, the run recorded as started (nothing when started before: a
    redelivered task finishes it); or its outcome when it finished already."""
    policy = policy_load(model)
    run_id = run_id_for(model, policy.version, start, end, revision)
    finished = _finished(run_id)
    if finished is not None:
        return run_id, policy, finished
    window = RunWindow(start=format_time(start), end=format_time(end))
    revises = run_id_for(model, policy.version, start, end) if revision else None
    aggregate_execute(
        lambda: RunAggregate(run_id),
        lambda run: run.start(
            model=model, policy_version=policy.version, window=window, revision=revision, revises=revises
        ),
        actor=actor,
    )
    return run_id, policy, None


def run_out_of_time(
    *, model: str, start: dt.datetime, end: dt.datetime, actor: Actor, error: BaseException, revision: int = 0
) -> RunOutcome:
    """A run whose time limit expired before it could record that it started: started and failed
    now (the worker has 30 s before it is killed), so that it never vanishes without a trace."""
    _connection_after_interruption()
    run_id, _, finished = _run_started(model, start, end, actor, revision)
    return finished if finished is not None else run_fail(run_id, failure_reason(error), actor=actor)


def _connection_after_interruption() -> None:
    """A time limit that interrupts a query leaves the connection mid-query, unusable: close it,
    so that recording the failure opens a fresh one."""
    raw = connection.connection
    if raw is not None and raw.info.transaction_status == TransactionStatus.ACTIVE:
        connection.close()


def run_fail(run_id: str, reason: str, *, actor: Actor = SCHEDULER) -> RunOutcome:
    """End a running run as failed, with the reason, and raise (or update) the model's
    run-failure alert. Nothing when the run finished meanwhile."""
    return _record(run_id, lambda run: run.fail(reason), actor)


def runs_fail_stalled(*, now: dt.datetime | None = None) -> list[str]:
    """Fail every run still `running` RUN_STALLED_AFTER_SECONDS after it started: its worker
    was killed or lost (no run outlives the task's time limit)."""
    moment = now or dt.datetime.now(dt.UTC)
    after = settings.RUN_STALLED_AFTER_SECONDS
    stalled = Run.objects.filter(status=RunStatus.RUNNING, started_at__lt=moment - dt.timedelta(seconds=after))
    failed = []
    for run_id in stalled.values_list("run_id", flat=True):
        reason = f"no outcome {after:,} s after it started: its worker stopped (killed, out of memory or lost)"
        outcome = run_fail(str(run_id), reason, actor=SWEEPER)
        if outcome.recorded_now:
            failed.append(str(run_id))
    return failed


def failure_reason(error: BaseException) -> str:
    """What a person reads: the message of an error the run anticipated, else its type too."""
    if isinstance(error, RunInputError | RunOverBudget):
        return str(error)
    if isinstance(error, MemoryError):
        return "out of memory (MemoryError): the window does not fit the worker's memory limit"
    if isinstance(error, SoftTimeLimitExceeded):
        return f"over the time limit of {settings.RUN_TIME_LIMIT_SECONDS:,} s (RUN_TIME_LIMIT_SECONDS)"
    return f"{type(error).__name__}: {error}"


def run_result(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    policy_version: int,
    policy: dict[str, Any],
    run_id: str,
    inputs: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The full result document; from exactly `inputs` (batch digests per kind) when given."""
    registered = RegisteredModel.objects.get(name=model)
    schema = parse_schema(registered.data_schema)
    if inputs is None:
        baseline = (
            None
            if policy.get("reference", "dataset") == "dataset"
            else _baseline_shift(policy["reference"], start, end)
        )
        run_budget_check(run_rows_estimate(model, start, end, baseline), len(schema.columns))
    windows = _inputs(model, start, end, inputs, policy)
    if windows["reference"].rows == 0:
        if policy.get("reference", "dataset") == "dataset":
            raise RunInputError(f"model {model!r} has no reference data: POST models/{model}/reference/ first")
        raise RunInputError(f"model {model!r} has no predictions in the baseline period ({policy['reference']})")
    labels = labels_by_id(windows["labels"].columns, schema) if windows["labels"].rows else {}
    computed = compute_run(
        windows["reference"].columns,
        windows["predictions"].columns,
        labels=labels,
        schema=schema,
        task=registered.task,
        policy=policy,
        kpis=windows["kpis"].columns,
        kpi_baseline=windows["kpi_baseline"].columns,
        history=_history_rows(windows.get("history"), schema.timestamp, start, end, policy),
    )
    return {
        "run_id": run_id,
        "model": model,
        "window": {"start": format_time(start), "end": format_time(end)},
        "policy_version": policy_version,
        "policy": policy,
        "inputs": {kind: window.batches for kind, window in windows.items()},
        "code_version": importlib.metadata.version("driftledger"),
        "engine": ENGINE,
        "versions": computed_with(),
        **computed,
    }


def computed_with() -> dict[str, str]:
    """The installed versions of the libraries the figures come from."""
    return {name: importlib.metadata.version(name) for name in NUMERICAL_LIBRARIES}


def _compute(model, start, end, version, policy, run_id) -> tuple[dict[str, Any], list[str]]:
    result = run_result(model, start, end, version, policy, run_id)
    inputs = sorted({digest for digests in result["inputs"].values() for digest in digests})
    return result, inputs


def _inputs(model: str, start, end, inputs: dict[str, list[str]] | None, policy: dict[str, Any]) -> dict[str, Window]:
    windows = _data_inputs(model, start, end, inputs, policy)
    history = _history_span(policy, start, end)
    if history is not None:  # only the time column: how many rows each earlier window held
        time = [parse_schema(RegisteredModel.objects.get(name=model).data_schema).timestamp]
        windows["history"] = (
            window_load(model=model, start=history, end=start, columns=time)
            if inputs is None
            else window_from_batches(
                model=model,
                kind="predictions",
                digests=inputs.get("history", []),
                start=history,
                end=start,
                columns=time,
            )
        )
    return windows


def _history_span(policy: dict[str, Any], start: dt.datetime, end: dt.datetime) -> dt.datetime | None:
    """Where the windows before this one begin, when the policy compares volumes (windows of
    a fixed length: a window of the last N rows always holds N)."""
    if "volume" not in policy or "hours" not in policy["window"]:
        return None
    return start - (end - start) * policy["volume"]["history_windows"]


def _history_rows(
    history: Window | None, time: str, start: dt.datetime, end: dt.datetime, policy: dict[str, Any]
) -> list[int] | None:
    if history is None:
        return None
    times = history.columns.get(time, np.empty(0, dtype="datetime64[us]"))
    return rows_per_window(times, start, end - start, policy["volume"]["history_windows"])


def _data_inputs(
    model: str, start, end, inputs: dict[str, list[str]] | None, policy: dict[str, Any]
) -> dict[str, Window]:
    shift = _baseline_shift(policy["kpis"]["baseline"], start, end)
    reference = policy.get("reference", "dataset")
    back = None if reference == "dataset" else _baseline_shift(reference, start, end)
    if inputs is None:
        return {
            "reference": window_load(model=model, kind="reference")
            if back is None
            else window_load(model=model, start=start - back, end=end - back),
            "predictions": window_load(model=model, start=start, end=end),
            "labels": window_load(model=model, kind="labels"),
            "kpis": window_load(model=model, kind="kpis", start=start, end=end),
            "kpi_baseline": window_load(model=model, kind="kpis", start=start - shift, end=end - shift),
        }
    return {
        "kpis": window_from_batches(model=model, kind="kpis", digests=inputs["kpis"], start=start, end=end),
        "kpi_baseline": window_from_batches(
            model=model, kind="kpis", digests=inputs["kpi_baseline"], start=start - shift, end=end - shift
        ),
        "reference": window_from_batches(model=model, kind="reference", digests=inputs["reference"])
        if back is None
        else window_from_batches(
            model=model, kind="predictions", digests=inputs["reference"], start=start - back, end=end - back
        ),
        "predictions": window_from_batches(
            model=model, kind="predictions", digests=inputs["predictions"], start=start, end=end
        ),
        "labels": window_from_batches(model=model, kind="labels", digests=inputs["labels"]),
    }


def _baseline_shift(baseline: str, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """How far back the baseline period lies: one window length, a week or a quarter."""
    return dt.timedelta(days=BASELINE_SHIFTS_DAYS[baseline]) if baseline in BASELINE_SHIFTS_DAYS else end - start


def _finished(run_id: str) -> RunOutcome | None:
    run = run_load(run_id)
    if run.status not in (RunStatus.COMPLETED, RunStatus.FAILED):
        return None
    return RunOutcome(run_id, run.status, run.result_digest, recorded_now=False)


def _record(run_id: str, outcome: Callable[[RunAggregate], Sequence[Event]], actor: Actor) -> RunOutcome:
    """The run's outcome, its diagnosis and the alerts it raises, updates or resolves: one
    transaction. Another worker recording the same run first wins; a race lost on an alert
    (two runs raising one condition at once) replays the whole transaction on the new state."""
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                done = aggregate_execute(lambda: RunAggregate(run_id), outcome, actor=actor)
                (recorded,) = done.recorded
                event = recorded.event
                if isinstance(event, RunCompleted):
                    _diagnose_and_alert(done.aggregate, event, actor, cause=recorded.event_id)
                elif isinstance(event, RunFailed):
                    run = done.aggregate
                    alerts_from_failed_run(
                        model=run.model,
                        run_id=run.run_id,
                        error=event.error,
                        window_end=run.window_end,
                        actor=actor,
                        causation=recorded.event_id,
                    )
        except InvalidCommand:
            finished = _finished(run_id)  # another worker finished the same run first
            if finished is None:
                raise
            return finished
        except (IntegrityError, ConcurrencyConflict):
            if attempt == ATTEMPTS - 1:
                raise
            continue
        digest = event.result_digest if isinstance(event, RunCompleted) else None
        return RunOutcome(run_id, done.aggregate.status or RunStatus.FAILED, digest, recorded_now=True)
    raise AssertionError("unreachable")


def _diagnose_and_alert(run: RunAggregate, completed: RunCompleted, actor: Actor, *, cause: str) -> None:
    found = diagnose(completed.checks)
    diagnosed = RunDiagnosed(
        run_id=run.run_id,
        model=run.model,
        cause=found.cause,
        scope=found.scope,
        evidence=found.evidence,
        actions=found.actions,
        new_segments=found.new_segments or None,
    )
    aggregate_execute(lambda: RunAggregate(run.run_id), lambda r: r.diagnose(diagnosed), actor=actor, causation=cause)
    alerts_from_run(
        model=run.model,
        run_id=run.run_id,
        window_end=run.window_end,
        checks=completed.checks,
        actor=actor,
        causation=cause,
    )
