"""Multivariate drift as a run judges it (pure): a change in how the numerical features move
together that no single feature shows. PCA reconstruction error: fit on the reference, keep
the components that explain 65 % of its variance, and measure how badly the window is
reconstructed; the reference's own chunks give the range the error keeps by chance alone,
scaled to the window's size. Chosen per policy (`drift.multivariate`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from monitoring.registry.data_schema import DataSchema
from monitoring.runs.domain import CheckKind, Level
from monitoring.runs.grading import finite
from monitoring.stats.multivariate import fit_reconstruction

Columns = Mapping[str, np.ndarray]
METRIC = "pca_reconstruction_error"
SIGMAS = 3.0


def multivariate_checks(reference: Columns, current: Columns, schema: DataSchema) -> list[dict]:
    names = [name for name in schema.numerical if name in reference and name in current]
    if len(names) < 2:
        return []
    ref = np.column_stack([np.asarray(reference[name], dtype=float) for name in names])
    cur = np.column_stack([np.asarray(current[name], dtype=float) for name in names])
    ref, cur = ref[np.isfinite(ref).all(axis=1)], cur[np.isfinite(cur).all(axis=1)]
    chunk = max(min(1000, ref.shape[0] // 5), 50)
    if ref.shape[0] < 2 * chunk or cur.shape[0] == 0:
        return []
    model = fit_reconstruction(ref, chunk_size=chunk)
    error = model.error(cur)
    upper = model.expected.mean + SIGMAS * model.expected.std * np.sqrt(chunk / cur.shape[0])
    return [
        {
            "check": CheckKind.FEATURE_DRIFT,
            "metric": METRIC,
            "test": "pca",
            "value": finite(error),
            "reference": finite(model.expected.mean),
            "threshold": finite(upper),
            "status": Level.CRITICAL if error > upper else Level.OK,
            "count": int(cur.shape[0]),
        }
    ]
