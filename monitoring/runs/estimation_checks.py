"""Performance without labels (pure): for a binary classifier, confidence-based estimation of
the policy's metrics (ROC AUC by default; accuracy, precision, recall, F1 from the model's own
predicted labels when it reports them); for a regression model, direct loss estimation of MAE
or RMSE. Each estimate is judged two ways: against the policy's fixed drops from the
reference's figure, and against the range the metric keeps across the reference's chunks by
chance alone (scaled to the window's size): outside it is at least a warning."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from monitoring.registry.data_schema import DataSchema
from monitoring.runs.domain import CheckKind, Level
from monitoring.runs.grading import finite, graded
from monitoring.stats.estimation import PerformanceEstimator
from monitoring.stats.loss_estimation import LossEstimator
from monitoring.stats.performance import confusion_metrics_by_row

Columns = Mapping[str, np.ndarray]
# A policy set before estimation could be chosen (reproducing or revising an older run): as then.
BEFORE_CHOICE = {"classification_metrics": ["roc_auc"], "regression_metrics": [], "sigmas": None}


def estimated_checks(
    reference: Columns, current: Columns, target: str, schema: DataSchema, task: str, policy
) -> list[dict]:
    if task == "binary_classification":
        return _classification(reference, current, target, schema, policy)
    if task == "regression":
        return _regression(reference, current, target, schema, policy)
    return []


def every_row_or(mask: np.ndarray) -> np.ndarray | slice:
    """The rows where `mask` holds, to index with; every row (a slice: a view, not a copy) when
    it holds everywhere, as it mostly does. At 10M rows each such copy was 80 MB more held at
    the run's peak (`bench/combine_memory.py`)."""
    return slice(None) if mask.all() else np.flatnonzero(mask)


def _chunk(rows: int) -> int:
    return max(min(1000, rows // 5), 50)


def _predicted(columns: Columns, schema: DataSchema, rows: np.ndarray | slice) -> np.ndarray | None:
    """The model's own predicted labels (0 or 1) when it reports them beside its score."""
    if not schema.score or schema.prediction == schema.score or schema.prediction not in columns:
        return None
    labels = np.asarray(columns[schema.prediction], dtype=float)[rows]
    return labels.astype(bool) if np.isin(labels, (0.0, 1.0)).all() else None


def _classification(reference: Columns, current: Columns, target: str, schema: DataSchema, policy) -> list[dict]:
    score_column = schema.score_column(reference)
    if score_column not in current:
        return []
    scores = np.asarray(reference[score_column], dtype=np.float64)
    labels = np.asarray(reference[target], dtype=np.float64)
    keep = every_row_or(np.isfinite(scores) & np.isfinite(labels))
    scores, labels = scores[keep], labels[keep]
    chunk = _chunk(scores.size)
    if scores.size < 2 * chunk or not (scores.min() >= 0 and scores.max() <= 1) or len(np.unique(labels)) < 2:
        return []
    reference_predicted = _predicted(reference, schema, keep)
    window = np.asarray(current[score_column], dtype=float)
    rows = every_row_or(np.isfinite(window))
    current_predicted = _predicted(current, schema, rows) if reference_predicted is not None else None
    if current_predicted is None:
        reference_predicted = None  # one rule on both sides: the score at 0.5
    estimator = PerformanceEstimator.fit(scores, labels, chunk_size=chunk, predicted=reference_predicted)
    current_scores = window[rows]
    estimates = estimator.estimate(current_scores, predicted=current_predicted)
    decided = scores >= 0.5 if reference_predicted is None else reference_predicted
    before = confusion_metrics_by_row(labels[None, :], scores[None, :], decided[None, :])  # the reference whole
    settings = policy.get("estimation", BEFORE_CHOICE)
    checks = []
    for metric in settings["classification_metrics"]:
        estimate = estimates[metric]
        figure = float(before[metric][0])
        low = (
            estimator.expected_range(metric, current_scores.size, settings["sigmas"])[0]
            if settings["sigmas"]
            else -np.inf
        )
        extra = {"lower": finite(estimate.lower), "upper": finite(estimate.upper)}
        check = graded(CheckKind.ESTIMATED_PERFORMANCE, metric, estimate.value, figure, figure - estimate.value,
                       policy, extra)  # fmt: skip
        checks.append(_outside(check, estimate.value < low))
    return checks


def _regression(reference: Columns, current: Columns, target: str, schema: DataSchema, policy) -> list[dict]:
    if not policy.get("estimation", BEFORE_CHOICE)["regression_metrics"]:
        return []
    inputs = [name for name in schema.numerical if name in reference and name in current]
    if not inputs or schema.prediction not in current:
        return []
    ref = np.column_stack([np.asarray(reference[name], dtype=float) for name in inputs])
    ref_predictions = np.asarray(reference[schema.prediction], dtype=float)
    targets = np.asarray(reference[target], dtype=float)
    keep = np.isfinite(ref).all(axis=1) & np.isfinite(ref_predictions) & np.isfinite(targets)
    chunk = _chunk(int(keep.sum()))
    if keep.sum() < 2 * chunk:
        return []
    estimator = LossEstimator.fit(ref[keep], ref_predictions[keep], targets[keep], chunk_size=chunk)
    cur = np.column_stack([np.asarray(current[name], dtype=float) for name in inputs])
    predictions = np.asarray(current[schema.prediction], dtype=float)
    rows = np.isfinite(cur).all(axis=1) & np.isfinite(predictions)
    if not rows.any():
        return []
    estimates = estimator.estimate(cur[rows], predictions[rows])
    errors = targets[keep] - ref_predictions[keep]
    realized = {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))}
    settings = policy.get("estimation", BEFORE_CHOICE)
    checks = []
    for metric in settings["regression_metrics"]:
        estimate, figure = estimates[metric], realized[metric]
        high = (
            estimator.expected_range(metric, int(rows.sum()), settings["sigmas"])[1] if settings["sigmas"] else np.inf
        )
        rise = (estimate.value - figure) / figure if figure else 0.0  # an error's rise, as a share of it
        extra = {"lower": finite(estimate.lower), "upper": finite(estimate.upper)}
        check = graded(CheckKind.ESTIMATED_PERFORMANCE, metric, estimate.value, figure, rise, policy, extra)
        checks.append(_outside(check, estimate.value > high))
    return checks


def _outside(check: dict, outside: bool) -> dict:
    """A figure outside the range chance allows is at least a warning."""
    if outside and check["status"] == Level.OK:
        return {**check, "status": Level.WARNING}
    return check
