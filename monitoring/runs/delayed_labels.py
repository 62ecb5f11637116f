"""Delayed labels: when labels arrive for the windows of past runs, the performance realized
on each window is computed and set beside what the run estimated without labels; then the
run's checks are computed again on the inputs it recorded with the labels known now, and when
that changes what the run found, its diagnosis is revised (a new signed diagnosis citing the
one it replaces) and its alerts follow: raised, updated or resolved as for a new run."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import orjson
from django.db import transaction

from audit.aggregates import InvalidCommand, aggregate_execute
from audit.blobs import blob_exists, blob_read, blob_save
from audit.canonical import canonicalize
from audit.envelope import format_time, parse_time
from audit.models import Event
from audit.store import RecordedEvent
from monitoring.alerting.services import alerts_from_run
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.models import Batch
from monitoring.ingestion.selectors import window_from_batches, window_load
from monitoring.policies.services import policy_load
from monitoring.registry.data_schema import DataSchema, Task, parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.checks import labelled_targets, labels_by_id, task_metric
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import (
    STREAM,
    Check,
    CheckKind,
    PerformanceRealized,
    RunAggregate,
    RunDiagnosed,
    RunDiagnosisRevised,
    RunStatus,
)
from monitoring.runs.models import Run
from monitoring.runs.ranking_checks import ranking_realized
from monitoring.runs.services import ENGINE, SCHEDULER, run_load, run_result
from monitoring.tasks import INFRASTRUCTURE_ERRORS

MIN_LABELLED = 30
logger = logging.getLogger(__name__)


def runs_evaluate_labels(model: str) -> list[RecordedEvent]:
    """Per completed run whose labelled rows grew since it was last evaluated: its PerformanceRealized,
    and its revised diagnosis with the alerts that follow when the labels change what it found.
    A run that cannot be evaluated is logged and skipped: it never stops the others."""
    registered = RegisteredModel.objects.get(name=model)
    schema = parse_schema(registered.data_schema)
    labels_window = window_load(model=model, kind=BatchKind.LABELS)
    labels = labels_by_id(labels_window.columns, schema) if labels_window.rows else {}
    if not labels:
        return []
    recorded = []
    completed = Run.objects.filter(model_name=model, status=RunStatus.COMPLETED).exclude(window_start=None)
    for run in completed.order_by("started_seq"):
        try:
            recorded += _evaluate(run, schema, registered.task, labels, labels_window.batches)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            logger.exception("labels could not be evaluated for run %s of %s", run.run_id, model)
    return recorded


def _evaluate(
    run: Run, schema: DataSchema, task: str, labels: Mapping[Any, Any], label_batches: list[str]
) -> list[RecordedEvent]:
    predictions = list(
        Batch.objects.filter(sha256__in=run.input_digests, kind=BatchKind.PREDICTIONS).values_list("sha256", flat=True)
    )
    ordered = [digest for digest in run.input_digests if digest in set(predictions)]
    window = window_from_batches(
        model=run.model_name, kind=BatchKind.PREDICTIONS, digests=ordered, start=run.window_start, end=run.window_end
    )
    if not window.rows:
        return []
    ids = window.columns[schema.id]
    labelled, targets = labelled_targets(ids, labels)
    if labelled.size < MIN_LABELLED or labelled.size <= run_load(str(run.run_id)).labelled_rows:
        return []  # too few, or no more than at the last evaluation
    if task == Task.BINARY_CLASSIFICATION and len(set(targets.tolist())) < 2:
        return []
    stored = _stored_result(run)
    policy = stored["policy"] if stored is not None else policy_load(run.model_name).policy
    if task == Task.RANKING and schema.query:  # the quality of the lists that have a label
        k = policy.get("ranking", {}).get("k", 10)
        ranked = ranking_realized(window.columns, labels, schema, k)
        if ranked is None or ranked[0].queries == 0:
            return []
        metric, realized = f"ndcg@{k}", ranked[0].ndcg
    else:
        metric, realized, _ = task_metric(task, targets, window.columns[schema.score_column(window.columns)][labelled])
    event = PerformanceRealized(
        run_id=str(run.run_id),
        model=run.model_name,
        metric=metric,
        realized=realized if math.isfinite(realized) else None,
        labelled_rows=int(labelled.size),
        **_beside_estimate(run, metric, realized),
    )
    revised = _revised_result(run, stored, label_batches)  # outside the transaction: the log waits for no run
    with transaction.atomic():
        # Nothing when no more rows are labelled than at the last evaluation (by this or another worker).
        recorded = aggregate_execute(
            lambda: RunAggregate(str(run.run_id)), lambda r: r.realize(event), actor=SCHEDULER
        ).recorded
        if not recorded or revised is None:
            return recorded
        return recorded + _revise(run, revised, labelled_rows=int(labelled.size), cause=recorded[0].event_id)


def _beside_estimate(run: Run, metric: str, realized: float) -> dict:
    """The run's estimate of the same metric (the whole window's), its band, and whether the
    realized figure fell within it."""
    estimate = next(
        (
            c
            for c in run.checks
            if c.get("check") == CheckKind.ESTIMATED_PERFORMANCE and c.get("metric") == metric and not c.get("segment")
        ),
        None,
    )
    if estimate is None or None in (estimate.get("value"), estimate.get("lower"), estimate.get("upper")):
        return {}
    return {
        "estimated": estimate["value"],
        "lower": estimate["lower"],
        "upper": estimate["upper"],
        "within_band": bool(estimate["lower"] <= realized <= estimate["upper"]),
    }


def _stored_result(run: Run) -> dict | None:
    if not run.result_digest or not blob_exists(run.result_digest):
        return None
    return orjson.loads(blob_read(run.result_digest))


def _revised_result(run: Run, stored: dict | None, label_batches: list[str]) -> dict | None:
    """The run's result computed again on the inputs it recorded with the labels known now; None
    when it cannot be: no recorded inputs (before reproducible results), another engine (its
    other figures would move too, for reasons that are not the labels), a later re-run of the
    window (that one speaks for it now), or no diagnosis to revise."""
    if stored is None or "inputs" not in stored or stored.get("engine") != ENGINE:
        return None
    later = Run.objects.filter(
        model_name=run.model_name,
        window_start=run.window_start,
        window_end=run.window_end,
        started_seq__gt=run.started_seq,
    )
    if later.exists() or not run_load(str(run.run_id)).diagnosed:
        return None
    inputs = {**stored["inputs"], "labels": label_batches}
    start, end = parse_time(stored["window"]["start"]), parse_time(stored["window"]["end"])
    return run_result(
        run.model_name, start, end, stored["policy_version"], stored["policy"], str(run.run_id), inputs=inputs
    )


def _revise(run: Run, result: dict, *, labelled_rows: int, cause: str) -> list[RecordedEvent]:
    """The run's diagnosis revised from `result`, and its alerts following it; nothing when
    nothing changed."""
    checks = [Check.model_validate(check) for check in result["checks"]]
    found = diagnose(checks)
    aggregate = run_load(str(run.run_id))
    revised = RunDiagnosisRevised(
        run_id=str(run.run_id),
        model=run.model_name,
        revision=aggregate.revisions + 1,
        revises=_diagnosis_event_id(str(run.run_id)),
        labelled_rows=labelled_rows,
        checks=checks,
        result_digest=blob_save(canonicalize(result)),
        cause=found.cause,
        scope=found.scope,
        evidence=found.evidence,
        actions=found.actions,
        new_segments=found.new_segments or None,
    )
    recorded = aggregate_execute(
        lambda: RunAggregate(str(run.run_id)),
        lambda r: r.revise(revised),
        actor=SCHEDULER,
        causation=cause,
        reason=f"labels for {labelled_rows:,} rows of its window arrived",
    ).recorded
    if not recorded:
        return []
    return recorded + alerts_from_run(
        model=run.model_name,
        run_id=str(run.run_id),
        window_end=format_time(run.window_end),
        checks=checks,
        actor=SCHEDULER,
        causation=recorded[0].event_id,
    )


def _diagnosis_event_id(run_id: str) -> str:
    """The event that holds the run's current diagnosis: the last RunDiagnosed or revision."""
    current = (
        Event.objects.filter(
            stream_type=STREAM, stream_id=run_id, event_type__in=[RunDiagnosed.type_name, RunDiagnosisRevised.type_name]
        )
        .order_by("-seq")
        .values_list("event_id", flat=True)
        .first()
    )
    if current is None:
        raise InvalidCommand(f"run {run_id} has no diagnosis to revise")
    return str(current)
