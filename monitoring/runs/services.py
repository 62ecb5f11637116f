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
from collections.abc import Callable, Collection, Mapping, Sequence
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
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.selectors import (
    UnevenTimes,
    Window,
    window_column_chunks,
    window_digests,
    window_from_batches,
)
from monitoring.policies.document import BASELINE_SHIFTS_DAYS
from monitoring.policies.domain import PolicyAggregate
from monitoring.policies.services import policy_load
from monitoring.registry.data_schema import DataSchema, parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.budget import ColumnsRead, RowsRead, RunOverBudget, batch_rows, run_budget_check
from monitoring.runs.checks import (
    IdsMeasured,
    LabelRows,
    compute_run,
    ids_apart,
    ids_measure,
    labels_by_id,
    rows_per_window,
)
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
from monitoring.runs.parts import FeaturePart
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
    from monitoring.runs.fanout import fanout_start  # the fan-out builds on this module

    try:
        fanned = fanout_start(run_id, model, start, end, revision, actor, policy.version, policy.policy)
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 - a window over budget even when split is the run's failure
        return run_fail(run_id, failure_reason(error), actor=actor)
    if fanned:
        return RunOutcome(run_id, RunStatus.RUNNING, None, recorded_now=False)
    return run_complete(run_id, lambda: run_result(model, start, end, policy.version, policy.policy, run_id), actor)


def run_complete(run_id: str, compute: Callable[[], dict[str, Any]], actor: Actor) -> RunOutcome:
    """Compute the run's result, store it, and record the run as completed with its diagnosis
    and alerts; or as failed, with the reason, when the computation failed."""
    try:
        result = compute()
        inputs = sorted({digest for digests in result["inputs"].values() for digest in digests})
        checks = [Check.model_validate(check) for check in result["checks"]]
        digest = blob_save(canonicalize(result))
    except INFRASTRUCTURE_ERRORS:
        raise
    except Exception as error:  # noqa: BLE001 - whatever broke the computation is the run's failure
        connection_after_interruption()
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
    finished = run_finished(run_id)
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
    connection_after_interruption()
    run_id, _, finished = _run_started(model, start, end, actor, revision)
    return finished if finished is not None else run_fail(run_id, failure_reason(error), actor=actor)


