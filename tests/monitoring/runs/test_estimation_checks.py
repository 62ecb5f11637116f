"""Label-free estimation as a run judges it: the policy's metrics, the model's own predicted
labels, thresholds from the reference's chunk-to-chunk variation, and DLE for regression."""

import numpy as np
import pytest

from monitoring.policies.document import DEFAULT_POLICY, PolicyError, complete_policy
from monitoring.registry.data_schema import DataSchema
from monitoring.runs.estimation_checks import estimated_checks, every_row_or
from monitoring.stats.performance import binary_performance

CLASSIFIER = DataSchema(numerical=("x",), categorical=(), prediction="decision", score="score", target="y")
REGRESSOR = DataSchema(numerical=("x", "z"), categorical=(), prediction="estimate", target="y")


def _policy(**estimation) -> dict:
    return complete_policy({"estimation": {**DEFAULT_POLICY["estimation"], **estimation}}, {"x": "numerical"})


def _credit(rows: int, seed: int, *, spread: float = 1.0, cut: float = 0.3) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, spread, rows)
    score = 1 / (1 + np.exp(-(2 * x - 1)))
    return {"x": x, "score": score, "y": (rng.random(rows) < score).astype(float), "decision": (score >= cut) * 1.0}


def test_the_confusion_metrics_read_the_models_own_decisions():
    """The model decides at 0.3, not 0.5: its estimated accuracy is that of its decisions."""
    reference, current = _credit(20_000, 1), _credit(20_000, 2, spread=1.3)
    policy = _policy(classification_metrics=["roc_auc", "accuracy", "precision"])
    checks = {
        c["metric"]: c for c in estimated_checks(reference, current, "y", CLASSIFIER, "binary_classification", policy)
    }
    realized = binary_performance(current["y"], current["score"], predicted=current["decision"].astype(bool))
    at_half = binary_performance(current["y"], current["score"])
    assert set(checks) == {"roc_auc", "accuracy", "precision"}
    assert checks["accuracy"]["value"] == pytest.approx(realized.accuracy, abs=0.01)
    assert checks["precision"]["value"] == pytest.approx(realized.precision, abs=0.02)  # sampling: ±0.01
    assert abs(realized.precision - at_half.precision) > 0.05  # the rule matters: 0.5 gives another precision
    reference_decisions = binary_performance(reference["y"], reference["score"], predicted=reference["decision"] > 0)
    assert checks["accuracy"]["reference"] == pytest.approx(reference_decisions.accuracy)


def test_an_estimate_outside_the_reference_chunks_range_warns_short_of_the_fixed_drop():
    reference = _credit(20_000, 1)
    narrower = _credit(20_000, 3, spread=0.9)  # the population narrows: the model ranks it less well
    (check,) = estimated_checks(reference, narrower, "y", CLASSIFIER, "binary_classification", _policy())
    assert check["drop"] < DEFAULT_POLICY["performance"]["warning_drop"]  # short of the fixed drop …
    assert check["status"] == "warning"  # … but beyond what the reference's chunks vary by
    (unjudged,) = estimated_checks(reference, narrower, "y", CLASSIFIER, "binary_classification", _policy(sigmas=10))
    assert unjudged["status"] == "ok"
    (same,) = estimated_checks(reference, _credit(20_000, 4), "y", CLASSIFIER, "binary_classification", _policy())
    assert same["status"] == "ok"


def _houses(rows: int, seed: int, *, shift: float = 0.0) -> dict:
    """The model's error grows with x: where x moves, its error follows (covariate shift)."""
    rng = np.random.default_rng(seed)
    x, z = rng.normal(shift, 1, rows), rng.normal(0, 1, rows)
    estimate = 3 * x + z
    return {"x": x, "z": z, "estimate": estimate, "y": estimate + rng.normal(0, 0.5 + 0.5 * np.abs(x), rows)}


def test_regression_models_get_direct_loss_estimation_as_chosen():
    reference, moved = _houses(20_000, 1), _houses(20_000, 2, shift=1.5)
    policy = _policy(regression_metrics=["mae", "rmse"])
    checks = {c["metric"]: c for c in estimated_checks(reference, moved, "y", REGRESSOR, "regression", policy)}
    errors = moved["y"] - moved["estimate"]
    assert checks["rmse"]["value"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=0.05)
    assert checks["mae"]["value"] == pytest.approx(np.mean(np.abs(errors)), rel=0.05)
    assert checks["rmse"]["status"] == "critical" and checks["rmse"]["drop"] > 0.3
    quiet = estimated_checks(reference, _houses(20_000, 3), "y", REGRESSOR, "regression", policy)
    assert [c["status"] for c in quiet] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("estimation", "problem"),
    [
        ({"classification_metrics": ["auc"]}, "estimation.classification_metrics"),
        ({"classification_metrics": []}, "estimation.classification_metrics"),
        ({"regression_metrics": ["rmse", "rmse"]}, "estimation.regression_metrics"),
        ({"sigmas": 0}, "estimation.sigmas"),
        ({"sigma": 3}, "did you mean 'sigmas'?"),
    ],
)
def test_estimation_choices_are_validated(estimation, problem):
    with pytest.raises(PolicyError, match=problem):
        complete_policy({"estimation": estimation}, {"x": "numerical"})


def test_every_row_or_takes_a_view_of_a_whole_column_and_the_rows_of_a_partial_one():
    values = np.arange(6, dtype=float)
    whole = values[every_row_or(np.isfinite(values))]
    assert np.shares_memory(whole, values) and whole.tolist() == values.tolist()
    values[2] = np.nan
    partial = values[every_row_or(np.isfinite(values))]
    assert not np.shares_memory(partial, values) and partial.tolist() == [0.0, 1.0, 3.0, 4.0, 5.0]
