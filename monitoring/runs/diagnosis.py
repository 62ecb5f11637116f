"""Diagnosis of a run: what most likely went wrong, with the evidence and what to do.

Pure: it reads a run's checks in the order an experienced engineer investigates. First data
quality: nothing else is believable while the data is broken. Then input drift, prediction
and label drift, and performance (realized when labels exist, else estimated). Then business
KPIs. Last, whether the problem is global or confined to a cohort, and whether new segments
are entering the population.

Causes: data_quality, covariate_shift, prior_shift (the outcomes moved, the inputs did not),
concept_drift (performance falls while inputs are stable), user_behaviour_change (a KPI
falls while model and data are stable), no_problem (no check failed, or only minor
data-quality findings, which the evidence lists: a finding is never explained away).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitoring.runs.domain import Cause, Check, CheckKind, Level

ACTIONS = {
    Cause.DATA_QUALITY: [
        "fix the upstream pipeline (schema, nulls, ranges) before trusting any other figure",
        "hold retraining on the affected window",
    ],
    Cause.COVARIATE_SHIFT: [
        "retrain on recent data that covers the new population",
        "if performance fell, roll back to a version that handled this population, or canary a challenger",
    ],
    Cause.PRIOR_SHIFT: [
        "recalibrate the decision threshold to the new base rate",
        "retrain with recent labels if the shift persists",
    ],
    Cause.CONCEPT_DRIFT: [
        "retrain with recent labels: the relation between inputs and outcome has changed",
        "roll back if an earlier version performs better on recent labels",
    ],
    Cause.USER_BEHAVIOUR_CHANGE: [
        "look for product, UX or market changes; the model and its data are stable",
        "revisit thresholds and baselines for seasonality",
    ],
    Cause.NO_PROBLEM: ["nothing to do"],
}


SHIFT_SIGNALS = ("new_segment_share", "prediction_drift")  # segment checks that are not a figure of performance


@dataclass(frozen=True)
class Diagnosis:
    cause: Cause
    scope: str  # global, or cohort: <segments>
    evidence: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    new_segments: list[str] = field(default_factory=list)


def diagnose(checks: Sequence[Check]) -> Diagnosis:
    by_check: dict[CheckKind, list[Check]] = {}
    for check in checks:
        by_check.setdefault(check.check, []).append(check)
    failing = {name: [c for c in items if c.status.failing] for name, items in by_check.items()}
    # A column whose values changed encoding has no new segments: the old ones under new names.
    recoded = {c.feature for c in failing.get(CheckKind.DATA_QUALITY, []) if c.metric == "encoding_change"}
    segment_checks = [c for c in by_check.get(CheckKind.SEGMENTS, []) if _column(c.segment) not in recoded]
    new_segments = [c.segment or "" for c in segment_checks if c.status.failing and c.metric == "new_segment_share"]
    confined: list[str] = []
    for metric in {c.metric for c in segment_checks} - {"new_segment_share"}:  # drift, performance
        signal = [c for c in segment_checks if c.metric == metric]
        failing_here = [c.segment or "" for c in signal if c.status.failing]
        if failing_here and len(failing_here) < len(signal):  # some segments, not all: a cohort
            confined += failing_here
    split_kpis = [c for c in by_check.get(CheckKind.KPIS, []) if c.segment]
    for metric, column in sorted({(c.metric or "", _column(c.segment)) for c in split_kpis}):  # a KPI per segment
        signal = [c for c in split_kpis if c.metric == metric and _column(c.segment) == column]
        failing_here = [c.segment or "" for c in signal if c.status.failing]
        if failing_here and len(failing_here) < len(signal):
            confined += failing_here
    cohort = sorted(dict.fromkeys(new_segments + confined))
    scope = f"cohort: {', '.join(cohort)}" if cohort else "global"

    quality = [c for c in failing.get(CheckKind.DATA_QUALITY, []) if _serious_quality(c)]
    drifted = failing.get(CheckKind.FEATURE_DRIFT, [])
    prediction = failing.get(CheckKind.PREDICTION_DRIFT, [])
    labels = failing.get(CheckKind.LABEL_DRIFT, [])
    realized = failing.get(CheckKind.PERFORMANCE, [])
    estimated = failing.get(CheckKind.ESTIMATED_PERFORMANCE, [])
    kpis = failing.get(CheckKind.KPIS, [])
    minor_quality = [c for c in failing.get(CheckKind.DATA_QUALITY, []) if c not in quality]

    if quality:
        cause, evidence = Cause.DATA_QUALITY, [_describe(c) for c in quality]
    elif drifted:
        evidence = [_describe(c) for c in drifted + prediction + realized + estimated]
        cause = Cause.COVARIATE_SHIFT
    elif labels and not realized:
        cause, evidence = Cause.PRIOR_SHIFT, [_describe(c) for c in labels + prediction]
    elif realized:
        cause, evidence = Cause.CONCEPT_DRIFT, [_describe(c) for c in realized + labels]
        evidence.append("no input feature drifted")
    elif kpis:
        cause, evidence = Cause.USER_BEHAVIOUR_CHANGE, [_describe(c) for c in kpis]
        evidence.append("no data-quality finding, no input or prediction drift, performance holds")
    elif unexplained := prediction + estimated + failing.get(CheckKind.SEGMENTS, []):
        cause, evidence = Cause.COVARIATE_SHIFT, [_describe(c) for c in unexplained + minor_quality]
        evidence.append("no single input feature drifted: a joint change of inputs, or one not monitored")
    elif minor_quality:  # a few rows out of range, a rare new category: worth seeing, not a cause
        cause, evidence = Cause.NO_PROBLEM, ["only minor findings", *(_describe(c) for c in minor_quality)]
    else:
        cause, evidence = Cause.NO_PROBLEM, ["every check passed"]
    if cause is not Cause.NO_PROBLEM:  # each segment named once: by its figure when it has one
        entering, elsewhere = list(dict.fromkeys(new_segments)), list(dict.fromkeys(confined))
        figures = [c for c in segment_checks if c.status.failing and c.metric not in SHIFT_SIGNALS]
        for check in figures:  # a cohort whose performance fell: by how much
            evidence.append(_describe(check) + (", a new segment" if check.segment in entering else ""))
        figured = {c.segment for c in figures}
        entering = [s for s in entering if s not in figured]
        elsewhere = [s for s in elsewhere if s not in figured and s not in entering]
        if entering:
            evidence.append(f"new segments entering: {', '.join(entering)}")
        if elsewhere:
            evidence.append(f"confined to: {', '.join(elsewhere)}")
    evidence = list(dict.fromkeys(evidence))  # a finding said once, however many checks say it
    return Diagnosis(cause, scope, evidence, list(ACTIONS[cause]), list(dict.fromkeys(new_segments)))


def _column(segment: str | None) -> str:
    """The column of a segment key ("region=north" -> "region")."""
    return (segment or "").partition("=")[0]


def _serious_quality(check: Check) -> bool:
    """Missing data (an empty or much smaller window, an absent or entirely null column), type
    changes, and nulls or out-of-range values on a tenth of rows or more; new categories alone
    are left to drift and segments (and diagnosed as data quality only when nothing else is)."""
    if check.status is Level.CRITICAL or check.metric == "rows":
        return True
    share = check.value
    return (
        check.metric in ("null_rate", "out_of_range", "extreme_value", "constant")
        and share is not None
        and share >= 0.1
    )


def _describe(check: Check) -> str:
    if check.metric == "rows":
        return _describe_rows(check)
    value = check.value
    figure = f"{value:.3g}" if value is not None else "?"
    if check.reference is not None:
        figure += f" (reference {check.reference:.3g})"
    measure = "" if check.metric == check.subject else check.metric or ""
    return f"{check.check.value}: {check.subject} {measure} {figure} [{check.status.value}]".replace("  ", " ")


def _describe_rows(check: Check) -> str:
    rows = check.count or 0
    if rows == 0:
        return f"data_quality: the window holds no rows [{check.status.value}]"
    usual = (
        f", {check.value:.0%} of the usual {check.reference:,.0f}"
        if check.value is not None and check.reference
        else ""
    )
    return f"data_quality: the window holds {rows:,} rows{usual} [{check.status.value}]"
