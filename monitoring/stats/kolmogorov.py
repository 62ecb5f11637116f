"""Tail probabilities of the two-sided one-sample KS statistic, as `scipy.stats.kstwo.sf`.

ks_2samp's asymptotic p-value is `kstwo.sf(d, round(m·n/(m+n)))`. For 140 < n ≤ 10⁶ and
2.2 ≤ n·d² < 370, scipy takes it as twice Smirnov's one-sided tail, summed term by term in
double-double: ~0.7 s at n = 500,000, more than sorting a million-row window. We sum the same
Birnbaum–Tingey series in one vectorised pass, with each term's logarithm written so that no
large quantities cancel (log1p of small ratios, Stirling's series for the binomial), which
keeps every term to ~1e-13 relative. Everywhere else scipy is already fast and is called.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

SMIRNOV_MAX_COMPUTE_N = 1_000_000  # above it scipy uses an approximation, which is fast
_LOG_2PI = float(np.log(2 * np.pi))
_TAIL_NATS = 60.0
_GRID_POINTS = 2049  # terms this far below the largest add less than 1e-26 relative


def ks_two_sided_sf(n: int, d: float) -> float:
    """P(D_n ≥ d) for the two-sided one-sample statistic: scipy.stats.kstwo.sf(d, n)."""
    if _summed_by_scipy(n, d):
        return float(np.clip(2.0 * smirnov_sf(n, d), 0.0, 1.0))
    return float(stats.kstwo.sf(d, n))


def _summed_by_scipy(n: int, d: float) -> bool:
    """The regime where scipy sums Smirnov's series (and is slow for large n)."""
    return 140 < n <= SMIRNOV_MAX_COMPUTE_N and 1.0 / n < d < 0.5 and 2.2 <= n * d * d < 370.0 and n * d < n - 1


def smirnov_sf(n: int, x: float) -> float:
    """Smirnov's one-sided tail P(D⁺_n ≥ x) = x · Σ_{v=0}^{⌊n(1−x)⌋} C(n,v) (1−x−v/n)^(n−v) (x+v/n)^(v−1)."""
    last = int(np.floor(n * (1.0 - x)))
    if (n - last) / n - x <= 0.0:  # that term is 0^(n−v): zero
        last -= 1
    first = n * np.log1p(-x) - np.log(x)  # v = 0: (1−x)^n / x
    low, high = _significant_range(n, x, last, first)
    log_terms = _log_terms(n, x, np.arange(low, high + 1, dtype=np.float64))
    all_terms = np.concatenate([[first], log_terms])
    peak = float(np.max(all_terms))
    kept = all_terms[all_terms > peak - _TAIL_NATS]
    return float(np.exp(np.log(x) + peak + np.log(np.sum(np.exp(kept - peak)))))


def _significant_range(n: int, x: float, last: int, first: float) -> tuple[int, int]:
    """The v in 1..last whose terms matter. The log-terms are unimodal in v, so a coarse grid
    brackets the ones within _TAIL_NATS of the largest; the bracket is widened by a grid step."""
    if last < _GRID_POINTS * 4:
        return 1, last
    grid = np.unique(np.linspace(1, last, _GRID_POINTS).round())
    values = _log_terms(n, x, grid)
    inside = np.flatnonzero(values > max(float(values.max()), first) - _TAIL_NATS)
    if inside.size == 0:
        return 1, min(last, int(grid[1]))
    low = int(grid[max(inside[0] - 1, 0)])
    high = int(grid[min(inside[-1] + 1, grid.size - 1)])
    return low, high


def _log_terms(n: int, x: float, v: np.ndarray) -> np.ndarray:
    """log of C(n,v)(1−x−p)^(n−v)(x+p)^(v−1), p = v/n, for 1 ≤ v < n.

    With log v! by Stirling, the binomial's large parts are −v·log p − (n−v)·log(1−p); they
    join the powers as (n−v)·log1p(−x/(1−p)) + v·log1p(x/p), both of the size of n·x."""
    p = v / n
    rest = n - v
    shrink = x * n / rest  # x / (1 − p): near 1 only for the last, vanishing terms
    with np.errstate(divide="ignore", invalid="ignore"):
        log_shrunk = np.where(
            shrink < 0.5, np.log1p(-np.minimum(shrink, 0.5)), np.log(np.maximum(rest / n - x, 0.0)) - np.log(rest / n)
        )
    return (
        rest * log_shrunk
        + v * np.log1p(x / p)
        - np.log(x + p)
        + 0.5 * (np.log(n) - _LOG_2PI - np.log(v) - np.log(rest))
        + _stirling_correction(np.float64(n))
        - _stirling_correction(v)
        - _stirling_correction(rest)
    )


def _stirling_correction(k: np.ndarray | np.float64) -> np.ndarray:
    """log k! − (k·log k − k + ½·log 2πk): exact for small k, the asymptotic series beyond."""
    k = np.asarray(k, dtype=np.float64)
    small = k < 30
    big = np.where(small, 30.0, k)
    inverse_square = 1.0 / (big * big)
    series = (1.0 / 12 - inverse_square * (1.0 / 360 - inverse_square * (1.0 / 1260 - inverse_square / 1680))) / big
    if not np.any(small):
        return series
    tiny = np.where(small, np.maximum(k, 1.0), 1.0)
    exact = special.gammaln(tiny + 1) - (tiny * np.log(tiny) - tiny + 0.5 * np.log(2 * np.pi * tiny))
    return np.where(small, exact, series)
