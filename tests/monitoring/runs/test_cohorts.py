"""Cohorts judged with their uncertainty (issue: an AUC a few hundredths lower on about a
thousand rows became a critical alert and a cohort scope), and a new cohort measured against
the reference population as a whole (issue: a new region's collapse had no figure at all)."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.runs.checks import compute_run
from monitoring.runs.diagnosis import diagnose
from monitoring.runs.domain import Check
from monitoring.stats.performance import roc_auc
from monitoring.stats.uncertainty import auc_variance
from tests.monitoring.runs.test_diagnosis import POLICY, SCHEMA, N, _kpis


def _population(seed: int, *, regions=("north", "south", "east", "west"), new_region: float = 0.0,
                collapse_in_new: bool = False):  # fmt: skip
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, N), rng.normal(0, 1, N)
    score = 1 / (1 + np.exp(-(1.5 * x1 - 0.3)))
    region = rng.choice(list(regions), N).astype(object)
    region[rng.random(N) < new_region] = "mars"
    truth = 1 / (1 + np.exp(-(1.5 * x1 - 0.3)))
    if collapse_in_new:  # the new cohort's outcomes do not follow the score at all
        truth = np.where(region == "mars", 1 / (1 + np.exp(-(1.5 * x2 - 0.3))), truth)
    labels = (rng.random(N) < truth).astype(float)
    columns = {"x1": x1, "x2": x2, "region": region, "score": score,
               "id": np.array([f"r{seed}-{i}" for i in range(N)], dtype=object)}  # fmt: skip
    return columns, labels


def _run(current_seed: int, **current_kwargs):
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, labels = _population(current_seed, **current_kwargs)
    checks = [Check.model_validate(check) for check in _checks(reference, current, labels, kpis=_kpis(0.05))]
    return checks, diagnose(checks), (reference, current, labels)


def _checks(reference: dict, current: dict, labels: np.ndarray, *, schema=SCHEMA, kpis=None) -> list[dict]:
    """The run's checks on these columns, the labels keyed by the current rows' ids."""
    return compute_run(
        reference,
        current,
        labels=dict(zip(current["id"].tolist(), labels.tolist(), strict=True)),
        schema=schema,
        task="binary_classification",
        policy=POLICY,
        kpis=kpis,
        kpi_baseline=kpis,
    )["checks"]


def test_chance_differences_between_cohorts_on_normal_days_raise_nothing():
    """Ten normal days (same population, new draws): no cohort is named, though their AUCs
    differ from the reference's by several hundredths by chance alone on ~1,500 rows each."""
    gaps = []
    for seed in range(10, 20):
        checks, diagnosis, _ = _run(seed)
        cohort = [c for c in checks if c.check.value == "segments" and c.metric == "roc_auc"]
        gaps += [c.reference - c.value for c in cohort]
        assert all(c.status.value == "ok" for c in cohort), [(c.segment, c.value, c.reference) for c in cohort]
        assert diagnosis.scope == "global"
    assert max(gaps) > 0.02  # the chance gaps this used to call real


def test_each_cohort_figure_carries_its_interval_from_delongs_variance():
    checks, _, (_, current, labels) = _run(30)
    north = next(c for c in checks if c.segment == "region=north" and c.metric == "roc_auc")
    rows = current["region"] == "north"
    auc = roc_auc(labels[rows], current["score"][rows])
    half = 1.959964 * np.sqrt(auc_variance(labels[rows] == 1, current["score"][rows]))
    assert north.value == pytest.approx(auc) and north.lower == pytest.approx(auc - half)
    assert north.upper == pytest.approx(auc + half)
    assert north.labelled_rows == rows.sum()


def test_a_new_cohort_is_measured_against_the_whole_reference_and_named_when_it_collapses():
    checks, diagnosis, (reference, _, _) = _run(40, new_region=0.25, collapse_in_new=True)
    mars = next(c for c in checks if c.segment == "region=mars" and c.metric == "roc_auc")
    assert mars.reference == roc_auc(reference["clicked"], reference["score"])  # the population as a whole
    assert mars.value < 0.6 and mars.status.value == "critical"
    assert "region=mars" in diagnosis.scope
    others = [c for c in checks if c.metric == "roc_auc" and c.segment and c.segment != "region=mars"]
    assert all(c.status.value == "ok" for c in others), [(c.segment, c.value, c.reference, c.status) for c in others]


