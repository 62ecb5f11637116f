"""Policies and monitoring runs end to end on the real database: versioned policies, a run's
checks on real ingested data, idempotency, failures, reproduction, the API and the schedule."""

import datetime as dt
import importlib.metadata
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import Event
from monitoring.models import Alert, Run
from monitoring.policies.services import policy_load, policy_set
from monitoring.runs.services import run_execute
from monitoring.runs.tasks import schedule_due_runs
from tests.monitoring.conftest import ALICE, approved, client_for, policy_in_force
from tests.monitoring.runs.conftest import NOW, _ingest, _rows

pytestmark = pytest.mark.django_db


def test_policies_are_versioned_validated_and_readable_as_of_any_time(credit_model):
    assert policy_load("credit").version == 0  # the defaults
    stricter = {"drift": {"features": {"income": {"floor": 0.05}}}}
    policy_set(model="credit", policy=stricter, actor=ALICE, reason="income matters most")
    first = Event.objects.get(event_type="monitoring.PolicySet")
    stricter_still = {"drift": {"features": {"income": {"floor": 0.03}}}, "escalate_after_minutes": 30}
    policy_set(model="credit", policy=stricter_still, actor=ALICE, reason="page sooner")
    assert policy_load("credit").version == 2
    assert policy_load("credit").policy["drift"]["features"] == {"income": {"floor": 0.03}}
    assert policy_load("credit", at=first.occurred_at).policy["drift"]["features"] == {"income": {"floor": 0.05}}
    assert policy_load("credit", at=first.occurred_at).version == 1


def test_a_policy_change_that_is_not_a_pure_tightening_takes_effect_only_once_approved(credit_model, people):
    engineer = client_for(people["ml_engineer"])
    laxer = {"policy": {"drift": {"effect_floors": {"wasserstein_normed": 5.0}}}, "reason": "too noisy"}
    refused = engineer.put("/api/v1/models/credit/policies/", laxer, format="json")
    assert refused.status_code == 409
    assert refused.json()["approval"]["kind"] == "threshold_change"
    assert refused.json()["approval"]["required_approvals"] == 2
    assert "drift.effect_floors.wasserstein_normed: 0.1 -> 5.0" in refused.json()["detail"]
    assert policy_load("credit").version == 0 and not Event.objects.filter(event_type="monitoring.PolicySet").exists()
    approved("credit", "threshold_change", {"policy": laxer["policy"]})
    assert policy_load("credit").policy["drift"]["effect_floors"]["wasserstein_normed"] == 5.0
    set_by = Event.objects.get(event_type="monitoring.PolicySet")
    assert set_by.actor_id == "remediation-executor" and set_by.causation_id is not None


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"window": {"days": 1}}, "window must be"),
        ({"checks": ["astrology"]}, "unknown check"),
        ({"drift": {"alpha": 2}}, "alpha"),
        ({"drift": {"features": {"ghost": {"floor": 0.1}}}}, "not a feature"),
        ({"drift": {"features": {"region": {"test": "ks", "effect": "psi"}}}}, "test must be one of chi2"),
        ({"performance": {"warning_drop": 0.1, "critical_drop": 0.05}}, "warning_drop"),
        ({"colour": "red"}, "unknown section"),
        ({"drift": {"warning_floors": {"psi": -1}}}, "warning_floors"),
        ({"segments": {"floors": {"region=north": "high"}}}, "segments.floors"),
        ({"kpis": {"baseline": "yesterday"}}, "kpis.baseline"),
        # A misspelt key is refused, with the key it most likely meant (it used to be stored while
        # the real threshold silently stayed).
        ({"kpis": {"critcal_drop": 0.2}}, "kpis: unknown key 'critcal_drop' (did you mean 'critical_drop'?)"),
        ({"performance": {"warn_drop": 0.01}}, "performance: unknown key 'warn_drop' (did you mean 'warning_drop'?)"),
        ({"segmnets": {}}, "unknown section 'segmnets' (did you mean 'segments'?)"),
        ({"heartbeat": {"every_minutes": 5}}, "heartbeat: unknown key 'every_minutes'"),
        ({"data_quality": {"min_rows": 0}}, "data_quality.min_rows must be a whole number"),
        ({"data_quality": {"min_share": 1.5}}, "data_quality.min_share must be a number"),
    ],
)
def test_bad_policies_are_refused_and_write_nothing(credit_model, people, policy, message):
    answer = client_for(people["ml_engineer"]).put(
        "/api/v1/models/credit/policies/", {"policy": policy, "reason": "x"}, format="json"
    )
    assert answer.status_code == 400 and message in answer.json()["detail"]
    assert not Event.objects.filter(event_type="monitoring.PolicySet").exists()


