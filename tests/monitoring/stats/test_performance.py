"""Performance metrics equal to scikit-learn's within 1e-12 (ECE: derived by hand)."""

import numpy as np
import pytest
from sklearn import metrics

from monitoring.stats import performance as perf

RNG = np.random.default_rng(7)


def _binary_case(n: int, ties: bool = False):
    y = RNG.integers(0, 2, size=n)
    scores = np.clip(0.35 * y + RNG.normal(0.35, 0.2, size=n), 0, 1)
    if ties:
        scores = np.round(scores, 1)
    return y, scores


@pytest.mark.parametrize(("n", "ties"), [(500, False), (20_000, False), (5_000, True)])
def test_binary_metrics_equal_scikit_learn(n, ties):
    y, p = _binary_case(n, ties)
    ours = perf.binary_performance(y, p, threshold=0.5)
    predicted = (p >= 0.5).astype(int)
    assert ours.roc_auc == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-12)
    assert ours.gini == pytest.approx(2 * metrics.roc_auc_score(y, p) - 1, abs=1e-12)
    assert ours.pr_auc == pytest.approx(metrics.average_precision_score(y, p), abs=1e-12)
    assert ours.accuracy == pytest.approx(metrics.accuracy_score(y, predicted), abs=1e-12)
    assert ours.precision == pytest.approx(metrics.precision_score(y, predicted, zero_division=0), abs=1e-12)
    assert ours.recall == pytest.approx(metrics.recall_score(y, predicted), abs=1e-12)
    assert ours.f1 == pytest.approx(metrics.f1_score(y, predicted), abs=1e-12)
    assert ours.log_loss == pytest.approx(metrics.log_loss(y, p), abs=1e-12)
    assert ours.brier == pytest.approx(metrics.brier_score_loss(y, p), abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve(y, p)
    assert ours.ks == pytest.approx(np.max(tpr - fpr), abs=1e-12)


def test_expected_calibration_error_by_hand():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.05, 0.15, 0.95, 0.95, 1.0])
    # bins: [0,0.1): {0.05 -> y 0}, [0.1,0.2): {0.15 -> y 1}, [0.9,1.0]: {0.95, 0.95, 1.0 -> y 1, 0, 1}
    by_hand = (1 / 5) * 0.05 + (1 / 5) * 0.85 + (3 / 5) * abs(2 / 3 - (0.95 + 0.95 + 1.0) / 3)
    assert perf.binary_performance(y, p).expected_calibration_error == pytest.approx(by_hand, abs=1e-12)


def test_binary_inputs_are_validated():
    with pytest.raises(ValueError, match="0 or 1"):
        perf.binary_performance(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="both classes"):
        perf.binary_performance(np.array([1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="differ in length"):
        perf.binary_performance(np.array([0, 1]), np.array([0.1]))


def test_multiclass_metrics_equal_scikit_learn():
    y = RNG.choice(["cat", "dog", "eel", "fox"], size=3000, p=[0.5, 0.3, 0.15, 0.05])
    noise = RNG.random(3000) < 0.3
    predicted = np.where(noise, RNG.choice(["cat", "dog", "eel", "gnu"], size=3000), y)
    ours = perf.multiclass_performance(y, predicted)
    assert ours.accuracy == pytest.approx(metrics.accuracy_score(y, predicted), abs=1e-12)
    assert ours.macro_f1 == pytest.approx(metrics.f1_score(y, predicted, average="macro", zero_division=0), abs=1e-12)
    assert ours.weighted_f1 == pytest.approx(
        metrics.f1_score(y, predicted, average="weighted", zero_division=0), abs=1e-12
    )


def test_regression_metrics_equal_scikit_learn():
    y = RNG.normal(10, 3, size=4000)
    y[:5] = 0.0  # MAPE's epsilon guard
    f = y + RNG.normal(0, 1, size=4000)
    ours = perf.regression_performance(y, f)
    assert ours.mae == pytest.approx(metrics.mean_absolute_error(y, f), abs=1e-12)
    assert ours.rmse == pytest.approx(np.sqrt(metrics.mean_squared_error(y, f)), abs=1e-12)
    assert ours.mape == pytest.approx(metrics.mean_absolute_percentage_error(y, f), rel=1e-12)
    assert ours.r2 == pytest.approx(metrics.r2_score(y, f), abs=1e-12)


def test_chunk_metrics_at_once_equal_scikit_learns_chunk_by_chunk():
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    from monitoring.stats.performance import confusion_metrics_by_row

    rng = np.random.default_rng(9)
    scores = np.round(rng.random((40, 200)), 2)  # ties
    labels = (rng.random((40, 200)) < scores).astype(float)
    predicted = scores >= rng.choice([0.3, 0.5, 0.99], (40, 1))  # one chunk predicts almost no positive
    found = confusion_metrics_by_row(labels, scores, predicted)
    for i in range(40):
        y, p, d = labels[i], scores[i], predicted[i]
        assert found["roc_auc"][i] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        assert found["accuracy"][i] == pytest.approx(accuracy_score(y, d), abs=1e-12)
        assert found["precision"][i] == pytest.approx(precision_score(y, d, zero_division=0), abs=1e-12)
        assert found["recall"][i] == pytest.approx(recall_score(y, d), abs=1e-12)
        assert found["f1"][i] == pytest.approx(f1_score(y, d, zero_division=0), abs=1e-12)