def test_overlapping_cohorts_are_attributed_to_the_one_that_explains_the_gap():
    """The new region's customers all hold the basic or standard plan: those plans fall short too,
    but only through the region's rows. Share × gap names the region, once; without its rows the
    plans hold, so they are not named."""
    from dataclasses import replace

    schema = replace(SCHEMA, categorical=("region", "plan"), segments=("region", "plan"))
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, labels = _population(41, new_region=0.25, collapse_in_new=True)
    rng = np.random.default_rng(5)
    for side in (reference, current):
        side["plan"] = rng.choice(["basic", "standard", "premium"], side["x1"].size).astype(object)
    current["plan"][current["region"] == "mars"] = rng.choice(
        ["basic", "standard"], (current["region"] == "mars").sum()
    )
    result = {"checks": _checks(reference, current, labels, schema=schema)}
    checks = [Check.model_validate(check) for check in result["checks"]]
    cohorts = {c.segment: c for c in checks if c.check.value == "segments" and c.metric == "roc_auc"}
    basic = current["plan"] == "basic"
    with_mars = roc_auc(labels[basic], current["score"][basic])
    assert cohorts["plan=basic"].value == pytest.approx(with_mars)  # its figure is kept, as measured
    assert with_mars < cohorts["plan=basic"].reference - 0.05  # it does fall short, through mars's rows
    assert cohorts["region=mars"].status.value == "critical"
    assert cohorts["plan=basic"].status.value == "ok" and cohorts["plan=standard"].status.value == "ok"
    diagnosis = diagnose(checks)
    assert diagnosis.scope == "cohort: region=mars"
    assert sum("region=mars" in line for line in diagnosis.evidence) == 1, diagnosis.evidence  # stated once
    assert not any("plan=" in line for line in diagnosis.evidence)


def test_a_cohort_holding_one_class_only_has_no_figure_and_breaks_nothing():
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, labels = _population(42)
    labels[current["region"] == "north"] = 0.0  # nobody in the north clicked
    result = {"checks": _checks(reference, current, labels)}
    cohorts = {c["segment"] for c in result["checks"] if c["check"] == "segments" and c.get("metric") == "roc_auc"}
    assert "region=north" not in cohorts and "region=south" in cohorts


def test_a_cohort_inside_a_larger_one_is_named_rather_than_the_larger():
    """The new region's rows are half of the basic plan's: the plan falls short by about half the
    region's gap, so share × gap about ties, and the plan's other rows, a little worse by chance,
    tip it towards the plan. The region explains the plan, not the other way round."""
    from dataclasses import replace

    schema = replace(SCHEMA, categorical=("region", "plan"), segments=("region", "plan"))
    reference, ref_labels = _population(1)
    reference["clicked"] = ref_labels
    current, labels = _population(43, new_region=0.2, collapse_in_new=True)
    rng = np.random.default_rng(6)
    reference["plan"] = rng.choice(["basic", "standard", "premium"], reference["x1"].size).astype(object)
    mars = current["region"] == "mars"
    current["plan"] = rng.choice(["standard", "premium"], mars.size).astype(object)
    current["plan"][mars] = "basic"
    others = np.flatnonzero(~mars)
    basic_others = rng.choice(others, mars.sum(), replace=False)
    current["plan"][basic_others] = "basic"  # as many rows again, not in mars
    flipped = basic_others[rng.random(basic_others.size) < 0.05]  # a little worse there: tips share × gap
    labels[flipped] = 1.0 - labels[flipped]
    result = {"checks": _checks(reference, current, labels, schema=schema)}
    cohorts = {c["segment"]: c for c in result["checks"] if c["check"] == "segments" and c.get("metric") == "roc_auc"}
    assert cohorts["region=mars"]["status"] == "critical"
    assert cohorts["plan=basic"]["drop"] > 0.05 and cohorts["plan=basic"]["status"] == "ok"
