"""Labels arriving after a run: the realized performance of its window beside its estimate."""

import datetime as dt

import numpy as np
import orjson
import pytest

from audit.models import Event
from monitoring.ingestion.services import batch_ingest
from monitoring.models import Alert, Run
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import ALICE
from tests.monitoring.runs.conftest import _ingest, _rows

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _labels(rows: list[dict], *, concept: bool, seed: int) -> list[dict]:
    """Outcomes drawn from the model's own calibrated score, or (concept drift) from a coin."""
    rng = np.random.default_rng(seed)
    truth = [0.5 if concept else r["score"] for r in rows]
    return [{"id": r["id"], "defaulted": int(rng.random() < p)} for r, p in zip(rows, truth, strict=True)]


def _run_on_a_window(shift: float = 0.0):
    """A reference, three hours of predictions (inputs moved by `shift`) and their run, before
    any label: the outcome and the rows, whose labels the test sends later."""
    _ingest("reference", _rows(4000, start=NOW, seed=1, reference=True))
    start = NOW - dt.timedelta(hours=3)
    rows = _rows(3000, start=start, shift=shift, seed=2)
    _ingest("predictions", rows)
    return run_execute(model="credit", start=start - dt.timedelta(minutes=1), end=NOW), rows


@pytest.mark.parametrize("concept", [False, True])
def test_labels_for_a_past_window_are_set_beside_the_estimate(
    credit_model, django_capture_on_commit_callbacks, concept
):
    outcome, rows = _run_on_a_window(shift=0.5)
    assert Run.objects.get(run_id=outcome.run_id).realized is None
    with django_capture_on_commit_callbacks(execute=True):
        batch_ingest(
            model="credit",
            kind="labels",
            body=orjson.dumps(_labels(rows, concept=concept, seed=3)),
            content_type="application/json",
            actor=ALICE,
        )
    realized = Run.objects.get(run_id=outcome.run_id).realized
    assert realized["labelled_rows"] == 3000 and realized["metric"] == "roc_auc"
    assert realized["within_band"] == (realized["lower"] <= realized["realized"] <= realized["upper"])
    if concept:  # the estimate cannot see it: realized performance falls far below the band
        assert realized["realized"] < 0.6 and realized["realized"] < realized["lower"] and not realized["within_band"]
    else:  # covariate shift only: the estimate made without labels was close (its coverage: test_estimation.py)
        assert abs(realized["realized"] - realized["estimated"]) < 0.04
    with django_capture_on_commit_callbacks(execute=True):  # no new labelled rows: nothing new to record
        batch_ingest(
            model="credit",
            kind="labels",
            body=orjson.dumps(_labels(rows[:10], concept=concept, seed=4)),
            content_type="application/json",
            actor=ALICE,
        )
    assert Event.objects.filter(event_type="monitoring.PerformanceRealized").count() == 1


def _late_labels(rows: list[dict], *, concept: bool, seed: int, callbacks) -> None:
    with callbacks(execute=True):
        batch_ingest(
            model="credit",
            kind="labels",
            body=orjson.dumps(_labels(rows, concept=concept, seed=seed)),
            content_type="application/json",
            actor=ALICE,
        )


def test_late_labels_showing_concept_drift_revise_the_diagnosis_and_raise_the_alert(
    credit_model, django_capture_on_commit_callbacks
):
    # A quiet window: the inputs are as in the reference, the estimate holds, nothing to see.
    outcome, rows = _run_on_a_window()
    first = Run.objects.get(run_id=outcome.run_id)
    assert first.diagnosis["cause"] == "no_problem", first.diagnosis
    assert not Alert.objects.exclude(check_name="data_quality").exists(), list(
        Alert.objects.values("check_name", "summary")
    )
    diagnosed = Event.objects.get(event_type="monitoring.RunDiagnosed", stream_id=outcome.run_id)

    # Then the outcomes arrive and the model no longer predicts them (a coin).
    _late_labels(rows, concept=True, seed=3, callbacks=django_capture_on_commit_callbacks)
    realized = Event.objects.get(event_type="monitoring.PerformanceRealized", stream_id=outcome.run_id)
    revised = Event.objects.get(event_type="monitoring.RunDiagnosisRevised", stream_id=outcome.run_id)
    assert revised.payload["revises"] == str(diagnosed.event_id)  # cites the diagnosis it replaces
    assert revised.causation_id == realized.event_id and revised.payload["revision"] == 1
    assert revised.payload["cause"] == "concept_drift" and revised.payload["labelled_rows"] == 3000
    assert "labels for 3,000 rows" in bytes(revised.canonical).decode()  # the envelope's reason
    performance = next(c for c in revised.payload["checks"] if c["check"] == "performance")
    assert performance["status"] == "critical" and performance["value"] < 0.6
    # The first diagnosis stays in the log; the read model shows the revised one.
    assert Event.objects.filter(event_type="monitoring.RunDiagnosed", stream_id=outcome.run_id).count() == 1
    now = Run.objects.get(run_id=outcome.run_id)
    assert now.diagnosis["cause"] == "concept_drift" and now.diagnosis["revision"] == 1 and now.level == "critical"
    # The alerts follow, caused by the revision.
    alert = Alert.objects.get(check_name="performance")
    assert alert.severity == "critical" and str(alert.run_id) == outcome.run_id
    raised = Event.objects.get(event_type="monitoring.AlertRaised", stream_id=str(alert.alert_id))
    assert raised.causation_id == revised.event_id

    # Labels for rows already known change nothing: no second realization, no second revision.
    _late_labels(rows[:100], concept=True, seed=4, callbacks=django_capture_on_commit_callbacks)
    assert Event.objects.filter(event_type="monitoring.RunDiagnosisRevised").count() == 1


