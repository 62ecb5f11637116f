import numpy as np
import pytest

from monitoring.stats import univariate as u
from monitoring.stats.decisions import Correction, FeatureTest, Policy, adjusted_p_values, decide


def test_bonferroni_and_holm_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    assert adjusted_p_values(p, Correction.BONFERRONI).tolist() == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert adjusted_p_values(p, Correction.HOLM).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjusted_p_values(p, Correction.NONE).tolist() == p.tolist()


def test_holm_matches_a_direct_step_down_on_random_values():
    rng = np.random.default_rng(3)
    p = rng.random(30) ** 3
    adjusted = adjusted_p_values(p, Correction.HOLM)
    order = np.argsort(p)
    expected = np.empty(30)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (30 - rank) * p[index]))
        expected[index] = running
    assert adjusted.tolist() == pytest.approx(expected.tolist())


def test_a_flag_needs_both_significance_and_a_material_effect():
    tests = [
        FeatureTest("tiny_but_certain", 1e-30, 0.02, "wasserstein_normed"),
        FeatureTest("big_and_certain", 1e-30, 0.4, "wasserstein_normed"),
        FeatureTest("big_but_noisy", 0.2, 0.4, "wasserstein_normed"),
        FeatureTest("category_shift", 1e-8, 0.15, "psi"),
    ]
    flagged = {d.feature for d in decide(tests) if d.drifted}
    assert flagged == {"big_and_certain", "category_shift"}
    stricter = decide(tests, Policy(per_feature_floor={"category_shift": 0.2}))
    assert not next(d for d in stricter if d.feature == "category_shift").drifted


def test_at_a_million_rows_an_immaterial_shift_is_not_flagged_but_a_material_one_is():
    rng = np.random.default_rng(11)
    reference = rng.normal(size=1_000_000)
    tests = []
    for name, shift in (("same", 0.0), ("immaterial", 0.02), ("material", 0.25)):
        drift = u.numerical_drift(reference, rng.normal(loc=shift, size=1_000_000))
        tests.append(FeatureTest(name, drift.ks.p_value, drift.wasserstein_normed, "wasserstein_normed"))
    decisions = {d.feature: d for d in decide(tests)}
    assert decisions["immaterial"].significant  # the p-value alone would flag it
    assert not decisions["immaterial"].drifted
    assert decisions["material"].drifted
    assert not decisions["same"].drifted
