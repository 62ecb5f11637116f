"""One synthetic situation per cause, computed by the real run pipeline (compute_run) and named
by diagnose(); the recommender's "CTR falls, offline metrics stable" in its four variants."""

import numpy as np
import pytest

from monitoring.policies.document import complete_policy
from monitoring.registry.data_schema import parse_schema
from monitoring.runs.checks import compute_run
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import Check

SCHEMA = parse_schema(
    {
        "numerical": ["x1", "x2"],
        "categorical": ["region"],
        "prediction": "score",
        "target": "clicked",
        "segments": ["region"],
    }
)
POLICY = complete_policy({}, SCHEMA.features)
N = 6000


def _population(
    seed: int,
    *,
    shift: float = 0.0,
    nulls: float = 0.0,
    concept: bool = False,
    base_rate_shift: float = 0.0,
    new_region: float = 0.0,
    shift_in: str | None = None,
    concept_in: str | None = None,
):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, N), rng.normal(0, 1, N)
    score = 1 / (1 + np.exp(-(1.5 * x1 - 0.3)))
    truth = 1 / (1 + np.exp(-(1.5 * (x2 if concept else x1) - 0.3 + base_rate_shift)))
    labels = (rng.random(N) < truth).astype(float)
    region = rng.choice(["north", "south"], N).astype(object)
    if shift_in is not None:  # only this cohort moves
        x1 = np.where(region == shift_in, x1 + 1.5, x1)
        score = 1 / (1 + np.exp(-(1.5 * x1 - 0.3)))
        truth = 1 / (1 + np.exp(-(1.5 * x1 - 0.3)))
        labels = (rng.random(N) < truth).astype(float)
    if concept_in is not None:  # only this cohort's outcomes stop following the model
        truth = np.where(region == concept_in, 1 / (1 + np.exp(-(1.5 * x2 - 0.3))), truth)
        labels = (rng.random(N) < truth).astype(float)
    region[rng.random(N) < new_region] = "mars"
    x1 = x1.copy()
    x1[rng.random(N) < nulls] = np.nan
    columns = {
        "x1": x1,
        "x2": x2,
        "region": region,
        "score": score,
        "id": np.array([f"r{seed}-{i}" for i in range(N)], dtype=object),
    }
    return columns, labels


def _kpis(value: float) -> dict:
    return {"kpi": np.array(["ctr"] * 24, dtype=object), "value": np.full(24, value), "count": np.full(24, 1000.0)}


def _diagnosis(current_kwargs: dict, *, with_labels: bool = True, ctr_now: float = 0.05):
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, labels = _population(2, **current_kwargs)
    label_map = dict(zip(current["id"].tolist(), labels.tolist(), strict=True)) if with_labels else {}
    result = compute_run(
        reference,
        current,
        labels=label_map,
        schema=SCHEMA,
        task="binary_classification",
        policy=POLICY,
        kpis=_kpis(ctr_now),
        kpi_baseline=_kpis(0.05),
    )
    return diagnose([Check.model_validate(check) for check in result["checks"]]), result


def test_stable_data_model_and_kpis_are_no_problem():
    found, _ = _diagnosis({})
    assert found.cause == "no_problem" and found.scope == "global"


def test_nulls_upstream_are_a_data_quality_problem_first():
    found, _ = _diagnosis({"nulls": 0.3, "shift": 0.5})
    assert found.cause == "data_quality"
    assert any("null_rate" in line for line in found.evidence)
    assert "fix the upstream pipeline" in found.actions[0]


def test_moving_inputs_are_covariate_shift():
    found, _ = _diagnosis({"shift": 0.8})
    assert found.cause == "covariate_shift" and any("x1" in line for line in found.evidence)


def test_outcomes_moving_alone_are_prior_shift():
    found, result = _diagnosis({"base_rate_shift": 1.5})
    assert any(c["check"] == "label_drift" and c["status"] == "critical" for c in result["checks"])
    assert found.cause == "prior_shift"


def test_performance_falling_with_stable_inputs_is_concept_drift():
    found, result = _diagnosis({"concept": True})
    assert not any(c["check"] == "feature_drift" and c["status"] != "ok" for c in result["checks"])
    assert found.cause == "concept_drift"


def test_drift_confined_to_one_segment_is_located_there():
    found, result = _diagnosis({"shift_in": "south"})
    moved = {
        c["segment"]: c["status"]
        for c in result["checks"]
        if c.get("metric") == "prediction_drift" and c["check"] == "segments"
    }
    assert moved == {"region=north": "ok", "region=south": "warning"}
    assert found.cause == "covariate_shift" and found.scope == "cohort: region=south"


def test_concept_drift_in_one_segment_is_located_there():
    found, result = _diagnosis({"concept_in": "south"})
    per_segment = {
        c["segment"]: c["status"] for c in result["checks"] if c["check"] == "segments" and c["metric"] == "roc_auc"
    }
    assert per_segment == {"region=north": "ok", "region=south": "critical"}
    assert found.cause == "concept_drift" and found.scope == "cohort: region=south"


def test_new_customers_entering_make_the_scope_a_cohort():
    found, _ = _diagnosis({"shift": 0.8, "new_region": 0.2})
    assert found.cause == "covariate_shift" and found.scope == "cohort: region=mars"
    assert "region=mars" in found.new_segments


@pytest.mark.parametrize(
    ("variant", "current", "cause"),
    [
        ("a tracking pipeline drops a feature's values", {"nulls": 0.3}, "data_quality"),
        ("a new audience arrives", {"shift": 0.8}, "covariate_shift"),
        ("what users click on changed", {"concept": True}, "concept_drift"),
        ("users behave differently, model and data are fine", {}, "user_behaviour_change"),
    ],
)
def test_the_recommender_whose_ctr_falls_while_offline_metrics_hold(variant, current, cause):
    found, result = _diagnosis(current, ctr_now=0.04)  # CTR down 20 %
    assert any(c["check"] == "kpis" and c["status"] == "critical" for c in result["checks"]), variant
    assert found.cause == cause, variant


def test_warning_floors_give_a_warning_level_below_the_critical_one():
    policy = complete_policy({"drift": {"warning_floors": {"wasserstein_normed": 0.05}}}, SCHEMA.features)
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, _ = _population(2, shift=0.07)  # significant at 6,000 rows, below the 0.1 sd material floor
    result = compute_run(reference, current, labels={}, schema=SCHEMA, task="binary_classification", policy=policy)
    x1 = next(c for c in result["checks"] if c["check"] == "feature_drift" and c["feature"] == "x1")
    assert x1["status"] == "warning" and 0.05 <= x1["value"] < 0.1
    default = compute_run(reference, current, labels={}, schema=SCHEMA, task="binary_classification", policy=POLICY)
    assert (
        next(c for c in default["checks"] if c.get("feature") == "x1" and c["check"] == "feature_drift")["status"]
        == "ok"
    )


def test_a_segment_can_have_its_own_threshold():
    policy = complete_policy({"segments": {"floors": {"region=south": 5.0}}}, SCHEMA.features)
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, _ = _population(2, shift_in="south")
    result = compute_run(reference, current, labels={}, schema=SCHEMA, task="binary_classification", policy=policy)
    south = next(
        c for c in result["checks"] if c.get("segment") == "region=south" and c["metric"] == "prediction_drift"
    )
    assert south["threshold"] == 5.0 and south["status"] == "ok"
