"""Multivariate drift chosen in the policy: a broken correlation that no single feature shows."""

import numpy as np
import pytest

from monitoring.policies.document import complete_policy
from monitoring.registry.data_schema import DataSchema
from monitoring.runs.checks import compute_run
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import Check

SCHEMA = DataSchema(numerical=("income", "spend", "age"), categorical=(), prediction="score")
FEATURES = dict.fromkeys(SCHEMA.numerical, "numerical")


def _rows(count: int, seed: int, *, correlated: bool) -> dict:
    """Income and spend move together (or no longer do); each keeps its own distribution."""
    rng = np.random.default_rng(seed)
    income = rng.normal(0, 1, count)
    noise = rng.normal(0, 1, count)
    spend = 0.95 * income + np.sqrt(1 - 0.95**2) * noise if correlated else noise
    return {"income": income, "spend": spend, "age": rng.normal(40, 10, count), "score": rng.random(count)}


def _run(current: dict, *, multivariate: bool) -> list[Check]:
    policy = complete_policy({"drift": {"multivariate": multivariate}}, FEATURES)
    reference = _rows(10_000, 1, correlated=True)
    result = compute_run(reference, current, labels={}, schema=SCHEMA, task="regression", policy=policy)
    return [Check.model_validate(check) for check in result["checks"]]


def test_a_broken_correlation_is_multivariate_drift_and_nothing_else():
    checks = _run(_rows(5_000, 2, correlated=False), multivariate=True)
    univariate = [c for c in checks if c.check.value == "feature_drift" and c.feature]
    (joint,) = [c for c in checks if c.metric == "pca_reconstruction_error"]
    assert all(c.status.value == "ok" for c in univariate)  # each feature as it was
    assert joint.status.value == "critical" and joint.value > joint.threshold > joint.reference
    found = diagnose(checks)
    assert found.cause.value == "covariate_shift"
    assert any("pca_reconstruction_error" in line for line in found.evidence)


def test_the_same_population_stays_within_the_reference_range():
    (joint,) = [c for c in _run(_rows(5_000, 3, correlated=True), multivariate=True) if c.test == "pca"]
    assert joint.status.value == "ok" and joint.value == pytest.approx(joint.reference, rel=0.1)


def test_multivariate_drift_is_off_unless_chosen():
    assert not [c for c in _run(_rows(5_000, 2, correlated=False), multivariate=False) if c.test == "pca"]
