"""Univariate drift between a reference and a current sample of one feature.

Numerical: two-sample Kolmogorov–Smirnov (statistic and p-value as scipy.stats.ks_2samp, with
the same exact/asymptotic choice), Wasserstein-1 (raw and divided by the reference standard
deviation), population stability index on reference-quantile bins, Jensen–Shannon distance
(base 2) and Hellinger distance on those bins. Categorical: chi-square on the 2×k contingency
table (categories unseen in the reference included), PSI, Jensen–Shannon, L∞, the share of
current rows in new categories, and the categories that disappeared.

Missing values are never dropped silently: callers pass finite values and report the missing
count separately (see `split_missing`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from monitoring.stats.categories import CategoryCounts, align, count_categories
from monitoring.stats.ecdf import ks_and_wasserstein
from monitoring.stats.kolmogorov import ks_two_sided_sf

KS_EXACT_MAX_N = 10_000  # scipy's 'auto': exact when both samples are at most this large
PSI_BINS = 10
PSI_EPSILON = 1e-4  # share given to an empty bin, so that PSI stays finite


@dataclass(frozen=True)
class Missing:
    count: int
    share: float


def split_missing(values: np.ndarray) -> tuple[np.ndarray, Missing]:
    """The finite values, and how many were missing (NaN or ±inf)."""
    finite = np.isfinite(values)
    count = int(values.size - np.count_nonzero(finite))
    if count == 0:
        return values, Missing(0, 0.0)
    return values[finite], Missing(count, count / values.size)


@dataclass(frozen=True)
class KSResult:
    statistic: float
    p_value: float
    method: str  # "exact" or "asymp", chosen as scipy's method="auto" does


def ks_two_sample(
    reference: np.ndarray, current: np.ndarray, *, presorted: bool = False, statistic: float | None = None
) -> KSResult:
    """Two-sided two-sample KS. Large samples (either above 10,000) take Smirnov's asymptotic
    distribution from sorted arrays in O(n log n) without scipy's per-call copies; small ones
    defer to scipy's exact path, which is cheap at that size."""
    if reference.size == 0 or current.size == 0:
        raise ValueError("KS needs non-empty samples")
    n1, n2 = reference.size, current.size
    if max(n1, n2) <= KS_EXACT_MAX_N:
        result = stats.ks_2samp(reference, current, method="exact")
        return KSResult(float(result.statistic), float(result.pvalue), "exact")
    if statistic is None:
        ref = reference if presorted else np.sort(reference)
        cur = current if presorted else np.sort(current)
        statistic = ks_statistic_sorted(ref, cur)
    m, n = (float(n1), float(n2)) if n1 >= n2 else (float(n2), float(n1))
    en = m * n / (m + n)
    p_value = float(np.clip(ks_two_sided_sf(int(np.round(en)), statistic), 0.0, 1.0))
    return KSResult(statistic, p_value, "asymp")


@dataclass(frozen=True)
class TwoSampleTest:
    statistic: float
    p_value: float
    note: str = ""


def anderson_darling(reference: np.ndarray, current: np.ndarray) -> TwoSampleTest:
    """k-sample Anderson–Darling (scipy). Its tabulated p-value is clipped to [0.001, 0.25]:
    the note says when, so a clipped value is never read as exact."""
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = stats.anderson_ksamp([reference, current])
    p_value = float(result.pvalue)
    note = "p-value floored at 0.001" if p_value <= 0.001 else ("p-value capped at 0.25" if p_value >= 0.25 else "")
    return TwoSampleTest(float(result.statistic), p_value, note)


def cramer_von_mises(reference: np.ndarray, current: np.ndarray) -> TwoSampleTest:
    """Two-sample Cramér–von Mises (scipy; exact for small samples, asymptotic beyond)."""
    result = stats.cramervonmises_2samp(reference, current)
    return TwoSampleTest(float(result.statistic), float(result.pvalue))


def ks_statistic_sorted(reference: np.ndarray, current: np.ndarray) -> float:
    """sup |F_ref − F_cur| over all sample points, from sorted samples."""
    return ks_and_wasserstein(reference, current)[0]


def wasserstein(reference: np.ndarray, current: np.ndarray, *, presorted: bool = False) -> float:
    """Wasserstein-1 distance between the two empirical distributions: ∫ |F_ref − F_cur| dx."""
    ref = reference if presorted else np.sort(reference)
    cur = current if presorted else np.sort(current)
    return ks_and_wasserstein(ref, cur)[1]


def wasserstein_normed(reference: np.ndarray, current: np.ndarray, *, presorted: bool = False) -> float:
    """Wasserstein-1 in units of the reference standard deviation (0 when it is constant)."""
    spread = float(np.std(reference, dtype=np.float64))
    distance = wasserstein(reference, current, presorted=presorted)
    return distance / spread if spread > 0 else (0.0 if distance == 0 else float("inf"))


def reference_bounds(reference: np.ndarray) -> tuple[float, float]:
    """How far beyond the reference a value counts in a distance: one reference span (max − min,
    or the magnitude when the reference is constant) on either side. Beyond it lies an extreme
    value: kept, reported by data quality, and counted at the bound, so that one row of 1e308
    among thousands cannot make a Wasserstein effect of 1e304."""
    low, high = float(np.min(reference)), float(np.max(reference))
    span = high - low if high > low else max(abs(high), 1.0)
    return low - span, high + span