def test_a_run_finds_the_drift_and_the_new_segment_and_records_its_inputs(reported):
    start, end = reported
    outcome = run_execute(model="credit", start=start, end=end)
    assert outcome.status == "completed" and outcome.recorded_now
    run = Run.objects.get(run_id=outcome.run_id)
    drifted = {c["feature"] for c in run.checks if c["check"] == "feature_drift" and c["status"] == "critical"}
    assert drifted == {"income", "region"}
    assert any(c["check"] == "prediction_drift" and c["status"] == "critical" for c in run.checks)
    assert any(c["check"] == "segments" and c["segment"] == "region=mars" for c in run.checks)
    assert any(c["check"] == "data_quality" and c["metric"] == "new_category" for c in run.checks)
    estimated = next(c for c in run.checks if c["check"] == "estimated_performance")
    assert estimated["lower"] <= estimated["value"] <= estimated["upper"]
    assert run.level == "critical" and len(run.input_digests) == 2


def test_running_twice_records_one_run(reported):
    start, end = reported
    first = run_execute(model="credit", start=start, end=end)
    second = run_execute(model="credit", start=start, end=end)
    assert second.run_id == first.run_id and not second.recorded_now
    assert Event.objects.filter(event_type="monitoring.RunCompleted").count() == 1


def test_a_new_policy_version_is_a_new_run(reported):
    start, end = reported
    first = run_execute(model="credit", start=start, end=end)
    policy_in_force("credit", {"checks": ["feature_drift"]}, reason="drift only")
    second = run_execute(model="credit", start=start, end=end)
    assert second.run_id != first.run_id
    checks = Run.objects.get(run_id=second.run_id).checks
    assert {c["check"] for c in checks if c.get("metric") != "rows"} == {"feature_drift"}  # rows: always counted


def test_a_run_that_cannot_compute_is_recorded_as_failed(credit_model):
    _ingest("predictions", _rows(50, start=NOW - dt.timedelta(hours=1)))  # no reference data at all
    outcome = run_execute(model="credit", start=NOW - dt.timedelta(hours=2), end=NOW)
    assert outcome.status == "failed"
    failed = Event.objects.get(event_type="monitoring.RunFailed")
    assert "has no reference data" in failed.payload["error"]
    assert Run.objects.get(run_id=outcome.run_id).status == "failed"


def test_reproduce_run_recomputes_the_identical_result(reported):
    start, end = reported
    outcome = run_execute(model="credit", start=start, end=end)
    stdout = io.StringIO()
    call_command("reproduce_run", outcome.run_id, stdout=stdout)
    assert "IDENTICAL" in stdout.getvalue()
    with pytest.raises(Exception, match="no completed run"):
        call_command("reproduce_run", "00000000-0000-0000-0000-000000000000")


def test_reproduce_run_names_the_libraries_that_changed_when_a_result_differs(reported, monkeypatch):
    from monitoring.management.commands import reproduce_run
    from monitoring.runs import services
    from monitoring.runs.models import Run as RunModel

    start, end = reported
    outcome = run_execute(model="credit", start=start, end=end)
    recorded = services.computed_with()
    assert recorded == {name: importlib.metadata.version(name) for name in ("numpy", "scipy", "pyarrow")}
    elsewhere = {**recorded, "numpy": "9.9.9"}
    monkeypatch.setattr(services, "computed_with", lambda: elsewhere)
    monkeypatch.setattr(reproduce_run, "computed_with", lambda: elsewhere)
    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("reproduce_run", outcome.run_id, stderr=stderr)
    assert f"numpy {recorded['numpy']} then, 9.9.9 now" in stderr.getvalue()
    assert RunModel.objects.filter(run_id=outcome.run_id).exists()


