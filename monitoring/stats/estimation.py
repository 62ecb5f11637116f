"""Performance estimation without labels for binary classifiers (confidence-based, CBPE).

Calibrate the model's scores on the labelled reference with isotonic regression, read each
current score as the probability that its row is positive, and take expectations: of the
confusion matrix at the decision threshold (hence accuracy, precision, recall, F1) and of the ROC
curve (hence ROC AUC). This holds under covariate shift as long as P(y | score) is unchanged;
when labels change given the inputs (concept drift) the estimate stays where it was while the
realized figure falls, which is how the diagnosis tells the two apart.

Sampling error: the standard deviation of the realized metric across reference chunks, scaled to
the current chunk's size; the band is estimate ± 3 standard errors. The same chunks give the range
a metric keeps by chance alone (`expected_range`: their mean ± 3 standard deviations, scaled to
the window's size): an estimate outside it is a finding even when it is short of a fixed drop.

The confusion-matrix metrics read the model's own predicted labels when it reports them (a model
may decide with a threshold other than 0.5, or with rules beside its score); else the score at
the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import isotonic_regression

from monitoring.stats.performance import confusion_metrics_by_row

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
PIECE_ROWS = 1 << 20  # rows a step takes at a time where a full-length copy is not needed


@dataclass(frozen=True)
class Calibration:
    """Isotonic map from score to P(y = 1), as scikit-learn's IsotonicRegression(out_of_bounds=
    "clip") fits it: tied scores first averaged into one point weighted by their count (so the
    fit stays mean-preserving), then linear between the distinct scores, flat beyond them."""

    scores: np.ndarray  # distinct reference scores, ascending
    probabilities: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray) -> Calibration:
        distinct, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=labels.astype(float)) / counts
        fitted = isotonic_regression(means, weights=counts.astype(float)).x
        return cls(distinct, np.clip(fitted, 0.0, 1.0))

    def __call__(self, scores: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        # np.interp searches from where the last score landed: in ascending order that is a
        # step or two, in the window's order a full search of the reference's distinct scores,
        # with a cache miss at each step (13.5 s against 3.0 s for 10M of each here). Each piece
        # is sorted on its own: a score's probability is its own whatever its neighbours, and the
        # window is never sorted, or its order held, whole (800 MB each at 100M rows). `out`:
        # where the probabilities are written, `scores` itself included (each piece is read
        # before it is written over).
        scores = np.asarray(scores, dtype=float)
        if scores.ndim != 1:  # one number (or a table): in its own shape
            return np.interp(scores, self.scores, self.probabilities)
        probabilities = np.empty(scores.shape) if out is None else out
        for start in range(0, scores.size, PIECE_ROWS):
            piece = scores[start : start + PIECE_ROWS]
            order = np.argsort(piece)
            probabilities[start : start + piece.size][order] = np.interp(piece[order], self.scores, self.probabilities)
        return probabilities


def expected_metrics(
    probabilities: np.ndarray, scores: np.ndarray, threshold: float, predicted: np.ndarray | None = None
) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1 and ROC AUC given P(y=1) per row, for the
    predicted labels given (else the score at `threshold`)."""
    p = np.asarray(probabilities)
    order = np.argsort(-scores, kind="stable")
    positive = p[order]
    auc = _expected_auc(scores[order], lambda start, stop: positive[start:stop])
    return {**_expected_confusion(lambda rows: p[rows], scores, threshold, predicted), "roc_auc": auc}


def _expected_confusion(
    probabilities_of: Callable[[np.ndarray], np.ndarray],
    scores: np.ndarray,
    threshold: float,
    predicted: np.ndarray | None,
) -> dict[str, float]:
    """`probabilities_of(rows)`: P(y=1) of the rows a mask picks, as an array of its own."""
    predicted = scores >= threshold if predicted is None else np.asarray(predicted, dtype=bool)
    tp, fp = _expected_outcomes(probabilities_of(predicted))
    fn, tn = _expected_outcomes(probabilities_of(~predicted))
    return {
        "accuracy": (tp + tn) / scores.size,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
    }


def _expected_outcomes(chosen: np.ndarray) -> tuple[float, float]:
    """(Σ p, Σ (1 − p)) over the chosen rows' probabilities, written over (`1 - chosen` was a
    second copy)."""
    positives = float(chosen.sum())
    np.subtract(1, chosen, out=chosen)
    return positives, float(chosen.sum())


