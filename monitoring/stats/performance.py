"""Model performance from labels: binary classification, multiclass and regression.

Definitions follow scikit-learn's (roc_auc_score, average_precision_score, log_loss with the
dtype's epsilon, f1_score with zero_division=0, mean_absolute_percentage_error, r2_score), so
figures agree with what data scientists compute offline; tests hold them to 1e-12.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from monitoring.stats.univariate import ks_statistic_sorted

ECE_BINS = 10


@dataclass(frozen=True)
class BinaryPerformance:
    roc_auc: float
    gini: float
    ks: float
    pr_auc: float
    accuracy: float
    precision: float
    recall: float
    f1: float
    log_loss: float
    brier: float
    expected_calibration_error: float
    threshold: float
    rows: int
    positives: int


def binary_performance(
    y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5, *, predicted: np.ndarray | None = None
) -> BinaryPerformance:
    """Ranking metrics from the scores; confusion-matrix ones from the predicted labels when
    given (the model's own decisions), else from the score at `threshold`."""
    y = _binary_labels(y_true)
    p = np.asarray(scores, dtype=float)
    if p.shape != y.shape:
        raise ValueError("labels and scores differ in length")
    positives = int(y.sum())
    if positives in (0, y.size):
        raise ValueError("ROC AUC needs both classes among the labels")
    auc = roc_auc(y, p)
    predicted = p >= threshold if predicted is None else np.asarray(predicted, dtype=bool)
    if predicted.shape != y.shape:
        raise ValueError("labels and predicted labels differ in length")
    tp = int(np.count_nonzero(predicted & (y == 1)))
    fp = int(np.count_nonzero(predicted & (y == 0)))
    fn = positives - tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives
    return BinaryPerformance(
        roc_auc=auc,
        gini=2 * auc - 1,
        ks=ks_statistic_sorted(np.sort(p[y == 1]), np.sort(p[y == 0])),
        pr_auc=average_precision(y, p),
        accuracy=float(np.mean(predicted == (y == 1))),
        precision=precision,
        recall=recall,
        f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        log_loss=log_loss(y, p),
        brier=float(np.mean((p - y) ** 2)),
        expected_calibration_error=expected_calibration_error(y, p),
        threshold=threshold,
        rows=int(y.size),
        positives=positives,
    )


def _binary_labels(y_true: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("binary labels must be 0 or 1")
    return y.astype(np.int8)


def binary_roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """The ROC AUC alone (what a run's figures need), with binary_performance's refusals."""
    y = _binary_labels(y_true)
    p = np.asarray(scores, dtype=float)
    if p.shape != y.shape:
        raise ValueError("labels and scores differ in length")
    if int(y.sum()) in (0, y.size):
        raise ValueError("ROC AUC needs both classes among the labels")
    return roc_auc(y, p)


def confusion_metrics_by_row(labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """ROC AUC, accuracy, precision, recall and F1 of each row of 2-D arrays (one chunk per row,
    every chunk holding both classes), all at once: as binary_performance computes them."""
    y = labels.astype(bool)
    rows = y.shape[1]
    positives = y.sum(axis=1)
    ranks = rankdata(scores, axis=1)
    auc = ((ranks * y).sum(axis=1) - positives * (positives + 1) / 2) / (positives * (rows - positives))
    tp = (predicted & y).sum(axis=1)
    fp = (predicted & ~y).sum(axis=1)
    fn = positives - tp
    tn = rows - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "roc_auc": auc,
            "accuracy": (tp + tn) / rows,
            "precision": np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0),
            "recall": tp / positives,
            "f1": np.where(tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0),
        }


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann–Whitney form: the probability a positive outscores a negative, ties counting half."""
    ranks = rankdata(p)
    positives = int(y.sum())
    negatives = y.size - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Σ (R_k − R_{k−1}) · P_k over distinct score thresholds, highest first."""
    order = np.argsort(-p, kind="mergesort")
    scores, labels = p[order], y[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_positives = np.cumsum(labels)[last_of_group]
    predicted = last_of_group + 1
    precision = true_positives / predicted
    recall = true_positives / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    eps = np.finfo(p.dtype).eps
    clipped = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ_b (n_b / n) · |mean label − mean score| over equal-width score bins [0, 1/b), …, [.., 1]."""
    which = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    label_sums = np.bincount(which, weights=y, minlength=bins)
    score_sums = np.bincount(which, weights=p, minlength=bins)
    used = counts > 0
    gaps = np.abs(label_sums[used] - score_sums[used]) / counts[used]
    return float(np.sum(counts[used] / y.size * gaps))


@dataclass(frozen=True)
class MulticlassPerformance:
    accuracy: float
    macro_f1: float
    weighted_f1: float
    rows: int


def multiclass_performance(y_true: np.ndarray, y_pred: np.ndarray) -> MulticlassPerformance:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError("labels and predictions differ in length")
    labels = np.union1d(np.unique(y_true), np.unique(y_pred))
    t = np.searchsorted(labels, y_true)
    q = np.searchsorted(labels, y_pred)
    k = labels.size
    tp = np.bincount(t[t == q], minlength=k).astype(float)
    support = np.bincount(t, minlength=k).astype(float)
    predicted = np.bincount(q, minlength=k).astype(float)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return MulticlassPerformance(
        accuracy=float(np.mean(t == q)),
        macro_f1=float(np.mean(f1)),
        weighted_f1=float(np.sum(f1 * support) / support.sum()),
        rows=int(t.size),
    )


@dataclass(frozen=True)
class RegressionPerformance:
    mae: float
    rmse: float
    mape: float
    r2: float
    rows: int


def regression_performance(y_true: np.ndarray, y_pred: np.ndarray) -> RegressionPerformance:
    y, f = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y.shape != f.shape:
        raise ValueError("targets and predictions differ in length")
    errors = f - y
    total = np.sum((y - y.mean()) ** 2)
    residual = np.sum(errors**2)
    r2 = 1 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return RegressionPerformance(
        mae=float(np.mean(np.abs(errors))),
        rmse=float(np.sqrt(np.mean(errors**2))),
        mape=float(np.mean(np.abs(errors) / np.maximum(np.abs(y), np.finfo(np.float64).eps))),
        r2=float(r2),
        rows=int(y.size),
    )
