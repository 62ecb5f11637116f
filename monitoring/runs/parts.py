"""A run's features measured apart (pure): what the run needs of each feature column, computed
where that column was loaded, and carried as JSON to the task that combines them.

A feature's data-quality findings and its drift measures depend on its own column only; what
joins the features, the family-wise drift decision and the order of the findings, is made
once, where they are combined (`monitoring.runs.checks.compute_run`). So a run split by
feature groups gives the same bytes as the run in one process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitoring.policies.document import drift_policy
from monitoring.registry.data_schema import DataSchema
from monitoring.runs.domain import CheckKind
from monitoring.stats.decisions import FeatureTest, Method
from monitoring.stats.drift import drift_measured, feature_test
from monitoring.stats.quality import Finding, QualityFinding, column_findings

Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class MeasuredDrift:
    """One feature's drift, measured but not yet decided."""

    test: FeatureTest
    method: Method


@dataclass(frozen=True)
class FeaturePart:
    in_reference: bool
    in_current: bool
    present: bool  # holds a value on both sides: its drift is measured
    findings: list[QualityFinding] | None  # None: not on both sides, or data quality not checked
    drift: MeasuredDrift | None  # None: not present, or feature drift not checked


def present(values: np.ndarray) -> bool:
    """Whether at least one value is there (finite, for numbers)."""
    if np.issubdtype(values.dtype, np.number):
        return bool(np.isfinite(values).any())
    return any(v is not None and v == v for v in values)


def features_measure(
    reference: Columns, current: Columns, kinds: Mapping[str, str], policy: Mapping[str, Any]
) -> dict[str, FeaturePart]:
    """The parts of the features in `kinds` (name: numerical or categorical), from their columns."""
    enabled = set(policy["checks"])
    both = [name for name in kinds if name in reference and name in current]
    measurable = {
        name: kinds[name] for name in both if present(reference[name]) and present(current[name])
    }  # a feature absent or entirely null on either side is a data-quality finding, not a drift
    drift = {}
    if CheckKind.FEATURE_DRIFT in enabled and measurable:
        reports = drift_measured(
            {n: reference[n] for n in measurable}, {n: current[n] for n in measurable}, measurable, drift_policy(policy)
        )
        drift = {report.feature: MeasuredDrift(feature_test(report), report.method) for report in reports}
    quality = CheckKind.DATA_QUALITY in enabled
    return {
        name: FeaturePart(
            in_reference=name in reference,
            in_current=name in current,
            present=name in measurable,
            findings=column_findings(name, reference[name], current[name]) if quality and name in both else None,
            drift=drift.get(name),
        )
        for name in kinds
    }


def parts_dump(parts: Mapping[str, FeaturePart]) -> str:
    """JSON that `parts_load` reads back to equal parts (floats round-trip exactly; NaN kept)."""
    return json.dumps({name: _part_json(part) for name, part in parts.items()}, allow_nan=True)


def parts_load(texts: Iterable[str]) -> dict[str, FeaturePart]:
    """The parts of every text, in order."""
    return {name: _part(name, raw) for text in texts for name, raw in json.loads(text).items()}


def _part_json(part: FeaturePart) -> dict[str, Any]:
    return {
        "in_reference": part.in_reference,
        "in_current": part.in_current,
        "present": part.present,
        "findings": None if part.findings is None else [_finding_json(f) for f in part.findings],
        "drift": None if part.drift is None else _drift_json(part.drift),
    }


def _finding_json(finding: QualityFinding) -> dict[str, Any]:
    # A check keeps three examples, as text (monitoring.runs.checks._quality): nothing else is read.
    return {
        "kind": str(finding.kind),
        "column": finding.column,
        "count": int(finding.count),
        "share": float(finding.share),
        "examples": [str(e) for e in finding.examples[:3]],
        "detail": finding.detail,
    }


def _drift_json(drift: MeasuredDrift) -> dict[str, Any]:
    test = drift.test
    return {
        "p_value": float(test.p_value),
        "effect": float(test.effect),
        "effect_measure": test.effect_measure,
        "method": [drift.method.test, drift.method.effect],
    }


def _part(name: str, raw: Mapping[str, Any]) -> FeaturePart:
    findings = raw["findings"]
    drift = raw["drift"]
    return FeaturePart(
        in_reference=raw["in_reference"],
        in_current=raw["in_current"],
        present=raw["present"],
        findings=None
        if findings is None
        else [
            QualityFinding(Finding(f["kind"]), f["column"], f["count"], f["share"], tuple(f["examples"]), f["detail"])
            for f in findings
        ],
        drift=None
        if drift is None
        else MeasuredDrift(
            FeatureTest(name, drift["p_value"], drift["effect"], drift["effect_measure"]), Method(*drift["method"])
        ),
    )


def feature_groups(schema: DataSchema, task: str, policy: Mapping[str, Any], size: int) -> list[list[str]]:
    """The features a run may measure apart, in groups of `size`: every feature but those the
    combining task reads anyway (segments, and the numerical features when the multivariate
    check or label-free regression estimation reads them all at once)."""
    together = set(schema.segments)
    estimates_regression = task == "regression" and CheckKind.ESTIMATED_PERFORMANCE in set(policy["checks"])
    if policy["drift"].get("multivariate") or estimates_regression:
        together |= set(schema.numerical)
    apart = [name for name in schema.features if name not in together]
    return [apart[i : i + size] for i in range(0, len(apart), max(size, 1))]