def _expected_auc(descending: np.ndarray, positives: Callable[[int, int], np.ndarray]) -> float:
    """Area under the expected ROC curve, thresholds at every distinct score (ties grouped).
    `descending`: the rows' scores from the highest, tied ones in the rows' order (an array of
    its own: it is written over); `positives(start, stop)`: P(y=1) of those rows in that order.

    The figure of `np.trapezoid(tpr, fpr)` over the curve's points from (0, 0), to the last
    bit, with no full-length array but the scores in order, written over by their
    probabilities, and the curve's points: the running sums are taken a piece at a time (a
    running sum adds one row after another: carried from piece to piece, it is the same sum),
    and each piece's trapezoids are written over the true positive rates. At 100M rows each
    full-length array is 800 MB, and the plain expressions held some eight of them at once."""
    size = descending.size
    # The last row of each run of tied scores: where the next differs (np.diff's nonzero: an
    # infinity is never tied, inf - inf being NaN).
    group_ends = np.empty(size, dtype=bool)
    np.not_equal(descending[1:], descending[:-1], out=group_ends[:-1])
    group_ends[:-1] |= np.isinf(descending[:-1])
    group_ends[-1] = True
    positive: np.ndarray | None = None
    for start in range(0, size, PIECE_ROWS):
        chosen = positives(start, min(start + PIECE_ROWS, size))
        if positive is None:  # in the running sum's type, as np.cumsum gives it; in the scores' place
            kind = np.cumsum(chosen[:1]).dtype
            positive = descending if descending.dtype == kind else np.empty(size, dtype=kind)
        positive[start : start + chosen.size] = chosen
    del descending
    assert positive is not None
    rates = np.result_type(positive.dtype, 0.0)  # as np.r_[0.0, ...] gives: float32 stays float32
    tpr = np.empty(int(np.count_nonzero(group_ends)), dtype=rates)  # the curve's points after (0, 0)
    point = 0
    for running in _running_pieces(positive, group_ends, rates):
        tpr[point : point + running.size] = running
        point += running.size
    tpr /= max(positive.sum(), 1e-12)
    np.subtract(1, positive, out=positive)  # each row's expected negative
    negatives = max(positive.sum(), 1e-12)
    # Each piece's false positive rates and the true positive rates make its trapezoids, written
    # over those true positive rates once read; the next piece starts from the last point.
    fpr_before, tpr_before, point = 0.0, 0.0, 0
    for fpr in _running_pieces(positive, group_ends, rates):
        fpr /= negatives
        tpr_here = tpr[point : point + fpr.size]
        width = np.empty(fpr.size, dtype=fpr.dtype)  # from each point to the next, (0, 0) first
        width[0] = fpr[0] - fpr_before
        np.subtract(fpr[1:], fpr[:-1], out=width[1:])
        fpr_before = fpr[-1]
        height = fpr  # spent: its memory holds the heights
        height[0] = tpr_here[0] + tpr_before
        np.add(tpr_here[1:], tpr_here[:-1], out=height[1:])
        tpr_before = tpr_here[-1]
        np.multiply(width, height, out=tpr_here)
        np.divide(tpr_here, 2.0, out=tpr_here)
        point += fpr.size
    return float(tpr.sum())


def _running_pieces(values: np.ndarray, ends: np.ndarray, rates: np.dtype) -> Iterator[np.ndarray]:
    """`np.cumsum(values)[ends]` as `rates`, to the bit, a piece at a time: a running sum adds
    one row after another, so the sum carried into a piece's first row continues it exactly."""
    carried = None
    for start in range(0, values.size, PIECE_ROWS):
        piece = values[start : start + PIECE_ROWS].copy()
        if carried is not None:
            piece[0] += carried
        np.cumsum(piece, out=piece)
        carried = piece[-1]
        running = piece[ends[start : start + PIECE_ROWS]]
        if running.size:
            yield running.astype(rates, copy=False)


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    lower: float
    upper: float
    standard_error: float


