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

from django.db import DatabaseError, IntegrityError, transaction

from audit.aggregates import InvalidCommand, aggregate_execute, aggregate_load
from audit.blobs import blob_save
from audit.canonical import canonicalize
from audit.envelope import format_time
from audit.events import Event
from audit.store import Actor, ConcurrencyConflict
from monitoring.alerting.services import alerts_from_run
from monitoring.ingestion.selectors import Window, window_from_batches, window_load
from monitoring.policies.document import BASELINE_SHIFTS_DAYS
from monitoring.policies.services import policy_load
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.checks import compute_run, labels_by_id
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import (
    Check,
    RunAggregate,
    RunCompleted,
    RunDiagnosed,
    RunStatus,
    RunWindow,
    run_id_for,
)

SCHEDULER = Actor("service", "monitoring-worker", "Driftledger monitoring worker")
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


def run_execute(*, model: str, start: dt.datetime, end: dt.datetime, actor: Actor = SCHEDULER) -> RunOutcome:
    policy = policy_load(model)
    run_id = run_id_for(model, policy.version, start, end)
    finished = _finished(run_id)
    if finished is not None:
        return finished
    window = RunWindow(start=format_time(start), end=format_time(end))
    aggregate_execute(  # nothing when started before (a redelivered task): it finishes the run
        lambda: RunAggregate(run_id),
        lambda run: run.start(model=model, policy_version=policy.version, window=window),
        actor=actor,
    )
    try:
        result, inputs = _compute(model, start, end, policy.version, policy.policy, run_id)
    except DatabaseError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever broke the computation is the run's failure
        failure = repr(error)
        return _record(run_id, lambda run: run.fail(failure), actor)
    digest = blob_save(canonicalize(result))
    checks = [Check.model_validate(check) for check in result["checks"]]
    return _record(run_id, lambda run: run.complete(checks=checks, result_digest=digest, input_digests=inputs), actor)


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
    )
    return {
        "run_id": run_id,
        "model": model,
        "window": {"start": format_time(start), "end": format_time(end)},
        "policy_version": policy_version,
        "policy": policy,
        "inputs": {kind: window.batches for kind, window in windows.items()},
        "code_version": importlib.metadata.version("driftledger"),
        **computed,
    }


def _compute(model, start, end, version, policy, run_id) -> tuple[dict[str, Any], list[str]]:
    result = run_result(model, start, end, version, policy, run_id)
    inputs = sorted({digest for digests in result["inputs"].values() for digest in digests})
    return result, inputs


def _inputs(model: str, start, end, inputs: dict[str, list[str]] | None, policy: dict[str, Any]) -> dict[str, Window]:
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
