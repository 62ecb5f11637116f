"""Estimation without labels, validated where the truth is known: a generator with calibrated
scores, under covariate shift (estimate tracks realized) and concept drift (it cannot)."""

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from monitoring.stats import estimation
from monitoring.stats.estimation import Calibration, PerformanceEstimator, expected_metrics
from monitoring.stats.performance import binary_performance


def _population(rng, rows: int, mean: float, concept: float = 1.0):
    """x ~ N(mean, 1); the model scores sigmoid(2x − 0.5), the true P(y=1|x) is sigmoid(concept·(2x − 0.5))."""
    x = rng.normal(mean, 1.0, rows)
    scores = 1 / (1 + np.exp(-(2 * x - 0.5)))
    truth = 1 / (1 + np.exp(-concept * (2 * x - 0.5)))
    labels = (rng.random(rows) < truth).astype(int)
    return scores, labels


def test_isotonic_calibration_equals_scikit_learn():
    rng = np.random.default_rng(1)
    scores, labels = _population(rng, 5000, 0.0)
    ours = Calibration.fit(scores, labels)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    probe = np.sort(scores)
    assert ours(probe) == pytest.approx(theirs.predict(probe), abs=1e-12)


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_calibrating_scores_in_any_order_is_np_interp_bit_for_bit(piece, monkeypatch):
    monkeypatch.setattr(estimation, "PIECE_ROWS", piece)  # the window calibrated a piece at a time
    rng = np.random.default_rng(7)
    scores, labels = _population(rng, 20_000, 0.0)
    calibration = Calibration.fit(np.round(scores, 3), labels)  # ties, and probes beyond both ends
    probe = np.r_[rng.permutation(scores), -0.5, 1.5, np.nan, scores[:50]]
    expected = np.interp(probe, calibration.scores, calibration.probabilities)
    assert calibration(probe).tobytes() == expected.tobytes()


def test_expected_confusion_matrix_by_hand():
    p = np.array([0.9, 0.6, 0.2, 0.1])
    scores = np.array([0.8, 0.7, 0.3, 0.2])
    metrics = expected_metrics(p, scores, threshold=0.5)
    tp, fp, fn, tn = 1.5, 0.5, 0.3, 1.7
    assert metrics["accuracy"] == pytest.approx((tp + tn) / 4)
    assert metrics["precision"] == pytest.approx(tp / (tp + fp))
    assert metrics["recall"] == pytest.approx(tp / (tp + fn))


def test_under_covariate_shift_the_estimate_falls_within_its_band_in_most_chunks():
    rng = np.random.default_rng(2026)
    ref_scores, ref_labels = _population(rng, 20_000, 0.0)
    estimator = PerformanceEstimator.fit(ref_scores, ref_labels, chunk_size=1000)
    hits = total = 0
    for shift in np.linspace(-1.0, 1.0, 10):
        for _ in range(5):
            scores, labels = _population(rng, 1000, shift)
            realized = binary_performance(labels, scores)
            estimates = estimator.estimate(scores)
            for metric in ("accuracy", "f1", "roc_auc"):
                estimate = estimates[metric]
                total += 1
                hits += estimate.lower <= getattr(realized, metric) <= estimate.upper
    assert hits / total >= 0.9


def test_under_concept_drift_the_estimate_stays_while_realized_performance_falls():
    rng = np.random.default_rng(7)
    ref_scores, ref_labels = _population(rng, 20_000, 0.0)
    estimator = PerformanceEstimator.fit(ref_scores, ref_labels, chunk_size=1000)
    before_scores, before_labels = _population(rng, 5000, 0.0)
    after_scores, after_labels = _population(rng, 5000, 0.0, concept=0.2)  # labels barely follow x now
    estimated_before = estimator.estimate(before_scores)["roc_auc"].value
    estimated_after = estimator.estimate(after_scores)["roc_auc"]
    realized_after = binary_performance(after_labels, after_scores).roc_auc
    assert estimated_after.value == pytest.approx(estimated_before, abs=0.02)
    assert realized_after < estimated_after.lower
    assert binary_performance(before_labels, before_scores).roc_auc == pytest.approx(estimated_before, abs=0.03)


def test_too_small_a_reference_is_refused():
    rng = np.random.default_rng(0)
    scores, labels = _population(rng, 1500, 0.0)
    with pytest.raises(ValueError, match="two chunks"):
        PerformanceEstimator.fit(scores, labels, chunk_size=1000)


@pytest.mark.parametrize("levels", [None, 101, 7])  # continuous scores; 101 distinct values; heavy ties
def test_the_calibration_equals_scikit_learns_isotonic_regression(levels):
    rng = np.random.default_rng(11)
    scores = rng.beta(2, 5, 5000)
    if levels:
        scores = np.round(scores * (levels - 1)) / (levels - 1)
    labels = (rng.random(5000) < scores).astype(float)
    ours = Calibration.fit(scores, labels)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, labels)
    probe = np.r_[scores[:500], rng.random(500), -0.1, 1.2]
    assert np.allclose(ours(probe), theirs.predict(probe), atol=1e-12)
    assert ours(scores).mean() == pytest.approx(labels.mean(), abs=1e-12)  # mean-preserving on ties too


