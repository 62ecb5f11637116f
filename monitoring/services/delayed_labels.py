"""Delayed labels: when labels arrive for the windows of past runs, the performance realized
on each window is computed and set beside what the run estimated without labels."""

from __future__ import annotations

import math

import numpy as np

from audit.models import Event
from audit.store import ConcurrencyConflict, NewEvent, RecordedEvent, append
from monitoring.data_schema import parse_schema
from monitoring.models import RegisteredModel, Run
from monitoring.selectors import window_from_batches, window_load
from monitoring.services.runs import SCHEDULER, STREAM
from monitoring.stats.performance import binary_performance

MIN_LABELLED = 30


def runs_evaluate_labels(model: str) -> list[RecordedEvent]:
    """One PerformanceRealized per completed run whose labelled rows grew since it was last evaluated."""
    registered = RegisteredModel.objects.get(name=model)
    if registered.task != "binary_classification":
        return []
    schema = parse_schema(registered.data_schema)
    labels_window = window_load(model=model, kind="labels")
    if not labels_window.rows or not schema.target:
        return []
    labels = dict(
        zip(labels_window.columns[schema.id].tolist(), labels_window.columns[schema.target].tolist(), strict=True)
    )
    recorded = []
    for run in (
        Run.objects.filter(model_name=model, status="completed").exclude(window_start=None).order_by("started_seq")
    ):
        recorded += _evaluate(run, schema, labels)
    return recorded


def _evaluate(run: Run, schema, labels: dict) -> list[RecordedEvent]:
    predictions = [d for d in run.input_digests if _kind_of(d) == "predictions"]
    window = window_from_batches(
        model=run.model_name, kind="predictions", digests=predictions, start=run.window_start, end=run.window_end
    )
    if not window.rows:
        return []
    ids = window.columns[schema.id]
    labelled = np.array([i for i, key in enumerate(ids.tolist()) if key in labels], dtype=np.int64)
    previous = _last_realized(run)
    if labelled.size < MIN_LABELLED or (previous is not None and previous["labelled_rows"] >= labelled.size):
        return []
    score = schema.score if schema.score and schema.score in window.columns else schema.prediction
    targets = np.array([labels[ids[i]] for i in labelled], dtype=float)
    if len(np.unique(targets)) < 2:
        return []
    realized = binary_performance(targets, window.columns[score][labelled].astype(float)).roc_auc
    payload = {
        "run_id": str(run.run_id),
        "model": run.model_name,
        "metric": "roc_auc",
        "realized": realized if math.isfinite(realized) else None,
        "labelled_rows": int(labelled.size),
    }
    estimate = next((c for c in run.checks if c["check"] == "estimated_performance"), None)
    if estimate is not None and None not in (estimate.get("value"), estimate.get("lower"), estimate.get("upper")):
        payload |= {
            "estimated": estimate["value"],
            "lower": estimate["lower"],
            "upper": estimate["upper"],
            "within_band": bool(estimate["lower"] <= realized <= estimate["upper"]),
        }
    version = Event.objects.filter(stream_type=STREAM, stream_id=str(run.run_id)).count()
    event = NewEvent(STREAM, str(run.run_id), "monitoring.PerformanceRealized", payload, SCHEDULER)
    try:
        return append([event], expected={(STREAM, str(run.run_id)): version})
    except ConcurrencyConflict:
        return []  # evaluated at the same moment by another worker


def _last_realized(run: Run) -> dict | None:
    event = (
        Event.objects.filter(stream_type=STREAM, stream_id=str(run.run_id), event_type="monitoring.PerformanceRealized")
        .order_by("-seq")
        .values_list("payload", flat=True)
        .first()
    )
    return event


def _kind_of(digest: str) -> str | None:
    from monitoring.models import Batch

    return Batch.objects.filter(sha256=digest).values_list("kind", flat=True).first()
