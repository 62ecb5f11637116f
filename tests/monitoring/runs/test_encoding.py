"""A categorical column whose names become codes is a broken pipeline, not a new population
(issue: it was diagnosed covariate_shift with "new segments entering: device=0, device=1, ...")."""

from __future__ import annotations

import numpy as np

from monitoring.policies.document import complete_policy
from monitoring.registry.data_schema import parse_schema
from monitoring.runs.checks import compute_run
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import Check
from monitoring.stats.quality import Finding, quality_findings

SCHEMA = parse_schema({"numerical": ["x"], "categorical": ["device"], "prediction": "score", "segments": ["device"]})
NAMES = np.array(["ios", "android", "web"], dtype=object)


def _window(seed: int, devices: np.ndarray) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 3000)
    return {"x": x, "device": devices[rng.integers(0, 3, 3000)], "score": 1 / (1 + np.exp(-x))}


def test_names_turned_into_codes_are_a_data_quality_problem_with_no_new_segment():
    reference = _window(1, NAMES)
    current = _window(2, np.array(["0", "1", "2"], dtype=object))
    policy = complete_policy({}, SCHEMA.features)
    result = compute_run(reference, current, labels={}, schema=SCHEMA, task="binary_classification", policy=policy)
    checks = [Check.model_validate(check) for check in result["checks"]]
    diagnosis = diagnose(checks)
    encoding = [c for c in checks if c.metric == "encoding_change"]
    assert [c.feature for c in encoding] == ["device"] and encoding[0].status.value == "critical"
    assert diagnosis.cause.value == "data_quality"
    assert diagnosis.new_segments == [] and diagnosis.scope == "global"
    assert not any("new segments" in line for line in diagnosis.evidence)


def test_a_new_segment_beside_the_old_ones_is_no_encoding_change():
    rng = np.random.default_rng(3)
    reference = NAMES[rng.integers(0, 3, 3000)]
    current = NAMES[rng.integers(0, 3, 3000)].copy()
    current[rng.random(3000) < 0.3] = "smart-tv"  # a new population, the old ones still here
    kinds = {f.kind for f in quality_findings({"device": reference}, {"device": current})}
    assert Finding.NEW_CATEGORY in kinds and Finding.ENCODING_CHANGE not in kinds


def test_a_renamed_vocabulary_is_an_encoding_change():
    reference = NAMES[np.random.default_rng(4).integers(0, 3, 3000)]
    renamed = np.array([{"ios": "iOS", "android": "Android", "web": "Web"}[v] for v in reference], dtype=object)
    found = {f.kind: f for f in quality_findings({"device": reference}, {"device": renamed})}
    assert found[Finding.ENCODING_CHANGE].share == 1.0


def test_the_policy_sets_how_many_rows_a_value_finding_needs_before_it_warns():
    from monitoring.policies.change import loosenings

    reference = {"x": np.linspace(0, 1, 3000), "device": NAMES[np.arange(3000) % 3], "score": np.full(3000, 0.5)}
    current = {k: v.copy() for k, v in reference.items()}
    current["x"][:5] = 7.0  # five rows out of the reference's range
    findings = {}
    for name, section in [("default", {}), ("tuned", {"data_quality": {"min_rows": 20}})]:
        policy = complete_policy(section, SCHEMA.features)
        result = compute_run(reference, current, labels={}, schema=SCHEMA, task="binary_classification", policy=policy)
        findings[name] = [c for c in result["checks"] if c["check"] == "data_quality" and c["metric"] == "out_of_range"]
    assert findings["default"] and findings["default"][0]["count"] == 5
    assert findings["tuned"] == []
    default = complete_policy({}, SCHEMA.features)
    tuned = complete_policy({"data_quality": {"min_rows": 20}}, SCHEMA.features)
    assert loosenings(default, tuned, features=SCHEMA.features)
    assert not loosenings(tuned, default, features=SCHEMA.features)
