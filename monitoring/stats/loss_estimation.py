"""Performance estimation without labels for regression: direct loss estimation (DLE).

On the labelled reference, learn how large the model's error is as a function of its inputs
and its prediction; on a current window, average the learnt errors to estimate MAE and RMSE.
This holds under covariate shift (the inputs move, P(y | x) does not): the errors the model
makes where the inputs went are learnt from the reference rows that were there. Under concept
drift the estimate stays put while the realized error rises, as with CBPE.

The learner is an additive model: for each input, hinge functions at its reference quantiles,
fit by ridge regression in closed form, one model for |error| and one for error². The bands
are the realized metric's spread across reference chunks, scaled to the window's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monitoring.stats.estimation import Estimate

KNOTS = 6  # hinge knots per input, at reference quantiles
RIDGE = 1e-3  # relative to the basis' scale; keeps sparse corners from swinging
METRICS = ("mae", "rmse")


@dataclass(frozen=True)
class _AdditiveModel:
    knots: tuple[np.ndarray, ...]
    scale: np.ndarray
    coefficients: np.ndarray

    def predict(self, columns: np.ndarray) -> np.ndarray:
        return np.maximum(_basis(columns, self.knots, self.scale) @ self.coefficients, 0.0)


@dataclass
class LossEstimator:
    absolute: _AdditiveModel
    squared: _AdditiveModel
    reference_std: dict[str, float]
    reference_chunk_size: int
    reference_mean: dict[str, float] = field(default_factory=dict)  # across the reference's chunks

    def expected_range(self, metric: str, rows: int, sigmas: float = 3.0) -> tuple[float, float]:
        """Where the metric stays by chance alone on `rows` rows (as PerformanceEstimator's)."""
        spread = sigmas * self.reference_std[metric] * np.sqrt(self.reference_chunk_size / max(rows, 1))
        return self.reference_mean[metric] - spread, self.reference_mean[metric] + spread

    @classmethod
    def fit(
        cls, inputs: np.ndarray, predictions: np.ndarray, targets: np.ndarray, *, chunk_size: int = 1000
    ) -> LossEstimator:
        """`inputs` is rows × numerical features (encode categoricals first); the prediction is
        added as one more input."""
        columns = _columns(inputs, predictions)
        targets = np.asarray(targets, dtype=np.float64)
        if columns.shape[0] != targets.size:
            raise ValueError("inputs, predictions and targets must have one row each")
        if targets.size < 2 * chunk_size:
            raise ValueError("the reference needs at least two chunks of labelled rows")
        if not (np.isfinite(columns).all() and np.isfinite(targets).all()):
            raise ValueError("direct loss estimation needs finite inputs, predictions and targets")
        errors = targets - columns[:, -1]
        knots = tuple(np.unique(np.quantile(c, np.linspace(0, 1, KNOTS + 2)[1:-1])) for c in columns.T)
        scale = np.maximum(columns.std(axis=0), 1e-12)
        realized: dict[str, list[float]] = {"mae": [], "rmse": []}
        for start in range(0, targets.size - chunk_size + 1, chunk_size):
            chunk = errors[start : start + chunk_size]
            realized["mae"].append(float(np.mean(np.abs(chunk))))
            realized["rmse"].append(float(np.sqrt(np.mean(chunk**2))))
        return cls(
            absolute=_fit(columns, np.abs(errors), knots, scale),
            squared=_fit(columns, errors**2, knots, scale),
            reference_std={metric: float(np.std(values, ddof=1)) for metric, values in realized.items()},
            reference_chunk_size=chunk_size,
            reference_mean={metric: float(np.mean(values)) for metric, values in realized.items()},
        )

    def estimate(self, inputs: np.ndarray, predictions: np.ndarray) -> dict[str, Estimate]:
        columns = _columns(inputs, predictions)
        values = {
            "mae": float(np.mean(self.absolute.predict(columns))),
            "rmse": float(np.sqrt(np.mean(self.squared.predict(columns)))),
        }
        scale = np.sqrt(self.reference_chunk_size / columns.shape[0])
        estimates = {}
        for metric, value in values.items():
            error = self.reference_std[metric] * scale
            estimates[metric] = Estimate(metric, value, value - 3 * error, value + 3 * error, error)
        return estimates


def _columns(inputs: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim == 1:
        inputs = inputs[:, None]
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1, 1)
    if inputs.shape[0] != predictions.shape[0]:
        raise ValueError("inputs and predictions must have one row each")
    return np.hstack([inputs, predictions])


def _basis(columns: np.ndarray, knots: tuple[np.ndarray, ...], scale: np.ndarray) -> np.ndarray:
    parts = [np.ones((columns.shape[0], 1))]
    for j, column_knots in enumerate(knots):
        x = columns[:, j : j + 1] / scale[j]
        parts.append(x)
        parts.append(np.maximum(x - column_knots[None, :] / scale[j], 0.0))
    return np.hstack(parts)


def _fit(columns: np.ndarray, target: np.ndarray, knots: tuple[np.ndarray, ...], scale: np.ndarray) -> _AdditiveModel:
    basis = _basis(columns, knots, scale)
    gram = basis.T @ basis
    penalty = RIDGE * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    coefficients = np.linalg.solve(gram + penalty, basis.T @ target)
    return _AdditiveModel(knots, scale, coefficients)
