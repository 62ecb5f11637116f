"""Monitoring runs: compute the policy's checks on a window and record the outcome.

A run is identified by (model, policy version, window): its id is derived from them, so
running twice, or a redelivered task, records one run. It appends `RunStarted`, computes
(`monitoring.runs.compute_run`), stores the full result as a content-addressed file whose
digest, with the digests of every input batch, goes into `RunCompleted`; or it appends
`RunFailed` with the reason. Database and broker errors are not failures of the run: they
propagate, so the task retries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction

from audit.canonical import canonicalize
from audit.envelope import format_time
from audit.evidence import blob_save
from audit.models import Event
from audit.store import Actor, ConcurrencyConflict, NewEvent, append
from monitoring.data_schema import parse_schema
from monitoring.diagnosis import diagnose
from monitoring.models import RegisteredModel
from monitoring.policy import BASELINE_SHIFTS_DAYS
from monitoring.runs import compute_run
from monitoring.selectors import Window, window_from_batches, window_load
from monitoring.services.alerts import alerts_from_run
from monitoring.services.policies import policy_load

STREAM = "run"
RUN_NAMESPACE = uuid.UUID("5d0c7f0e-6a4e-4f6b-9d43-2f1f3b7a9c11")
SCHEDULER = Actor("service", "monitoring-worker", "Driftledger monitoring worker")


class RunInputError(ValueError):
    """The run cannot be computed from what the model reported."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # completed, failed
    result_digest: str | None
    recorded_now: bool  # False: the run had been recorded before


def run_id_for(model: str, policy_version: int, start: dt.datetime, end: dt.datetime) -> str:
    return str(uuid.uuid5(RUN_NAMESPACE, f"{model}|{policy_version}|{format_time(start)}|{format_time(end)}"))


def run_execute(*, model: str, start: dt.datetime, end: dt.datetime, actor: Actor = SCHEDULER) -> RunOutcome:
    policy = policy_load(model)
    run_id = run_id_for(model, policy.version, start, end)
    finished = _finished(run_id)
    if finished is not None:
        return finished
    window = {"start": format_time(start), "end": format_time(end)}
    begun = {"run_id": run_id, "model": model, "policy_version": policy.version, "window": window}
    with contextlib.suppress(ConcurrencyConflict):  # started before (a redelivered task): finish it
        append([NewEvent(STREAM, run_id, "monitoring.RunStarted", begun, actor)], expected={(STREAM, run_id): 0})
    try:
        result, inputs = _compute(model, start, end, policy.version, policy.policy, run_id)
    except DatabaseError:
        raise
    except Exception as error:  # noqa: BLE001 - whatever broke the computation is the run's failure
        return _record(
            run_id, "monitoring.RunFailed", {"run_id": run_id, "model": model, "error": repr(error)[:2000]}, actor
        )
    digest = blob_save(canonicalize(result))
    completed = {
        "run_id": run_id,
        "model": model,
        "status": "completed",  # the run's status, as in schema 1; each check carries its own level
        "checks": result["checks"],
        "result_digest": digest,
        "input_digests": inputs,
    }
    return _record(run_id, "monitoring.RunCompleted", completed, actor)


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
    labels = _labels(windows["labels"], schema)
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


def _labels(window: Window, schema) -> dict[str, Any]:
    if not window.rows or not schema.target:
        return {}
    return dict(zip(window.columns[schema.id].tolist(), window.columns[schema.target].tolist(), strict=True))


def _finished(run_id: str) -> RunOutcome | None:
    event = (
        Event.objects.filter(
            stream_type=STREAM, stream_id=run_id, event_type__in=["monitoring.RunCompleted", "monitoring.RunFailed"]
        )
        .values_list("event_type", "payload")
        .first()
    )
    if event is None:
        return None
    kind, payload = event
    status = "completed" if kind == "monitoring.RunCompleted" else "failed"
    return RunOutcome(run_id, status, payload.get("result_digest"), recorded_now=False)


def _record(run_id: str, kind: str, payload: dict[str, Any], actor: Actor) -> RunOutcome:
    """The run's outcome and the alerts it raises, updates or resolves: one transaction."""
    try:
        with transaction.atomic():
            (recorded,) = append([NewEvent(STREAM, run_id, kind, payload, actor)], expected={(STREAM, run_id): 1})
            if kind == "monitoring.RunCompleted":
                found = diagnose(payload["checks"])
                diagnosed = {"run_id": run_id, "model": payload["model"], **found.as_dict()}
                append(
                    [
                        NewEvent(
                            STREAM, run_id, "monitoring.RunDiagnosed", diagnosed, actor, causation_id=recorded.event_id
                        )
                    ],
                    expected={(STREAM, run_id): 2},
                )
                alerts_from_run(
                    model=payload["model"],
                    run_id=run_id,
                    checks=payload["checks"],
                    actor=actor,
                    causation=recorded.event_id,
                )
    except ConcurrencyConflict:
        return _finished(run_id)  # another worker finished the same run first
    status = "completed" if kind == "monitoring.RunCompleted" else "failed"
    return RunOutcome(run_id, status, payload.get("result_digest"), recorded_now=True)
