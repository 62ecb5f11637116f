"""A classifier's prediction drift tests its score, and its predicted classes as shares (issue:
it tested the class column as a number, never the score)."""

from __future__ import annotations

import numpy as np

from monitoring.policies.document import complete_policy
from monitoring.registry.data_schema import parse_schema
from monitoring.runs.checks import compute_run

SCHEMA = parse_schema({"numerical": ["x"], "prediction": "label", "score": "p"})


def _window(seed: int, lift: float) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 4000)
    p = np.clip(rng.beta(2, 5, 4000) + lift, 0, 1)  # scores moved up by `lift`
    return {"x": x, "p": p, "label": (p > 0.9).astype(float)}  # few cross the decision threshold


def _prediction_checks(lift: float) -> dict[str, dict]:
    policy = complete_policy({}, SCHEMA.features)
    result = compute_run(
        _window(1, 0.0), _window(2, lift), labels={}, schema=SCHEMA, task="binary_classification", policy=policy
    )
    return {c["feature"]: c for c in result["checks"] if c["check"] == "prediction_drift"}


def test_scores_that_move_are_caught_though_the_predicted_classes_barely_change():
    checks = _prediction_checks(0.15)
    assert set(checks) == {"p", "label"}
    assert checks["p"]["status"] == "critical" and checks["p"]["test"] == "ks"
    assert checks["label"]["test"] == "chi2"  # the classes' shares, not the class column as a number


def test_stable_scores_raise_nothing():
    checks = _prediction_checks(0.0)
    assert all(check["status"] == "ok" for check in checks.values())