def connection_after_interruption() -> None:
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
    was killed or lost (no task outlives its time limit). A fanned-out run is several tasks,
    queued behind one another: it is stalled once none of them has progressed for as long."""
    from monitoring.runs.models import RunFanout

    moment = now or dt.datetime.now(dt.UTC)
    after = settings.RUN_STALLED_AFTER_SECONDS
    since = moment - dt.timedelta(seconds=after)
    progressing = RunFanout.objects.filter(progressed_at__gte=since).values("run_id")
    stalled = Run.objects.filter(status=RunStatus.RUNNING, started_at__lt=since).exclude(run_id__in=progressing)
    failed = []
    for run_id in stalled.values_list("run_id", flat=True):
        reason = f"no outcome {after:,} s after it started: its worker stopped (killed, out of memory or lost)"
        outcome = run_fail(str(run_id), reason, actor=SWEEPER)
        RunFanout.objects.filter(run_id=run_id).delete()  # its parts still queued find nothing to do
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
    *,
    columns: list[str] | None = None,
    feature_parts: Mapping[str, FeaturePart] | None = None,
    schema: DataSchema | None = None,
    task: str | None = None,
) -> dict[str, Any]:
    """The full result document; from exactly `inputs` (batch digests per kind) when given.
    A fanned-out run's combining task reads only `columns` of the window and the reference,
    its other features measured by the parts (`feature_parts`), by the `schema` and `task`
    its plan fixed (default: the model's own)."""
    if schema is None or task is None:
        registered = RegisteredModel.objects.get(name=model)
        schema = schema or parse_schema(registered.data_schema)
        task = task or registered.task
    if inputs is None:
        run_budget_check(run_rows(model, start, end, policy), ColumnsRead.of(schema, schema.columns))
        inputs = run_inputs(model, start, end, policy)
    named = list(schema.columns if columns is None else columns)
    ids, label_batches = None, None
    if schema.id in named and ids_apart(schema, task):
        ids, label_batches = _ids_measured(model, start, end, inputs, policy, schema)
        named.remove(schema.id)
    others = None if ids is None else [name for name in _input_spans(start, end, policy) if name != "labels"]
    windows = run_windows(model, start, end, inputs, policy, schema, named, only=others)
    if windows["reference"].rows == 0:
        if policy.get("reference", "dataset") == "dataset":
            raise RunInputError(f"model {model!r} has no reference data: POST models/{model}/reference/ first")
        raise RunInputError(f"model {model!r} has no predictions in the baseline period ({policy['reference']})")
    batches = {
        name: label_batches if name == "labels" and label_batches is not None else windows[name].batches
        for name in _input_spans(start, end, policy)
    }
    sizes = (windows["reference"].rows, windows["predictions"].rows)
    computed = compute_run(
        windows["reference"].columns,
        windows.pop("predictions").columns,  # handed over, not kept here: the run lets go of what it has read
        labels=labels_by_id(windows.pop("labels").columns, schema) if ids is None else {},
        schema=schema,
        task=task,
        policy=policy,
        kpis=windows["kpis"].columns,
        kpi_baseline=windows["kpi_baseline"].columns,
        history=_history_rows(windows.get("history"), schema.timestamp, start, end, policy),
        feature_parts=feature_parts,
        sizes=sizes,
        ids=ids,
    )
    return {
        "run_id": run_id,
        "model": model,
        "window": {"start": format_time(start), "end": format_time(end)},
        "policy_version": policy_version,
        "policy": policy,
        "inputs": batches,
        "code_version": importlib.metadata.version("driftledger"),
        "engine": ENGINE,
        "versions": computed_with(),
        **computed,
    }


def _ids_measured(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    inputs: dict[str, list[str]],
    policy: dict[str, Any],
    schema: DataSchema,
) -> tuple[IdsMeasured, list[str]]:
    """The window's ids measured before the run reads its other columns, and the label batches
    read. The ids are read twice, so that the labels' hash and all the ids are never held at
    once (at 100M rows: 1 GB and 1.6 GB): first a batch at a time, joined with the labels as
    they go; then whole, their duplicates counted by sorting them in place, then let go."""
    read = run_windows(model, start, end, inputs, policy, schema, [schema.id], only=("labels",))["labels"]
    labels, label_batches = labels_by_id(read.columns, schema), read.batches
    del read  # the labels' columns are held by `labels` alone, to be let go after the join
    kind, since, until = _input_spans(start, end, policy)["predictions"]
    joined = _joined(labels, model, kind, inputs.get("predictions", []), schema, since, until)
    if joined is not None:
        labels = labels_by_id({}, schema)  # let go before the ids are read whole
    window = run_windows(model, start, end, inputs, policy, schema, [schema.id], only=("predictions",))
    ids = window["predictions"].columns.pop(schema.id, None)
    return ids_measure(ids, labels, schema, reorder=True, joined=joined), label_batches


def _joined(
    labels: LabelRows,
    model: str,
    kind: str,
    digests: list[str],
    schema: DataSchema,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """`labelled_targets` of the window's ids, read a batch at a time; None where that cannot
    say (ids or labels that are not texts, a batch without times): the ids are then joined whole."""
    if not labels:
        return np.empty(0, dtype=np.int64), np.empty(0)
    chunks = window_column_chunks(
        model=model, kind=kind, digests=digests, column=schema.id, start=since, end=until, schema=schema
    )
    try:
        return labels.joined(chunks)
    except UnevenTimes:
        return None
    finally:
        chunks.close()


def run_rows(model: str, start: dt.datetime, end: dt.datetime, policy: dict[str, Any]) -> RowsRead:
    """How many rows the run would read of each input (whole batches: an upper bound)."""
    counted = {
        name: batch_rows(model, kind, since, until)
        for name, (kind, since, until) in _input_spans(start, end, policy).items()
    }
    return RowsRead(
        window=counted["predictions"],
        reference=counted["reference"],
        labels=counted["labels"],
        history=counted.get("history", 0),
        kpis=counted["kpis"] + counted["kpi_baseline"],
    )


def run_inputs(model: str, start: dt.datetime, end: dt.datetime, policy: dict[str, Any]) -> dict[str, list[str]]:
    """The batches each input of the run reads (their digests, by input), as the run records them."""
    return {
        name: window_digests(model=model, kind=kind, start=since, end=until)
        for name, (kind, since, until) in _input_spans(start, end, policy).items()
    }


def computed_with() -> dict[str, str]:
    """The installed versions of the libraries the figures come from."""
    return {name: importlib.metadata.version(name) for name in NUMERICAL_LIBRARIES}


def run_windows(
    model: str,
    start: dt.datetime,
    end: dt.datetime,
    inputs: dict[str, list[str]],
    policy: dict[str, Any],
    schema: DataSchema,
    columns: list[str] | None = None,
    *,
    only: Collection[str] | None = None,
) -> dict[str, Window]:
    """The rows of each input (`only` these), from its recorded batches; of the reference and
    the window, only what the checks read of `columns` (default: the schema's).

    The checks never read the time of a row (the window is cut by it as it is read) nor the
    reference's ids: at 10M rows those ids alone, as Python strings, held some 600 MB."""
    named = list(schema.columns if columns is None else columns)
    wanted = {
        "reference": [name for name in named if name not in (schema.id, schema.timestamp)],
        "predictions": [name for name in named if name != schema.timestamp],
        "history": [schema.timestamp],
    }
    return {
        name: window_from_batches(
            model=model,
            kind=kind,
            digests=inputs.get(name, []),
            start=since,
            end=until,
            columns=wanted.get(name),
            schema=schema,
        )
        for name, (kind, since, until) in _input_spans(start, end, policy).items()
        if only is None or name in only
    }


def _input_spans(
    start: dt.datetime, end: dt.datetime, policy: dict[str, Any]
) -> dict[str, tuple[str, dt.datetime | None, dt.datetime | None]]:
    """What each input of the run is: its kind of batch and its time span (None: all of them)."""
    shift = _baseline_shift(policy["kpis"]["baseline"], start, end)
    reference = policy.get("reference", "dataset")
    back = None if reference == "dataset" else _baseline_shift(reference, start, end)
    spans: dict[str, tuple[str, dt.datetime | None, dt.datetime | None]] = {
        "reference": (BatchKind.REFERENCE, None, None)
        if back is None
        else (BatchKind.PREDICTIONS, start - back, end - back),
        "predictions": (BatchKind.PREDICTIONS, start, end),
        "labels": (BatchKind.LABELS, None, None),
        "kpis": (BatchKind.KPIS, start, end),
        "kpi_baseline": (BatchKind.KPIS, start - shift, end - shift),
    }
    history = _history_span(policy, start, end)
    if history is not None:  # only the time column: how many rows each earlier window held
        spans["history"] = (BatchKind.PREDICTIONS, history, start)
    return spans


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


def _baseline_shift(baseline: str, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """How far back the baseline period lies: one window length, a week or a quarter."""
    return dt.timedelta(days=BASELINE_SHIFTS_DAYS[baseline]) if baseline in BASELINE_SHIFTS_DAYS else end - start


def run_finished(run_id: str) -> RunOutcome | None:
    """The run's outcome once it completed or failed; None while it runs."""
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
            finished = run_finished(run_id)  # another worker finished the same run first
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
