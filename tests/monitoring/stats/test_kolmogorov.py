"""Our Smirnov-series tail equals scipy.stats.kstwo.sf where scipy sums the series itself."""

import numpy as np
import pytest
from scipy import stats

from monitoring.stats.kolmogorov import _summed_by_scipy, ks_two_sided_sf

SIZES = (141, 777, 5_000, 40_000, 250_000, 500_000, 1_000_000)
CASES = [(n, z) for n in SIZES for z in (1.49, 1.7, 2.5, 4, 7, 11, 16) if _summed_by_scipy(n, z / np.sqrt(n) * 1.003)]


@pytest.mark.parametrize(("n", "z"), CASES)
def test_two_sided_tail_equals_scipy(n, z):
    d = z / np.sqrt(n) * 1.003
    assert _summed_by_scipy(n, d), "the case must exercise our series"
    assert ks_two_sided_sf(n, d) == pytest.approx(stats.kstwo.sf(d, n), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n", "d"), [(100, 0.2), (2_000_000, 0.001), (50_000, 0.001), (50_000, 0.3), (10, 0.5)])
def test_outside_the_series_regime_scipy_answers(n, d):
    assert not _summed_by_scipy(n, d)
    assert ks_two_sided_sf(n, d) == stats.kstwo.sf(d, n)


def test_ks_two_sample_at_a_million_rows_matches_scipy_in_the_slow_regime():
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=1_000_000), rng.normal(0.006, 1, size=1_000_000)
    from monitoring.stats.univariate import ks_two_sample

    ours, theirs = ks_two_sample(reference, current), stats.ks_2samp(reference, current)
    assert _summed_by_scipy(500_000, ours.statistic)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
