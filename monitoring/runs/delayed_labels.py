"""Delayed labels: when labels arrive for the windows of past runs, the performance realized
on each window is computed and set beside what the run estimated without labels."""

from __future__ import annotations

import math

import numpy as np

from audit.aggregates import aggregate_execute
from audit.store import RecordedEvent
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.models import Batch
from monitoring.ingestion.selectors import window_from_batches, window_load
from monitoring.registry.data_schema import DataSchema, Task, parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.checks import labelled_rows, labels_by_id
from monitoring.runs.domain import CheckKind, PerformanceRealized, RunAggregate, RunStatus
from monitoring.runs.models import Run
from monitoring.runs.services import SCHEDULER
from monitoring.stats.performance import binary_performance

MIN_LABELLED = 30


def runs_evaluate_labels(model: str) -> list[RecordedEvent]:
    """One PerformanceRealized per completed run whose labelled rows grew since it was last evaluated."""
    registered = RegisteredModel.objects.get(name=model)
    if registered.task != Task.BINARY_CLASSIFICATION:
        return []
    schema = parse_schema(registered.data_schema)
    labels_window = window_load(model=model, kind=BatchKind.LABELS)
    labels = labels_by_id(labels_window.columns, schema) if labels_window.rows else {}
    if not labels:
        return []
    recorded = []
    completed = Run.objects.filter(model_name=model, status=RunStatus.COMPLETED).exclude(window_start=None)
    for run in completed.order_by("started_seq"):
        recorded += _evaluate(run, schema, labels)
    return recorded


def _evaluate(run: Run, schema: DataSchema, labels: dict) -> list[RecordedEvent]:
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
    labelled = labelled_rows(ids, labels)
    if labelled.size < MIN_LABELLED:
        return []
    targets = np.array([labels[ids[i]] for i in labelled], dtype=float)
    if len(np.unique(targets)) < 2:
        return []
    scores = window.columns[schema.score_column(window.columns)][labelled].astype(float)
    realized = binary_performance(targets, scores).roc_auc
    estimate = next((c for c in run.checks if c.get("check") == CheckKind.ESTIMATED_PERFORMANCE), None)
    band = {}
    if estimate is not None and None not in (estimate.get("value"), estimate.get("lower"), estimate.get("upper")):
        band = {
            "estimated": estimate["value"],
            "lower": estimate["lower"],
            "upper": estimate["upper"],
            "within_band": bool(estimate["lower"] <= realized <= estimate["upper"]),
        }
    event = PerformanceRealized(
        run_id=str(run.run_id),
        model=run.model_name,
        metric="roc_auc",
        realized=realized if math.isfinite(realized) else None,
        labelled_rows=int(labelled.size),
        **band,
    )
    # Nothing when no more rows are labelled than at the last evaluation (by this or another worker).
    return aggregate_execute(
        lambda: RunAggregate(str(run.run_id)), lambda r: r.realize(event), actor=SCHEDULER
    ).recorded
