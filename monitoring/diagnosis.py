"""Diagnosis of a run: what most likely went wrong, with the evidence and what to do.

Pure: it reads a run's checks in the order an experienced engineer investigates. First data
quality: nothing else is believable while the data is broken. Then input drift, prediction
and label drift, and performance (realized when labels exist, else estimated). Then business
KPIs. Last, whether the problem is global or confined to a cohort, and whether new segments
are entering the population.

Causes: data_quality, covariate_shift, prior_shift (the outcomes moved, the inputs did not),
concept_drift (performance falls while inputs are stable), user_behaviour_change (a KPI
falls while model and data are stable), no_problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

ACTIONS = {
    "data_quality": [
        "fix the upstream pipeline (schema, nulls, ranges) before trusting any other figure",
        "hold retraining on the affected window",
    ],
    "covariate_shift": [
        "retrain on recent data that covers the new population",
        "if performance fell, roll back to a version that handled this population, or canary a challenger",
    ],
    "prior_shift": [
        "recalibrate the decision threshold to the new base rate",
        "retrain with recent labels if the shift persists",
    ],
    "concept_drift": [
        "retrain with recent labels: the relation between inputs and outcome has changed",
        "roll back if an earlier version performs better on recent labels",
    ],
    "user_behaviour_change": [
        "look for product, UX or market changes; the model and its data are stable",
        "revisit thresholds and baselines for seasonality",
    ],
    "no_problem": ["nothing to do"],
}
FAILING = ("warning", "critical")


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    scope: str  # global, or cohort: <segments>
    evidence: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    new_segments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(checks: Sequence[Mapping[str, Any]]) -> Diagnosis:
    by_check: dict[str, list[Mapping[str, Any]]] = {}
    for check in checks:
        by_check.setdefault(check["check"], []).append(check)
    failing = {name: [c for c in items if c.get("status") in FAILING] for name, items in by_check.items()}
    segment_checks = by_check.get("segments", [])
    new_segments = [c["segment"] for c in failing.get("segments", []) if c.get("metric") == "new_segment_share"]
    confined: list[str] = []
    for metric in {c.get("metric") for c in segment_checks} - {"new_segment_share"}:  # drift, performance
        signal = [c for c in segment_checks if c.get("metric") == metric]
        failing_here = [c["segment"] for c in signal if c.get("status") in FAILING]
        if failing_here and len(failing_here) < len(signal):  # some segments, not all: a cohort
            confined += failing_here
    cohort = sorted(dict.fromkeys(new_segments + confined))
    scope = f"cohort: {', '.join(cohort)}" if cohort else "global"

    quality = [c for c in failing.get("data_quality", []) if _serious_quality(c)]
    drifted = failing.get("feature_drift", [])
    prediction = failing.get("prediction_drift", [])
    labels = failing.get("label_drift", [])
    realized = failing.get("performance", [])
    estimated = failing.get("estimated_performance", [])
    kpis = failing.get("kpis", [])

    if quality:
        cause, evidence = "data_quality", [_describe(c) for c in quality]
    elif drifted:
        evidence = [_describe(c) for c in drifted + prediction + realized + estimated]
        cause = "covariate_shift"
    elif labels and not realized:
        cause, evidence = "prior_shift", [_describe(c) for c in labels + prediction]
    elif realized:
        cause, evidence = "concept_drift", [_describe(c) for c in realized + labels]
        evidence.append("no input feature drifted")
    elif kpis:
        cause, evidence = "user_behaviour_change", [_describe(c) for c in kpis]
        evidence.append("no data-quality finding, no input or prediction drift, performance holds")
    else:
        cause, evidence = "no_problem", ["every check passed"]
    if new_segments and cause != "no_problem":
        evidence.append(f"new segments entering: {', '.join(new_segments)}")
    if confined and cause != "no_problem":
        evidence.append(f"confined to: {', '.join(confined)}")
    return Diagnosis(cause, scope, evidence, list(ACTIONS[cause]), new_segments)


def _serious_quality(check: Mapping[str, Any]) -> bool:
    """Missing columns, type changes, and nulls or out-of-range values on a tenth of rows or
    more; new categories alone are left to drift and segments."""
    if check.get("status") == "critical":
        return True
    share = check.get("value")
    return (
        check.get("metric") in ("null_rate", "out_of_range", "constant")
        and isinstance(share, int | float)
        and share >= 0.1
    )


def _describe(check: Mapping[str, Any]) -> str:
    subject = check.get("feature") or check.get("segment") or check.get("metric", "")
    value = check.get("value")
    figure = f"{value:.3g}" if isinstance(value, int | float) else "?"
    if "reference" in check and isinstance(check["reference"], int | float):
        figure += f" (reference {check['reference']:.3g})"
    return f"{check['check']}: {subject} {check.get('metric', '')} {figure} [{check['status']}]".replace("  ", " ")
