"""Univariate drift measures, each checked against scipy or a value derived by hand."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring.stats import univariate as u
from monitoring.stats.ecdf import ks_and_wasserstein

RNG = np.random.default_rng(20261125)


@pytest.mark.parametrize(
    ("n1", "n2", "shift", "dtype"),
    [
        (50, 80, 0.0, np.float64),
        (1000, 700, 0.3, np.float64),
        (10_000, 9_000, 0.05, np.float32),
        (20_000, 15_000, 0.02, np.float64),
        (200_000, 120_000, 0.01, np.float32),
    ],
)
def test_ks_matches_scipy_statistic_p_value_and_method(n1, n2, shift, dtype):
    reference = RNG.normal(size=n1).astype(dtype)
    current = (RNG.normal(size=n2) + shift).astype(dtype)
    ours = u.ks_two_sample(reference, current)
    theirs = stats.ks_2samp(reference, current, method="auto")
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours.method == ("exact" if max(n1, n2) <= 10_000 else "asymp")


def test_ks_handles_ties_like_scipy():
    reference = RNG.integers(0, 5, size=30_000).astype(float)
    current = RNG.integers(0, 6, size=12_000).astype(float)
    ours, theirs = u.ks_two_sample(reference, current), stats.ks_2samp(reference, current)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


def test_ks_refuses_empty_samples():
    with pytest.raises(ValueError, match="non-empty"):
        u.ks_two_sample(np.array([]), np.array([1.0]))


@pytest.mark.parametrize(("n1", "n2"), [(10, 13), (5_000, 3_000), (100_000, 80_000)])
def test_wasserstein_matches_scipy(n1, n2):
    reference, current = RNG.gamma(2.0, size=n1), RNG.gamma(2.3, size=n2) + 0.1
    assert u.wasserstein(reference, current) == pytest.approx(stats.wasserstein_distance(reference, current), rel=1e-9)
    assert u.wasserstein_normed(reference, current) == pytest.approx(
        stats.wasserstein_distance(reference, current) / np.std(reference), rel=1e-9
    )


def test_psi_by_hand():
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert u.population_stability_index(expected, actual) == pytest.approx(by_hand, rel=1e-12)
    assert u.population_stability_index(expected, expected) == 0.0
    empty_bin = u.population_stability_index(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2]))
    assert math.isfinite(empty_bin)
    assert empty_bin == pytest.approx(
        2 * (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4), rel=1e-12
    )


def test_reference_quantile_bins_split_the_reference_evenly():
    reference = RNG.normal(size=100_000)
    shares = u.binned_shares(reference, u.quantile_edges(reference))
    assert shares.size == 10
    assert np.allclose(shares, 0.1, atol=1e-4)


def test_jensen_shannon_matches_scipy_base_2():
    p, q = RNG.random(12), RNG.random(12)
    assert u.jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    assert u.jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_hellinger_equals_the_bhattacharyya_form():
    p, q = RNG.random(9), RNG.random(9)
    p, q = p / p.sum(), q / q.sum()
    assert u.hellinger(p, q) == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))), rel=1e-12)
    assert u.hellinger(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_chi_square_matches_scipy_contingency_without_correction():
    ref, cur = np.array([120.0, 340.0, 55.0, 0.0]), np.array([100.0, 300.0, 90.0, 12.0])
    chi2, p_value, dof = u.chi_square_two_samples(ref, cur)
    theirs = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert chi2 == pytest.approx(theirs.statistic, rel=1e-12)
    assert p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert dof == theirs.dof


def test_categorical_drift_names_new_and_vanished_categories():
    reference = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    current = np.array(["a"] * 40 + ["b"] * 30 + ["new"] * 30)
    drift = u.categorical_drift(reference, current)
    assert drift.new_categories == ("new",)
    assert drift.new_share == pytest.approx(0.3)
    assert drift.disappeared == ("c",)
    assert drift.l_infinity == pytest.approx(0.3)
    table = np.array([[50, 30, 20, 0], [40, 30, 0, 30]])
    assert drift.chi2 == pytest.approx(stats.chi2_contingency(table, correction=False).statistic, rel=1e-12)
    assert drift.p_value < 1e-6


def test_missing_values_are_counted_not_dropped_silently():
    values = np.array([1.0, np.nan, 2.0, np.inf, 3.0])
    finite, missing = u.split_missing(values)
    assert finite.tolist() == [1.0, 2.0, 3.0]
    assert (missing.count, missing.share) == (2, 0.4)


def test_numerical_drift_sees_a_shift_and_not_its_absence():
    reference = RNG.normal(size=50_000)
    same = u.numerical_drift(reference, RNG.normal(size=50_000))
    shifted = u.numerical_drift(reference, RNG.normal(loc=0.5, size=50_000))
    assert same.psi < 0.01
    assert same.wasserstein_normed < 0.05
    assert shifted.psi > 0.2
    assert shifted.wasserstein_normed == pytest.approx(0.5, abs=0.05)
    assert shifted.ks.p_value < 1e-12 < same.ks.p_value


def test_binned_shares_of_sorted_values_equal_the_general_path():
    values = np.round(RNG.normal(size=20_000), 1)  # many ties on the edges
    edges = u.quantile_edges(values)
    assert u.binned_shares(np.sort(values), edges, presorted=True) == pytest.approx(u.binned_shares(values, edges))


@pytest.mark.parametrize("size", [1, 2, 11, 1_000, 99_999])
def test_quantile_edges_of_sorted_values_equal_numpys(size):
    values = np.sort(RNG.normal(size=size))
    assert np.allclose(u.quantile_edges(values, presorted=True), u.quantile_edges(values), rtol=1e-13, atol=0)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=40),
    st.lists(st.integers(-5, 5), min_size=1, max_size=40),
    st.sampled_from([np.float64, np.float32]),
)
def test_ks_statistic_and_wasserstein_equal_scipy_with_ties(reference, current, dtype):
    ref, cur = np.sort(np.array(reference, dtype=dtype) / 4), np.sort(np.array(current, dtype=dtype) / 4)
    statistic, distance = ks_and_wasserstein(ref, cur)
    assert statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert distance == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-12, abs=1e-12)
