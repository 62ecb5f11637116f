"""Drift of every feature of a window against the reference, with the decision for each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from monitoring.stats import univariate as u
from monitoring.stats.decisions import Decision, FeatureTest, Policy, decide


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numerical" or "categorical"
    measures: u.NumericalDrift | u.CategoricalDrift
    missing_reference: u.Missing
    missing_current: u.Missing
    decision: Decision


def drift_report(
    reference: Mapping[str, np.ndarray],
    current: Mapping[str, np.ndarray],
    kinds: Mapping[str, str],
    policy: Policy | None = None,
) -> list[FeatureDrift]:
    """Every measure for every feature in `kinds`, then one family-wise decision across them."""
    measured = []
    for feature, kind in kinds.items():
        if kind == "numerical":
            ref, ref_missing = u.split_missing(np.asarray(reference[feature]))
            cur, cur_missing = u.split_missing(np.asarray(current[feature]))
            measures = u.numerical_drift(ref, cur)
            test = FeatureTest(feature, measures.ks.p_value, measures.wasserstein_normed, "wasserstein_normed")
        elif kind == "categorical":
            ref, ref_missing = _present(np.asarray(reference[feature]))
            cur, cur_missing = _present(np.asarray(current[feature]))
            measures = u.categorical_drift(ref, cur)
            test = FeatureTest(feature, measures.p_value, measures.psi, "psi")
        else:
            raise ValueError(f"feature {feature!r}: kind must be numerical or categorical, not {kind!r}")
        measured.append((feature, kind, measures, ref_missing, cur_missing, test))
    decisions = decide([item[-1] for item in measured], policy)
    return [
        FeatureDrift(feature, kind, measures, ref_missing, cur_missing, decision)
        for (feature, kind, measures, ref_missing, cur_missing, _), decision in zip(measured, decisions, strict=True)
    ]


def _present(values: np.ndarray) -> tuple[np.ndarray, u.Missing]:
    if values.dtype.kind in "US":
        return values, u.Missing(0, 0.0)
    missing = np.array([v is None or (isinstance(v, float) and v != v) for v in values], dtype=bool)
    count = int(missing.sum())
    return values[~missing].astype(str), u.Missing(count, count / values.size if values.size else 0.0)