@dataclass
class PerformanceEstimator:
    calibration: Calibration
    threshold: float
    reference_std: dict[str, float]
    reference_chunk_size: int
    reference_mean: dict[str, float] = field(default_factory=dict)  # across the reference's chunks

    @classmethod
    def fit(
        cls,
        scores: np.ndarray,
        labels: np.ndarray,
        *,
        threshold: float = 0.5,
        chunk_size: int = 1000,
        predicted: np.ndarray | None = None,
    ) -> PerformanceEstimator:
        """Calibrate on the reference, and measure how much each metric varies between its chunks
        (a chunk holding a single class has no ROC AUC: it does not count)."""
        _check_scores(scores, "reference")
        if scores.size < 2 * chunk_size:
            raise ValueError("the reference needs at least two chunks of labelled rows")
        if predicted is not None and np.asarray(predicted).shape != scores.shape:
            raise ValueError("predicted labels and scores must have one row each")
        decided = scores >= threshold if predicted is None else np.asarray(predicted, dtype=bool)
        whole = (scores.size // chunk_size) * chunk_size  # the incomplete last chunk is left out
        by_chunk = [a[:whole].reshape(-1, chunk_size) for a in (labels, scores, decided)]
        positives = by_chunk[0].sum(axis=1)
        both = (positives > 0) & (positives < chunk_size)
        if both.sum() < 2:
            raise ValueError("the reference needs at least two chunks holding both classes")
        realized = confusion_metrics_by_row(*(a[both] for a in by_chunk))
        spread = {metric: float(np.std(realized[metric], ddof=1)) for metric in METRICS}
        mean = {metric: float(np.mean(realized[metric])) for metric in METRICS}
        return cls(Calibration.fit(scores, labels), threshold, spread, chunk_size, mean)

    def expected_range(self, metric: str, rows: int, sigmas: float = 3.0) -> tuple[float, float]:
        """Where the metric stays by chance alone on a window of `rows` rows: the reference
        chunks' mean ± `sigmas` of their standard deviation, scaled to the window's size."""
        spread = sigmas * self.reference_std[metric] * np.sqrt(self.reference_chunk_size / max(rows, 1))
        return self.reference_mean[metric] - spread, self.reference_mean[metric] + spread

    def estimate(self, scores: np.ndarray, predicted: np.ndarray | None = None) -> dict[str, Estimate]:
        """Each metric's estimate with its band, clipped to [0, 1] where the metric lives."""
        _check_scores(scores, "current")
        if predicted is not None and np.asarray(predicted).shape != scores.shape:
            raise ValueError("predicted labels and scores must have one row each")
        # A row's probability is its score's alone, so no array of them all is made: each side
        # of the confusion matrix calibrates its own rows' scores, written over (at 100M rows
        # the window's probabilities and a side's copy of them held 1.4 GB); the ROC curve
        # needs the scores sorted, not the order of the rows (tied rows have one probability).
        values = _expected_confusion(self._probabilities_of(scores), scores, self.threshold, predicted)
        descending = np.negative(scores)
        descending.sort()  # in place: -x sorted is x from the highest, and -(-x) is x exactly
        np.negative(descending, out=descending)
        values["roc_auc"] = _expected_auc(descending, lambda start, stop: self.calibration(descending[start:stop]))
        scale = np.sqrt(self.reference_chunk_size / scores.size)
        estimates = {}
        for metric, value in values.items():
            error = self.reference_std[metric] * scale
            low, high = max(value - 3 * error, 0.0), min(value + 3 * error, 1.0)
            estimates[metric] = Estimate(metric, value, low, high, error)
        return estimates

    def _probabilities_of(self, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        def probabilities(rows: np.ndarray) -> np.ndarray:
            chosen = np.asarray(scores[rows], dtype=np.float64)  # of its own: written over
            return self.calibration(chosen, out=chosen)

        return probabilities


def _check_scores(scores: np.ndarray, side: str) -> None:
    """The estimator reads scores as probabilities: a missing one or one outside [0, 1] would be
    read as a confident prediction, so it is refused, clearly, before anything is computed."""
    if scores.size == 0:
        raise ValueError(f"no {side} scores to estimate from")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} {side} scores are missing (NaN): drop them first")
    if scores.min() < 0 or scores.max() > 1:
        raise ValueError(
            f"{side} scores must lie in [0, 1] (probabilities); found {scores.min():.4g} to {scores.max():.4g}"
        )