def test_missing_or_out_of_range_scores_are_refused_clearly():
    rng = np.random.default_rng(12)
    scores = rng.random(4000)
    estimator = PerformanceEstimator.fit(scores, (rng.random(4000) < scores).astype(float))
    with pytest.raises(ValueError, match="missing"):
        estimator.estimate(np.r_[scores[:100], np.nan])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        estimator.estimate(np.r_[scores[:100], 1.7])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        PerformanceEstimator.fit(scores * 3, (rng.random(4000) < scores).astype(float))


def test_bands_stay_within_zero_and_one():
    rng = np.random.default_rng(13)
    scores = np.r_[rng.beta(0.3, 8, 2000), rng.beta(8, 0.3, 2000)]  # nearly perfect separation
    labels = (rng.random(4000) < scores).astype(float)
    estimate = PerformanceEstimator.fit(scores, labels, chunk_size=500).estimate(scores[:50])
    assert all(0.0 <= e.lower <= e.value <= e.upper <= 1.0 for e in estimate.values())


def test_a_reference_chunk_with_one_class_does_not_break_the_fit():
    rng = np.random.default_rng(14)
    scores = rng.random(5000)
    labels = (rng.random(5000) < scores).astype(float)
    labels[:1000] = 0.0  # the first chunk holds negatives only
    estimator = PerformanceEstimator.fit(scores, labels, chunk_size=1000)
    assert np.isfinite(estimator.reference_std["roc_auc"])


def _trapezoid_auc(p: np.ndarray, scores: np.ndarray) -> float:
    """The expected AUC as plain numpy expressions: the curve at every distinct score (np.diff's
    nonzero), then np.trapezoid. The estimator's own lets each array go as it is used."""
    order = np.argsort(-scores, kind="stable")
    s, positive = scores[order], p[order]
    with np.errstate(invalid="ignore"):  # inf - inf
        last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tpr = np.r_[0.0, np.cumsum(positive)[last]] / max(positive.sum(), 1e-12)
    fpr = np.r_[0.0, np.cumsum(1 - positive)[last]] / max((1 - positive).sum(), 1e-12)
    return float(np.trapezoid(tpr, fpr))


@pytest.mark.parametrize(
    ("scores", "p"),
    [
        (np.round(np.random.default_rng(1).random(5000), 2), np.random.default_rng(2).random(5000)),  # ties
        (np.random.default_rng(3).random(5000), np.random.default_rng(4).random(5000).astype(np.float32)),
        (np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])),  # outcomes as integers
        (np.array([np.inf, np.inf, 0.5, 0.2]), np.array([1.0, 0.0, 0.5, 0.3])),  # inf - inf is NaN: not tied
        (np.array([np.nan, 0.3, np.nan, -np.inf, -np.inf]), np.array([0.2, 0.9, 0.4, 0.1, 0.7])),
        (np.array([0.4]), np.array([0.3])),
    ],
)
@pytest.mark.parametrize("piece", [1, 2, 3, 64, 1 << 20])
def test_the_expected_auc_is_the_trapezoid_over_the_curve_to_the_bit(scores, p, piece, monkeypatch):
    """Pieces of one row, of a few (ties across their edges), of all: the running sums carried
    from piece to piece and the trapezoids made a piece at a time are the plain figure's."""
    monkeypatch.setattr(estimation, "PIECE_ROWS", piece)
    assert expected_metrics(p, scores, 0.5)["roc_auc"].hex() == _trapezoid_auc(p, scores).hex()


@pytest.mark.parametrize("piece", [5, 999, 1 << 20])
@pytest.mark.parametrize(("dtype", "given"), [(np.float64, False), (np.float64, True), (np.float32, False)])
def test_an_estimate_is_the_plain_expressions_over_the_calibrated_window_to_the_bit(piece, dtype, given, monkeypatch):
    """Each side of the confusion matrix calibrates its own rows' scores, written over: the
    sums are those over the window's probabilities picked by the mask, to the bit."""
    monkeypatch.setattr(estimation, "PIECE_ROWS", piece)
    rng = np.random.default_rng(21)
    ref_scores, ref_labels = _population(rng, 20_000, 0.0)
    estimator = PerformanceEstimator.fit(np.round(ref_scores, 3), ref_labels, chunk_size=1000)
    scores, _ = _population(rng, 30_000, 0.4)
    scores = np.r_[scores, np.round(scores[:3000], 2), 0.0, -0.0, 1.0].astype(dtype)  # ties, zero of either sign
    p = np.interp(scores, estimator.calibration.scores, estimator.calibration.probabilities)
    decided = rng.random(scores.size) < 0.4 if given else scores >= 0.5
    tp, fp = p[decided].sum(), (1 - p[decided]).sum()
    fn, tn = p[~decided].sum(), (1 - p[~decided]).sum()
    estimates = estimator.estimate(scores, predicted=decided if given else None)
    assert estimates["accuracy"].value.hex() == float((tp + tn) / p.size).hex()
    assert estimates["f1"].value.hex() == float(2 * tp / (2 * tp + fp + fn)).hex()
    assert estimates["roc_auc"].value.hex() == _trapezoid_auc(p, scores).hex()
