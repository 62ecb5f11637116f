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

from dataclasses import dataclass

import numpy as np
from scipy import stats

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
    return values[finite], Missing(count, count / values.size if values.size else 0.0)


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
    p_value = float(np.clip(stats.kstwo.sf(statistic, np.round(en)), 0.0, 1.0))
    return KSResult(statistic, p_value, "asymp")


def ecdf_gaps(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From sorted samples: the distinct pooled values and F_ref − F_cur at each of them.

    One stable argsort merges the two sorted runs in linear time (a merge, not a sort); the
    difference is read at the last element of each run of ties, as ECDFs are right-continuous."""
    pooled = np.concatenate([reference, current])
    order = np.argsort(pooled, kind="stable")
    merged = pooled[order]
    from_reference = order < reference.size
    ends = np.empty(merged.size, dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=ends[:-1])
    ends[-1] = True
    gaps = np.cumsum(from_reference)[ends] / reference.size - np.cumsum(~from_reference)[ends] / current.size
    return merged[ends], gaps


def ks_statistic_sorted(reference: np.ndarray, current: np.ndarray) -> float:
    """sup |F_ref − F_cur| over all sample points, from sorted samples."""
    return float(np.max(np.abs(ecdf_gaps(reference, current)[1])))


def wasserstein(reference: np.ndarray, current: np.ndarray, *, presorted: bool = False) -> float:
    """Wasserstein-1 distance between the two empirical distributions: ∫ |F_ref − F_cur| dx."""
    ref = reference if presorted else np.sort(reference)
    cur = current if presorted else np.sort(current)
    points, gaps = ecdf_gaps(ref, cur)
    return _wasserstein_from_gaps(points, gaps)


def _wasserstein_from_gaps(points: np.ndarray, gaps: np.ndarray) -> float:
    return float(np.sum(np.abs(gaps[:-1]) * np.diff(points.astype(np.float64))))


def wasserstein_normed(reference: np.ndarray, current: np.ndarray, *, presorted: bool = False) -> float:
    """Wasserstein-1 in units of the reference standard deviation (0 when it is constant)."""
    spread = float(np.std(reference, dtype=np.float64))
    distance = wasserstein(reference, current, presorted=presorted)
    return distance / spread if spread > 0 else (0.0 if distance == 0 else float("inf"))


def quantile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates merged); the outer bins are open."""
    edges = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(edges)


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


def numerical_drift(reference: np.ndarray, current: np.ndarray) -> NumericalDrift:
    """Every numerical measure for one feature; both samples finite (see split_missing)."""
    ref, cur = np.sort(reference), np.sort(current)
    edges = quantile_edges(ref)
    expected, actual = binned_shares(ref, edges, presorted=True), binned_shares(cur, edges, presorted=True)
    points, gaps = ecdf_gaps(ref, cur)  # shared by KS and Wasserstein
    distance = _wasserstein_from_gaps(points, gaps)
    spread = float(np.std(ref, dtype=np.float64))
    return NumericalDrift(
        ks=ks_two_sample(ref, cur, presorted=True, statistic=float(np.max(np.abs(gaps)))),
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


def categorical_drift(reference: np.ndarray, current: np.ndarray) -> CategoricalDrift:
    """Categorical drift. Categories unseen in the reference are kept as their own columns of
    the contingency table (never folded away), and reported by name with their share."""
    categories, codes = np.unique(np.concatenate([reference, current]), return_inverse=True)
    ref_counts = np.bincount(codes[: reference.size], minlength=categories.size).astype(float)
    cur_counts = np.bincount(codes[reference.size :], minlength=categories.size).astype(float)
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
