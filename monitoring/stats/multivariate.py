"""Multivariate drift: what no single feature shows (a change in how features move together).

PCA data reconstruction error: standardize and fit PCA on the reference, keep enough components
for `variance` of its variance, and measure how badly each chunk is reconstructed; the reference's
own chunks give the expected range. Maximum mean discrepancy with an RBF kernel (bandwidth by the
median heuristic) and a permutation p-value on a subsample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitoring.stats.chunks import ExpectedRange, expected_range


@dataclass(frozen=True)
class ReconstructionModel:
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, features)
    expected: ExpectedRange

    def error(self, rows: np.ndarray) -> float:
        """Mean Euclidean distance between standardized rows and their reconstruction."""
        z = (rows - self.mean) / self.scale
        reconstructed = (z @ self.components.T) @ self.components
        return float(np.mean(np.linalg.norm(z - reconstructed, axis=1)))


def fit_reconstruction(reference: np.ndarray, *, variance: float = 0.65, chunk_size: int = 1000) -> ReconstructionModel:
    """`reference` is (rows, features), finite. Thresholds come from the reference's chunks."""
    if reference.ndim != 2 or reference.shape[0] < 2 * chunk_size:
        raise ValueError("need a 2-D reference with at least two chunks of rows")
    mean = reference.mean(axis=0)
    scale = reference.std(axis=0)
    scale[scale == 0] = 1.0
    z = (reference - mean) / scale
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    explained = np.cumsum(singular**2) / np.sum(singular**2)
    k = int(np.searchsorted(explained, variance) + 1)
    partial = ReconstructionModel(mean, scale, vt[:k], ExpectedRange(0, 0, 0, 0))
    errors = [
        partial.error(reference[i : i + chunk_size]) for i in range(0, reference.shape[0] - chunk_size + 1, chunk_size)
    ]
    return ReconstructionModel(mean, scale, vt[:k], expected_range(errors))


@dataclass(frozen=True)
class MMDResult:
    statistic: float
    p_value: float
    bandwidth: float


def mmd_rbf(
    reference: np.ndarray, current: np.ndarray, *, sample: int = 1000, permutations: int = 200, seed: int = 0
) -> MMDResult:
    """Unbiased MMD² between (sub)samples with a Gaussian kernel, and its permutation p-value."""
    rng = np.random.default_rng(seed)
    x = reference[rng.choice(reference.shape[0], min(sample, reference.shape[0]), replace=False)]
    y = current[rng.choice(current.shape[0], min(sample, current.shape[0]), replace=False)]
    pooled = np.vstack([x, y])
    squared = np.sum(pooled**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0.0)
    bandwidth = float(np.sqrt(np.median(distances[np.triu_indices_from(distances, k=1)]) / 2)) or 1.0
    kernel = np.exp(-distances / (2 * bandwidth**2))
    n = x.shape[0]
    observed = _mmd2(kernel, np.arange(n), np.arange(n, pooled.shape[0]))
    exceed = 0
    for _ in range(permutations):
        order = rng.permutation(pooled.shape[0])
        exceed += _mmd2(kernel, order[:n], order[n:]) >= observed
    return MMDResult(observed, (exceed + 1) / (permutations + 1), bandwidth)


def _mmd2(kernel: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    kaa, kbb, kab = kernel[np.ix_(a, a)], kernel[np.ix_(b, b)], kernel[np.ix_(a, b)]
    m, n = a.size, b.size
    return float(
        (kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean()
    )
