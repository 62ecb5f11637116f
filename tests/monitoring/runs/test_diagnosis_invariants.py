"""Whatever the checks, the diagnosis agrees with them (hypothesis over generated check sets):
no problem is never claimed beside a serious finding, "every check passed" only when every check
did, a cohort scope only with a problem, and every cause points at a failing check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import Cause, Check, CheckKind, Level

METRICS = {
    CheckKind.DATA_QUALITY: ["null_rate", "out_of_range", "new_category", "rows", "constant"],
    CheckKind.FEATURE_DRIFT: ["psi", "wasserstein_normed"],
    CheckKind.PREDICTION_DRIFT: ["wasserstein_normed"],
    CheckKind.LABEL_DRIFT: ["psi"],
    CheckKind.PERFORMANCE: ["roc_auc"],
    CheckKind.ESTIMATED_PERFORMANCE: ["roc_auc"],
    CheckKind.KPIS: ["ctr"],
    CheckKind.SEGMENTS: ["new_segment_share", "prediction_drift", "roc_auc"],
}


@st.composite
def checks(draw) -> Check:
    kind = draw(st.sampled_from(list(CheckKind)))
    metric = draw(st.sampled_from(METRICS[kind]))
    segment = (
        draw(st.sampled_from(["region=north", "region=south", "region=mars"])) if kind is CheckKind.SEGMENTS else None
    )
    return Check(
        check=kind,
        status=draw(st.sampled_from(list(Level))),
        metric=metric,
        feature=None if segment else draw(st.sampled_from(["income", "age", "score"])),
        segment=segment,
        value=draw(st.floats(0, 1)),
        count=draw(st.integers(0, 1000)),
    )


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(checks(), max_size=12))
def test_the_diagnosis_agrees_with_its_checks(found):
    diagnosis = diagnose(found)
    failing = [c for c in found if c.status.failing]
    if not failing:
        assert diagnosis.cause is Cause.NO_PROBLEM and diagnosis.evidence == ["every check passed"]
    if "every check passed" in diagnosis.evidence:
        assert not failing
    if diagnosis.cause is Cause.NO_PROBLEM:
        assert diagnosis.scope == "global", diagnosis
        assert all(c.check is CheckKind.DATA_QUALITY and c.status is Level.WARNING for c in failing), diagnosis
    else:
        assert failing, diagnosis
    if diagnosis.scope != "global":
        assert diagnosis.cause is not Cause.NO_PROBLEM
        named = diagnosis.scope.removeprefix("cohort: ").split(", ")
        assert set(named) <= {c.segment for c in failing if c.segment}
    assert len(diagnosis.evidence) == len(set(diagnosis.evidence)), "evidence repeats itself"
