import warnings

import numpy as np
import pytest
from scipy import stats

from monitoring.stats.decisions import Method, Policy
from monitoring.stats.drift import drift_report

RNG = np.random.default_rng(9)


def _frame(rows: int, shift: float = 0.0, new_share: float = 0.0) -> dict:
    region = RNG.choice(["n", "s", "e"], size=rows).astype(object)
    region[RNG.random(rows) < new_share] = "mars"
    income = RNG.normal(50 + shift * 10, 10, rows)
    income[:10] = np.nan
    return {"income": income, "age": RNG.normal(40, 12, rows), "region": region}


KINDS = {"income": "numerical", "age": "numerical", "region": "categorical"}


def test_report_flags_the_shifted_and_new_category_features_only():
    report = {r.feature: r for r in drift_report(_frame(50_000), _frame(50_000, shift=0.3, new_share=0.2), KINDS)}
    assert report["income"].decision.drifted
    assert report["region"].decision.drifted
    assert report["region"].measures.new_categories == ("mars",)
    assert not report["age"].decision.drifted
    assert report["income"].missing_current.count == 10


def test_unknown_kinds_are_refused():
    with pytest.raises(ValueError, match="kind must be"):
        drift_report(_frame(100), _frame(100), {"age": "ordinal"})


def test_a_feature_can_be_decided_by_another_test_and_effect():
    reference, current = _frame(3_000), _frame(3_000, shift=0.4)
    policy = Policy(
        per_feature_method={"income": Method("cramer_von_mises", "psi"), "age": Method("anderson_darling", "hellinger")}
    )
    report = {r.feature: r for r in drift_report(reference, current, KINDS, policy)}
    income, age = report["income"], report["age"]
    ref_income, cur_income = reference["income"][10:], current["income"][10:]
    theirs = stats.cramervonmises_2samp(ref_income, cur_income)
    assert income.test.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert income.test.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert income.decision.effect == income.measures.psi
    assert income.decision.drifted
    with warnings.catch_warnings():  # scipy's notes about its p-value table and a renamed parameter
        warnings.simplefilter("ignore")
        assert age.test.statistic == pytest.approx(stats.anderson_ksamp([reference["age"], current["age"]]).statistic)
    assert age.decision.effect == age.measures.hellinger
    assert not age.decision.drifted


def test_an_anderson_darling_p_value_outside_its_table_says_so():
    far = drift_report(
        {"x": RNG.normal(size=2_000)},
        {"x": RNG.normal(3, 1, size=2_000)},
        {"x": "numerical"},
        Policy(per_feature_method={"x": Method("anderson_darling", "wasserstein_normed")}),
    )
    assert far[0].test.p_value == pytest.approx(0.001) and far[0].test.note == "p-value floored at 0.001"


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (Method("chi2", "psi"), "test 'chi2' is not one for numerical"),
        (Method("ks", "l_infinity"), "effect 'l_infinity' is not one for numerical"),
        (Method("t_test", "psi"), "test 't_test'"),
    ],
)
def test_methods_that_do_not_fit_the_kind_are_refused_before_any_work(method, message):
    with pytest.raises(ValueError, match=message):
        drift_report(_frame(100), _frame(100), KINDS, Policy(per_feature_method={"income": method}))


def test_a_feature_absent_from_a_side_is_named():
    current = _frame(100)
    del current["age"]
    with pytest.raises(ValueError, match="'age' is missing from the current data"):
        drift_report(_frame(100), current, KINDS)


def test_a_feature_with_no_present_value_is_named():
    current = _frame(100)
    current["age"] = np.full(100, np.nan)
    with pytest.raises(ValueError, match="'age' has no present value in the current data"):
        drift_report(_frame(100), current, KINDS)


@pytest.mark.parametrize("bad", [{"alpha": 0.0}, {"alpha": 1.5}, {"per_feature_floor": {"age": -1.0}}])
def test_policies_out_of_range_are_refused(bad):
    with pytest.raises(ValueError):
        Policy(**bad)


def test_float32_windows_give_the_float64_decisions():
    reference, current = _frame(20_000), _frame(20_000, shift=0.2)
    narrow = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in current.items()}
    narrow_ref = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in reference.items()}
    wide = drift_report(reference, current, KINDS)
    thin = drift_report(narrow_ref, narrow, KINDS)
    for a, b in zip(wide, thin, strict=True):
        assert a.decision.drifted == b.decision.drifted
        if a.kind == "numerical":
            assert b.measures.wasserstein_normed == pytest.approx(a.measures.wasserstein_normed, rel=1e-4)


def test_threads_change_nothing_but_the_time():
    reference, current = _frame(30_000), _frame(30_000, shift=0.2, new_share=0.05)
    assert drift_report(reference, current, KINDS, workers=1) == drift_report(reference, current, KINDS, workers=4)


def test_zero_workers_are_refused():
    with pytest.raises(ValueError, match="workers must be at least 1"):
        drift_report(_frame(100), _frame(100), KINDS, workers=0)


@pytest.mark.parametrize("rows", [10_000, 100_000, 1_000_000])
def test_every_material_drift_is_flagged_and_no_immaterial_one_at_every_size(rows):
    """Shifts from immaterial (0.02 and 0.05 sd, PSI 0.006 and 0.035) to gross (1 sd), as in bench/stats.py."""
    rng = np.random.default_rng(rows)
    numerical = {"n0": 0.0, "n1": 0.02, "n2": 0.05, "n3": 0.15, "n4": 0.3, "n5": 1.0}
    categorical = {"c0": 0.0, "c1": 0.02, "c2": 0.1, "c3": 0.2, "c4": 0.3}
    labels = np.array(list("abcde"))
    reference, current, kinds = {}, {}, {}
    for name, shift in numerical.items():
        reference[name], current[name], kinds[name] = rng.normal(0, 1, rows), rng.normal(shift, 1, rows), "numerical"
    for name, moved in categorical.items():
        reference[name], current[name] = labels[rng.integers(0, 5, rows)], labels[rng.integers(0, 5, rows)]
        current[name][rng.random(rows) < moved] = "a"
        kinds[name] = "categorical"
    flagged = {r.feature for r in drift_report(reference, current, kinds) if r.decision.drifted}
    assert flagged == {"n3", "n4", "n5", "c3", "c4"}