def test_reproduce_run_says_when_the_run_was_computed_by_another_engine(reported, monkeypatch):
    """Code whose figures differ (a later engine) does not claim an older run differs: it says
    which engine computed it."""
    from monitoring.management.commands import reproduce_run

    start, end = reported
    outcome = run_execute(model="credit", start=start, end=end)
    monkeypatch.setattr(reproduce_run, "ENGINE", reproduce_run.ENGINE + 1)
    with pytest.raises(Exception, match=f"computed by engine {reproduce_run.ENGINE - 1} and this code is engine"):
        call_command("reproduce_run", outcome.run_id)


def test_reproduce_run_refuses_a_stored_result_that_is_not_the_one_the_log_recorded(reported):
    """The log signs the result's SHA-256. A stored result swapped for another run's (made to
    name this run) recomputes identically from its own inputs: that must not be called this run's."""
    import orjson
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from audit.blobs import blob_path, blob_read
    from audit.canonical import canonicalize

    start, end = reported
    first = run_execute(model="credit", start=start, end=end)
    policy_in_force("credit", {"checks": ["feature_drift"]}, reason="drift only")
    second = run_execute(model="credit", start=start, end=end)
    recorded = Run.objects.get(run_id=first.run_id).result_digest
    swapped = orjson.loads(blob_read(Run.objects.get(run_id=second.run_id).result_digest))
    default_storage.delete(blob_path(recorded))
    default_storage.save(blob_path(recorded), ContentFile(canonicalize({**swapped, "run_id": first.run_id})))
    stdout = io.StringIO()
    with pytest.raises(CommandError, match=f"stored result of run {first.run_id} is not the one the log recorded"):
        call_command("reproduce_run", first.run_id, stdout=stdout)
    assert "IDENTICAL" not in stdout.getvalue()


def test_the_api_triggers_lists_and_shows_runs(reported, people, django_capture_on_commit_callbacks):
    start, end = reported
    engineer = client_for(people["ml_engineer"])
    with django_capture_on_commit_callbacks(execute=True):
        answer = engineer.post("/api/v1/models/credit/runs/", {"start": start.isoformat(), "end": end.isoformat()})
    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    shown = client_for(people["auditor"]).get(f"/api/v1/runs/{run_id}/").json()
    assert shown["status"] == "completed" and shown["level"] == "critical"
    assert [r["run_id"] for r in engineer.get("/api/v1/models/credit/runs/").json()] == [run_id]
    # A run a person asked for is recorded as theirs, not the worker's.
    started = Event.objects.get(event_type="monitoring.RunStarted", stream_id=run_id)
    assert started.actor_id == people["ml_engineer"].username
    backwards = engineer.post("/api/v1/models/credit/runs/", {"start": end.isoformat(), "end": start.isoformat()})
    assert backwards.status_code == 400
    assert client_for(people["auditor"]).post("/api/v1/models/credit/runs/", {}).status_code == 403


def test_the_schedule_queues_each_due_window_once(reported, django_capture_on_commit_callbacks):
    policy_in_force("credit", {"schedule": {"every_minutes": 60}, "window": {"hours": 3}}, reason="hourly")
    assert schedule_due_runs() == ["credit"]  # eager Celery: the run happens here
    assert schedule_due_runs() == []
    run = Run.objects.get()
    assert run.window_end - run.window_start == dt.timedelta(hours=3)
    assert run.window_end.minute == 0 and run.window_end <= dt.datetime.now(dt.UTC)


def test_a_seasonal_baseline_compares_with_the_same_period_last_week(credit_model):
    end = NOW - dt.timedelta(minutes=5)
    start = end - dt.timedelta(hours=2)
    week = dt.timedelta(days=7)
    _ingest("predictions", _rows(3000, start=start - week, seed=3, prefix="lastweek"))
    _ingest("predictions", _rows(3000, start=start, shift=0.6, seed=4, prefix="now"))
    policy_in_force("credit", {"reference": "same_period_last_week"}, reason="weekly season")
    outcome = run_execute(model="credit", start=start, end=end)
    run = Run.objects.get(run_id=outcome.run_id)
    assert run.status == "completed", run.error
    drifted = {c["feature"] for c in run.checks if c["check"] == "feature_drift" and c["status"] == "critical"}
    assert drifted == {"income"}  # no reference data set was needed
    stdout = io.StringIO()
    call_command("reproduce_run", outcome.run_id, stdout=stdout)
    assert "IDENTICAL" in stdout.getvalue()