def test_late_labels_that_confirm_the_run_add_their_figures_and_nothing_else(
    credit_model, django_capture_on_commit_callbacks
):
    _, rows = _run_on_a_window()
    alerts = set(Alert.objects.values_list("alert_id", "status"))
    _late_labels(rows, concept=False, seed=3, callbacks=django_capture_on_commit_callbacks)
    assert Event.objects.filter(event_type="monitoring.PerformanceRealized").count() == 1
    revised = Event.objects.get(event_type="monitoring.RunDiagnosisRevised")  # the realized figures join the run
    assert revised.payload["cause"] == "no_problem"
    assert {c["check"]: c["status"] for c in revised.payload["checks"]}["performance"] == "ok"
    assert set(Alert.objects.values_list("alert_id", "status")) == alerts  # no alert raised or changed
    _late_labels(rows[:200], concept=False, seed=3, callbacks=django_capture_on_commit_callbacks)
    assert Event.objects.filter(event_type="monitoring.RunDiagnosisRevised").count() == 1


def test_late_labels_add_what_they_show_and_the_realized_figure_replaces_the_estimate(
    credit_model, django_capture_on_commit_callbacks
):
    """Covariate shift: the inputs moved and the estimate held. The labels show the outcomes moved
    with them (label drift, alerted) while the model still ranks them well (no performance alert)."""
    outcome, rows = _run_on_a_window(shift=0.8)
    assert Run.objects.get(run_id=outcome.run_id).diagnosis["cause"] == "covariate_shift"
    assert not Alert.objects.filter(check_name__in=["label_drift", "performance"]).exists()
    _late_labels(rows, concept=False, seed=3, callbacks=django_capture_on_commit_callbacks)
    revised = Event.objects.get(event_type="monitoring.RunDiagnosisRevised", stream_id=outcome.run_id)
    checks = {c["check"]: c for c in revised.payload["checks"]}
    assert checks["performance"]["status"] == "ok" and checks["performance"]["labelled_rows"] == 3000
    assert checks["label_drift"]["status"] != "ok" and revised.payload["cause"] == "covariate_shift"
    assert Alert.objects.filter(check_name="label_drift", status="open").exists()
    assert not Alert.objects.filter(check_name="performance").exists()


def test_a_run_of_another_engine_gets_its_realized_figure_but_no_revision(
    credit_model, django_capture_on_commit_callbacks, monkeypatch
):
    """Recomputed today, its other figures could move for reasons that are not the labels."""
    from monitoring.runs import delayed_labels

    _, rows = _run_on_a_window()
    monkeypatch.setattr(delayed_labels, "ENGINE", delayed_labels.ENGINE + 1)
    _late_labels(rows, concept=True, seed=3, callbacks=django_capture_on_commit_callbacks)
    assert Event.objects.filter(event_type="monitoring.PerformanceRealized").count() == 1
    assert not Event.objects.filter(event_type="monitoring.RunDiagnosisRevised").exists()


def test_a_run_that_cannot_be_evaluated_does_not_stop_the_others(
    credit_model, django_capture_on_commit_callbacks, monkeypatch
):
    from monitoring.runs import delayed_labels

    _ingest("reference", _rows(4000, start=NOW, seed=1, reference=True))
    first_start, second_start = NOW - dt.timedelta(hours=6), NOW - dt.timedelta(hours=3)
    first = _rows(1500, start=first_start, seed=2, prefix="a")
    second = _rows(1500, start=second_start, seed=3, prefix="b")
    _ingest("predictions", first + second)
    broken = run_execute(model="credit", start=first_start, end=second_start).run_id
    fine = run_execute(model="credit", start=second_start, end=NOW).run_id
    evaluate = delayed_labels._evaluate

    def failing_once(run, *args):
        if str(run.run_id) == broken:
            raise KeyError("a shape this code does not know")
        return evaluate(run, *args)

    monkeypatch.setattr(delayed_labels, "_evaluate", failing_once)
    _late_labels(first + second, concept=True, seed=4, callbacks=django_capture_on_commit_callbacks)
    realized = set(
        Event.objects.filter(event_type="monitoring.PerformanceRealized").values_list("stream_id", flat=True)
    )
    assert realized == {fine}
