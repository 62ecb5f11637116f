"""The uncertainty of figures, checked against independent computations: DeLong's variance
against its definition (every positive-negative pair) and against the spread of simulated AUCs,
Wilson's interval against scipy's, and the significance rule against simulated days."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, rankdata

from monitoring.stats.performance import roc_auc
from monitoring.stats.uncertainty import (
    Z_95,
    _midranks,
    auc_variance,
    auc_with_variance,
    significant_gap,
    wilson_interval,
)


def _delong_by_pairs(y: np.ndarray, p: np.ndarray) -> float:
    """DeLong's variance from its definition, every pair compared: O(m n)."""
    positives, negatives = p[y == 1], p[y == 0]
    psi = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return v10.var(ddof=1) / positives.size + v01.var(ddof=1) / negatives.size


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.integers(4, 120),
    st.integers(0, 10_000),
    st.sampled_from([None, 5, 20]),  # continuous scores, or heavily tied ones
)
def test_the_auc_variance_equals_delongs_definition(rows, seed, levels):
    rng = np.random.default_rng(seed)
    y = rng.random(rows) < 0.4
    y[:2], y[2:4] = True, False  # two of each class at least
    p = rng.random(rows) + 0.3 * y
    if levels:
        p = np.round(p * levels) / levels
    assert auc_variance(y, p) == pytest.approx(_delong_by_pairs(y.astype(int), p), rel=1e-9, abs=1e-15)


def test_the_auc_variance_matches_the_spread_of_simulated_aucs():
    rng = np.random.default_rng(3)
    aucs, variances = [], []
    for _ in range(400):
        y = rng.random(600) < 0.3
        p = rng.normal(0.8 * y, 1.0)
        aucs.append(roc_auc(y.astype(float), p))
        variances.append(auc_variance(y, p))
    assert np.mean(variances) == pytest.approx(np.var(aucs), rel=0.15)


def test_a_class_with_fewer_than_two_members_has_no_variance():
    assert math.isnan(auc_variance(np.array([True, False, False]), np.array([0.9, 0.1, 0.2])))


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (3, 10), (50, 100), (999, 1000), (10, 10)])
def test_wilsons_interval_equals_scipys(successes, trials):
    expected = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected.low, abs=1e-12) and high == pytest.approx(expected.high, abs=1e-12)


def test_chance_gaps_between_days_are_rarely_significant_and_real_ones_are():
    rng = np.random.default_rng(5)

    def day(shift: float) -> tuple[float, float]:
        y = rng.random(1000) < 0.3
        p = rng.normal((0.9 - shift) * y, 1.0)
        return roc_auc(y.astype(float), p), auc_variance(y, p)

    calls = 0
    for _ in range(300):
        (a, va), (b, vb) = day(0.0), day(0.0)
        calls += significant_gap(a - b, va, vb)
    assert calls / 300 < 0.05  # one-sided at 2.5 % nominal
    real = sum(significant_gap(a - b, va, vb) for (a, va), (b, vb) in ((day(0.0), day(0.6)) for _ in range(50)))
    assert real >= 48
    assert pytest.approx(1.959964, abs=1e-6) == Z_95


def test_the_auc_and_its_variance_come_from_one_ranking():
    from sklearn.metrics import roc_auc_score

    from monitoring.stats.uncertainty import auc_with_variance

    rng = np.random.default_rng(4)
    y = rng.random(3000) < 0.3
    p = np.round(rng.normal(y * 0.7, 1.0), 1)  # ties
    auc, variance = auc_with_variance(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert variance == pytest.approx(auc_variance(y, p))
    assert np.isnan(auc_with_variance(np.ones(5, dtype=bool), p[:5])[0])  # one class: no AUC
    assert np.isnan(auc_with_variance(np.array([True, False, False]), p[:3])[1])  # one positive: no variance


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.integers(1, 300),
    st.integers(0, 300),
    st.integers(0, 10_000),
    st.sampled_from([None, 3, 20]),  # continuous, or heavily tied
    st.booleans(),  # a signed zero among them
)
def test_the_midranks_from_one_sort_are_scipys_rankdata_bit_for_bit(m, n, seed, levels, zeros):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=m + n)
    if levels:
        values = np.round(values * levels) / levels
    if zeros:
        values[:: max(1, (m + n) // 4)] = -0.0
        values[1 :: max(1, (m + n) // 3)] = 0.0
    combined, within = _midranks(values, m)
    assert combined.tobytes() == rankdata(values).tobytes()
    expected = np.concatenate([rankdata(values[:m]), rankdata(values[m:])])
    assert within.tobytes() == expected.tobytes()


def test_midranks_with_a_missing_score_are_all_missing_as_rankdata_makes_them():
    values = np.array([0.2, np.nan, 0.4, 0.1])
    combined, within = _midranks(values, 2)
    assert np.isnan(combined).all() and np.isnan(within).all() and np.isnan(rankdata(values)).all()
    y = np.array([True, True, False, False])
    assert all(math.isnan(x) for x in auc_with_variance(y, values))