def clipped_to_bounds(current: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`current` with values beyond `reference_bounds` moved to the bound. Only distances change:
    every value stays on the same side of every reference value, so KS, PSI and the binned
    distances are those of the raw values."""
    low, high = reference_bounds(reference)
    return np.clip(current, low, high)


def quantile_edges(reference: np.ndarray, bins: int = PSI_BINS, *, presorted: bool = False) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates merged); the outer bins are open.
    With `presorted`, the quantiles are read off by index, as np.quantile's linear method does."""
    levels = np.linspace(0, 1, bins + 1)[1:-1]
    if not presorted:
        return np.unique(np.quantile(reference, levels))
    position = levels * (reference.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, reference.size - 1)
    fraction = position - below
    low, high = reference[below].astype(np.float64), reference[above].astype(np.float64)
    return np.unique(low + (high - low) * fraction)


def binned_shares(values: np.ndarray, inner_edges: np.ndarray, *, presorted: bool = False) -> np.ndarray:
    """Share of values per bin: (−∞, e1], (e1, e2], …, (ek, ∞). Sorted values need only one
    binary search per edge."""
    if presorted:
        at_or_below = np.searchsorted(values, inner_edges, side="right")
        counts = np.diff(np.concatenate([[0], at_or_below, [values.size]]))
    else:
        counts = np.bincount(np.searchsorted(inner_edges, values, side="left"), minlength=inner_edges.size + 1)
    return counts / max(values.size, 1)


def population_stability_index(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI = Σ (a − e) · ln(a / e) over bins (shares), empty bins given `epsilon`."""
    e = np.maximum(expected, epsilon)
    a = np.maximum(actual, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance (square root of the divergence), base 2: in [0, 1]."""
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    divergence = (_kl_base2(p, m) + _kl_base2(q, m)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def _kl_base2(p: np.ndarray, m: np.ndarray) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance between two discrete distributions: in [0, 1]."""
    p = p / p.sum()
    q = q / q.sum()
    return float(np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2) / 2))


@dataclass(frozen=True)
class NumericalDrift:
    ks: KSResult
    wasserstein: float
    wasserstein_normed: float
    psi: float
    jensen_shannon: float
    hellinger: float


def numerical_drift(reference: np.ndarray, current: np.ndarray, *, presorted: bool = False) -> NumericalDrift:
    """Every numerical measure for one feature; both samples finite (see split_missing), and
    ascending with `presorted`."""
    ref, cur = (reference, current) if presorted else (np.sort(reference), np.sort(current))
    edges = quantile_edges(ref, presorted=True)
    expected, actual = binned_shares(ref, edges, presorted=True), binned_shares(cur, edges, presorted=True)
    statistic, distance = ks_and_wasserstein(ref, cur)
    spread = float(np.std(ref, dtype=np.float64))
    return NumericalDrift(
        ks=ks_two_sample(ref, cur, presorted=True, statistic=statistic),
        wasserstein=distance,
        wasserstein_normed=distance / spread if spread > 0 else (0.0 if distance == 0 else float("inf")),
        psi=population_stability_index(expected, actual),
        jensen_shannon=jensen_shannon(expected, actual),
        hellinger=hellinger(expected, actual),
    )


@dataclass(frozen=True)
class CategoricalDrift:
    chi2: float
    p_value: float
    degrees_of_freedom: int
    psi: float
    jensen_shannon: float
    l_infinity: float
    new_categories: tuple[str, ...]
    new_share: float  # share of current rows in categories the reference never saw
    disappeared: tuple[str, ...]


def categorical_drift(reference: np.ndarray | CategoryCounts, current: np.ndarray | CategoryCounts) -> CategoricalDrift:
    """Categorical drift. Categories unseen in the reference are kept as their own columns of
    the contingency table (never folded away), and reported by name with their share. Takes
    the values (missing ones are left out, see count_categories) or their counts."""
    ref = reference if isinstance(reference, CategoryCounts) else count_categories(reference)
    cur = current if isinstance(current, CategoryCounts) else count_categories(current)
    if not ref.counts.sum() or not cur.counts.sum():
        raise ValueError("categorical drift needs at least one present value on each side")
    categories, ref_counts, cur_counts = align(ref, cur)
    ref_counts, cur_counts = ref_counts.astype(float), cur_counts.astype(float)
    chi2, p_value, dof = chi_square_two_samples(ref_counts, cur_counts)
    ref_share, cur_share = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    new = (ref_counts == 0) & (cur_counts > 0)
    gone = (ref_counts > 0) & (cur_counts == 0)
    return CategoricalDrift(
        chi2=chi2,
        p_value=p_value,
        degrees_of_freedom=dof,
        psi=population_stability_index(ref_share, cur_share),
        jensen_shannon=jensen_shannon(ref_share, cur_share),
        l_infinity=float(np.max(np.abs(ref_share - cur_share))),
        new_categories=tuple(str(c) for c in categories[new]),
        new_share=float(cur_share[new].sum()),
        disappeared=tuple(str(c) for c in categories[gone]),
    )


def chi_square_two_samples(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-square test of homogeneity on the 2×k table (no continuity correction)."""
    table = np.vstack([ref_counts, cur_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return chi2, float(stats.chi2.sf(chi2, dof)), dof