def test_an_empty_baseline_period_fails_the_run_with_the_reason(credit_model):
    policy_in_force("credit", {"reference": "same_period_last_quarter"}, reason="quarterly")
    _ingest("predictions", _rows(100, start=NOW - dt.timedelta(hours=1)))
    outcome = run_execute(model="credit", start=NOW - dt.timedelta(hours=2), end=NOW)
    assert outcome.status == "failed"
    assert "no predictions in the baseline period" in Run.objects.get(run_id=outcome.run_id).error


def test_relative_performance_thresholds_grade_a_share_of_the_reference():
    from monitoring.policies.document import complete_policy
    from monitoring.runs.grading import graded as _graded

    absolute = complete_policy({}, {"x": "numerical"})
    relative = complete_policy(
        {"performance": {"mode": "relative", "warning_drop": 0.02, "critical_drop": 0.05}}, {"x": "numerical"}
    )
    # AUC 0.80 -> 0.77: an absolute drop of 0.03 (warning), a relative one of 3.75 % (warning)
    assert _graded("performance", "roc_auc", 0.77, 0.80, 0.03, absolute, {})["status"] == "warning"
    graded = _graded("performance", "roc_auc", 0.77, 0.80, 0.03, relative, {})
    assert graded["drop"] == pytest.approx(0.0375) and graded["status"] == "warning"
    assert _graded("performance", "roc_auc", 0.70, 0.80, 0.10, relative, {})["status"] == "critical"


def test_a_window_of_the_last_n_rows(reported, people, django_capture_on_commit_callbacks):
    policy_in_force("credit", {"window": {"last_rows": 500}}, reason="by volume")
    engineer = client_for(people["ml_engineer"])
    with django_capture_on_commit_callbacks(execute=True):
        answer = engineer.post("/api/v1/models/credit/runs/", {}, format="json")
    assert answer.status_code == 202, answer.json()
    run = Run.objects.get(run_id=answer.json()["run_id"])
    assert run.status == "completed"
    result_rows = Event.objects.get(event_type="monitoring.RunCompleted").payload
    assert result_rows["run_id"] == str(run.run_id)
    from monitoring.ingestion.selectors import window_load

    assert window_load(model="credit", start=run.window_start, end=run.window_end).rows == 500
    policy_in_force("credit", {"window": {"last_rows": 10_000}}, reason="more")
    too_many = engineer.post("/api/v1/models/credit/runs/", {}, format="json")
    assert too_many.status_code == 400 and "fewer than 10000 predictions" in too_many.json()["detail"]


def test_a_backfill_of_an_older_window_never_resolves_a_newer_incident(credit_model):
    _ingest("reference", _rows(3000, start=NOW, seed=1, reference=True))
    older, newer = NOW - dt.timedelta(hours=6), NOW - dt.timedelta(hours=2)
    _ingest("predictions", _rows(2000, start=older, seed=3, prefix="old"))  # as the reference
    _ingest("predictions", _rows(2000, start=newer, shift=0.8, seed=4, prefix="new"))  # income moved
    span = dt.timedelta(hours=1)
    run_execute(model="credit", start=newer, end=newer + span)
    incident = Alert.objects.get(feature="income", check_name="feature_drift")
    assert incident.status == "open"
    run_execute(model="credit", start=older, end=older + span)  # the backfill: income was fine back then
    assert Alert.objects.get(alert_id=incident.alert_id).status == "open"
    assert not Event.objects.filter(event_type="monitoring.AlertResolved", stream_id=str(incident.alert_id)).exists()
    # A later window where income is back to normal does resolve it.
    _ingest("predictions", _rows(2000, start=NOW - dt.timedelta(minutes=50), seed=5, prefix="later"))
    run_execute(model="credit", start=NOW - dt.timedelta(minutes=50), end=NOW)
    assert Alert.objects.get(alert_id=incident.alert_id).status == "resolved"


