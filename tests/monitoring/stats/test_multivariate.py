"""Multivariate drift sees a broken correlation that every univariate test misses."""

import numpy as np
import pytest
from sklearn.decomposition import PCA

from monitoring.stats import univariate as u
from monitoring.stats.multivariate import fit_reconstruction, mmd_rbf

RNG = np.random.default_rng(42)


def _correlated(rows: int, rho: float) -> np.ndarray:
    cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
    return RNG.multivariate_normal(np.zeros(3), cov, size=rows)


def test_components_span_the_same_space_as_scikit_learn_pca():
    reference = _correlated(5000, 0.9)
    model = fit_reconstruction(reference, variance=0.65)
    z = (reference - reference.mean(axis=0)) / reference.std(axis=0)
    theirs = PCA(n_components=model.components.shape[0]).fit(z).components_
    assert np.abs(model.components @ theirs.T) == pytest.approx(np.eye(model.components.shape[0]), abs=1e-9)


def test_reconstruction_error_flags_a_broken_correlation_that_univariate_tests_miss():
    reference = _correlated(20_000, 0.9)
    model = fit_reconstruction(reference)
    same, broken = _correlated(2000, 0.9), _correlated(2000, 0.0)
    assert model.expected.contains(model.error(same))
    assert model.error(broken) > model.expected.upper
    for column in range(3):  # each feature alone still looks like N(0, 1)
        assert u.numerical_drift(reference[:, column], broken[:, column]).wasserstein_normed < 0.1


def test_mmd_is_significant_for_a_changed_joint_distribution_only():
    reference = _correlated(5000, 0.9)
    assert mmd_rbf(reference, _correlated(5000, 0.9), sample=400, permutations=99).p_value > 0.05
    assert mmd_rbf(reference, _correlated(5000, 0.0), sample=400, permutations=99).p_value <= 0.01


def test_reconstruction_needs_enough_reference_rows():
    with pytest.raises(ValueError, match="two chunks"):
        fit_reconstruction(_correlated(1500, 0.5), chunk_size=1000)
