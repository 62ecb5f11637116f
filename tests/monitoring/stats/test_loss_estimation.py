"""Direct loss estimation for regression, validated where the truth is known: heteroscedastic
errors that grow with one input, under covariate shift (the estimate follows the realized
error) and concept drift (it cannot, and the realized error leaves the band)."""

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from monitoring.stats.loss_estimation import LossEstimator


def _population(rng, rows: int, shift: float = 0.0, noise_gain: float = 1.0):
    """y = 3·x1 − x2 + ε, ε ~ N(0, (0.3 + |x1|)·gain); the model predicts 3·x1 − x2 exactly."""
    x = np.column_stack([rng.normal(shift, 1.0, rows), rng.normal(0.0, 1.0, rows)])
    prediction = 3 * x[:, 0] - x[:, 1]
    target = prediction + rng.normal(0.0, 1.0, rows) * (0.3 + np.abs(x[:, 0])) * noise_gain
    return x, prediction, target


def test_under_covariate_shift_the_estimate_falls_within_its_band_in_most_chunks():
    rng = np.random.default_rng(3)
    estimator = LossEstimator.fit(*_population(rng, 40_000), chunk_size=1000)
    covered = {"mae": 0, "rmse": 0}
    chunks = 0
    for shift in np.linspace(0.0, 1.5, 40):  # the inputs move into the region of larger errors
        x, prediction, target = _population(rng, 1000, shift=shift)
        realized = {"mae": mean_absolute_error(target, prediction), "rmse": root_mean_squared_error(target, prediction)}
        for metric, estimate in estimator.estimate(x, prediction).items():
            covered[metric] += estimate.lower <= realized[metric] <= estimate.upper
        chunks += 1
    assert covered["mae"] / chunks >= 0.9
    assert covered["rmse"] / chunks >= 0.9


def test_the_estimate_follows_the_shift_rather_than_the_reference_level():
    rng = np.random.default_rng(4)
    estimator = LossEstimator.fit(*_population(rng, 40_000), chunk_size=1000)
    x, prediction, target = _population(rng, 20_000, shift=1.5)
    estimate = estimator.estimate(x, prediction)["mae"]
    realized = mean_absolute_error(target, prediction)
    _, reference_prediction, reference_target = _population(rng, 20_000)
    reference_level = mean_absolute_error(reference_target, reference_prediction)
    assert realized > reference_level * 1.5  # the shift really made things worse
    assert estimate.value == pytest.approx(realized, rel=0.05)


def test_under_concept_drift_the_estimate_stays_and_the_realized_error_leaves_the_band():
    rng = np.random.default_rng(5)
    estimator = LossEstimator.fit(*_population(rng, 40_000), chunk_size=1000)
    escaped = 0
    for _ in range(20):
        x, prediction, target = _population(rng, 1000, noise_gain=1.8)  # same inputs, noisier truth
        estimate = estimator.estimate(x, prediction)["mae"]
        escaped += mean_absolute_error(target, prediction) > estimate.upper
    assert escaped >= 18


@pytest.mark.parametrize(
    ("rows", "message"),
    [(1_500, "at least two chunks"), ("mismatch", "one row each"), ("nan", "finite")],
)
def test_bad_references_are_refused(rows, message):
    rng = np.random.default_rng(6)
    x, prediction, target = _population(rng, 1_500 if rows == 1_500 else 5_000)
    if rows == "mismatch":
        target = target[:-1]
    if rows == "nan":
        x[3, 0] = np.nan
    with pytest.raises(ValueError, match=message):
        LossEstimator.fit(x, prediction, target, chunk_size=1000)
