"""How sure a figure is: the variance of an AUC (DeLong), a confidence interval for a rate
(Wilson), and whether the gap between two independent figures is larger than chance.

A cohort's figure on a thousand rows moves by a few hundredths from one day to the next by
chance alone; a gap is called real only when it is both material (past the policy's drop) and
significant (past z standard errors of the difference)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

Z_95 = float(norm.ppf(0.975))


def auc_variance(y: np.ndarray, p: np.ndarray) -> float:
    """DeLong et al. (1988)'s variance of the Mann-Whitney AUC, from midranks (Sun and Xu's
    O(n log n) form): the variances of the positives' and the negatives' placement values.
    NaN when a class has fewer than two members."""
    return auc_with_variance(y, p)[1]


def auc_with_variance(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The Mann-Whitney AUC (ties counting half) and DeLong's variance from the same ranks:
    one sort of the scores gives the ranks among all of them and within each class, where
    ranking the three apart takes three. NaN for the AUC without both classes, for the variance
    with fewer than two members of a class."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=float)
    positives, negatives = p[y], p[~y]
    m, n = positives.size, negatives.size
    if m == 0 or n == 0:
        return math.nan, math.nan
    combined, within = _midranks(np.concatenate([positives, negatives]), m)
    auc = float((combined[:m].sum() - m * (m + 1) / 2) / (m * n))
    if m < 2 or n < 2:
        return auc, math.nan
    # Placement of each positive among the negatives (share of negatives it outscores, ties half),
    # and of each negative among the positives (share of positives that outscore it).
    v10 = (combined[:m] - within[:m]) / n
    v01 = 1.0 - (combined[m:] - within[m:]) / m
    return auc, float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)


def _midranks(values: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(each value's midrank among all, its midrank within its class: values[:m] or values[m:]),
    equal to scipy's rankdata of each, bit for bit (tests/monitoring/stats/test_uncertainty.py)."""
    if np.isnan(values).any():  # rankdata's NaN policy: every rank NaN
        nan = np.full(values.size, np.nan)
        return nan, nan
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    combined = np.empty(values.size)
    combined[order] = _sorted_midranks(ordered)
    within = np.empty(values.size)
    first = order < m
    within[order[first]] = _sorted_midranks(ordered[first])
    within[order[~first]] = _sorted_midranks(ordered[~first])
    return combined, within


def _sorted_midranks(ordered: np.ndarray) -> np.ndarray:
    """Midranks of values already in ascending order: a tie's ranks averaged, as rankdata does
    (its first place, 1-based, plus half the tie's size less one)."""
    if not ordered.size:
        return np.empty(0)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    counts = np.diff(starts, append=ordered.size)
    ranks = (starts + 1).astype(float) + (counts.astype(float) - 1) / 2
    return np.repeat(ranks, counts)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for a rate (sound near 0 and 1, unlike the normal one)."""
    if trials <= 0:
        return (math.nan, math.nan)
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate_variance(successes: int, trials: int) -> float:
    """The binomial variance of a rate's estimate (NaN without trials)."""
    if trials <= 0:
        return math.nan
    rate = successes / trials
    return rate * (1 - rate) / trials


def significant_gap(gap: float, variance_a: float, variance_b: float, z: float = Z_95) -> bool:
    """Whether a gap between two independent estimates exceeds z standard errors of their
    difference. Without a variance (too few rows of a class) nothing is significant."""
    spread = variance_a + variance_b
    if not math.isfinite(gap) or not math.isfinite(spread):
        return False
    return gap > z * math.sqrt(max(spread, 0.0))