def test_runs_and_alerts_are_citable_by_their_own_ids(reported, people):
    start, end = reported
    outcome = run_execute(model="credit", start=start, end=end)
    reader = client_for(people["auditor"])
    run = reader.get(f"/api/v1/runs/{outcome.run_id}/").json()
    alert = reader.get("/api/v1/alerts/", {"model_name": "credit"}).json()[0]
    assert run["finished_event_id"] and alert["raised_event_id"]
    asked = client_for(people["ml_engineer"]).post(
        "/api/v1/remediations/",
        {
            "model": "credit",
            "kind": "threshold_change",
            "parameters": {"policy": {"drift": {"alpha": 0.01}}},
            "evidence": [outcome.run_id, alert["alert_id"]],
            "reason": "too many alerts",
        },
        format="json",
    )
    assert asked.status_code == 201, asked.json()
    assert asked.json()["evidence"] == [run["finished_event_id"], alert["raised_event_id"]]
    requested = Event.objects.get(event_type="monitoring.RemediationRequested")
    assert str(requested.causation_id) == run["finished_event_id"]
    unknown = client_for(people["ml_engineer"]).post(
        "/api/v1/remediations/",
        {
            "model": "credit",
            "kind": "threshold_change",
            "parameters": {"policy": {"drift": {"alpha": 0.01}}},
            "evidence": ["6f1c3a52-0000-4000-8000-000000000000"],
            "reason": "x",
        },
        format="json",
    )
    assert unknown.status_code == 400 and "events, runs or alerts" in unknown.json()["detail"]


def test_a_person_reruns_a_window_as_a_new_revision_linked_to_the_first(
    reported, people, django_capture_on_commit_callbacks
):
    from audit.aggregates import aggregate_execute
    from audit.envelope import format_time
    from monitoring.runs.domain import RunAggregate, RunWindow, run_id_for

    start, end = reported
    engineer = client_for(people["ml_engineer"])
    window = {"start": start.isoformat(), "end": end.isoformat()}
    with django_capture_on_commit_callbacks(execute=True):
        first = engineer.post("/api/v1/models/credit/runs/", window, format="json").json()
        same = engineer.post("/api/v1/models/credit/runs/", window, format="json").json()
    assert first["revision"] == 0 and first["revises"] is None and same["run_id"] == first["run_id"]
    assert Run.objects.count() == 1  # asking again for the window returns its run
    with django_capture_on_commit_callbacks(execute=True):
        again = engineer.post("/api/v1/models/credit/runs/", {**window, "rerun": True}, format="json")
    assert again.status_code == 202, again.json()
    body = again.json()
    assert body["revision"] == 1 and body["revises"] == first["run_id"] and body["run_id"] != first["run_id"]
    rerun = Run.objects.get(run_id=body["run_id"])
    assert rerun.status == "completed" and rerun.revision == 1 and str(rerun.revises) == first["run_id"]
    started = Event.objects.get(event_type="monitoring.RunStarted", stream_id=body["run_id"])
    assert started.schema == 2 and started.payload["revises"] == first["run_id"]
    assert started.actor_id == people["ml_engineer"].username
    assert Run.objects.get(run_id=first["run_id"]).revision == 0  # the first stays as it was
    # A window whose latest revision is still running is not run again beside it.
    version = policy_load("credit").version
    third = run_id_for("credit", version, start, end, 2)
    span = RunWindow(start=format_time(start), end=format_time(end))
    aggregate_execute(
        lambda: RunAggregate(third),
        lambda run: run.start(model="credit", policy_version=version, window=span, revision=2, revises=first["run_id"]),
        actor=ALICE,
    )
    busy = engineer.post("/api/v1/models/credit/runs/", {**window, "rerun": True}, format="json")
    assert busy.status_code == 409 and third in busy.json()["detail"]
    refused = engineer.post("/api/v1/models/credit/runs/", {**window, "rerun": "maybe"}, format="json")
    assert refused.status_code == 400 and "rerun" in refused.json()
