"""Runs over hostile or missing data: one extreme value cannot make a huge drift effect; an
empty, small or all-null window is a finding with a level, never "every check passed"; a run
that fails, runs out of budget or whose worker vanished ends as RunFailed with an alert that
the next completed run resolves; a model that stops reporting raises its heartbeat alert."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from audit import events
from audit.aggregates import aggregate_execute
from audit.envelope import format_time
from audit.models import Event
from monitoring.alerting.heartbeat import heartbeats_check
from monitoring.alerting.models import Alert, Notification
from monitoring.alerting.outbox import deliver_pending
from monitoring.ingestion.selectors import window_load
from monitoring.runs.domain import RunAggregate, RunWindow
from monitoring.runs.models import Run
from monitoring.runs.services import SCHEDULER, run_execute, runs_fail_stalled
from tests.monitoring.alerting.test_alerts import Receiver, receiver  # noqa: F401 - the fixture
from tests.monitoring.conftest import client_for, policy_in_force
from tests.monitoring.hostile.conftest import stored
from tests.monitoring.runs.conftest import NOW, _ingest, _rows
from tests.workers import database_url

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def _checks(run_id: str, metric: str | None = None) -> list[dict]:
    return [c for c in Run.objects.get(run_id=run_id).checks if metric is None or c.get("metric") == metric]


def _open(check: str) -> list[Alert]:
    return list(Alert.objects.filter(check_name=check).exclude(status="resolved"))


def test_one_extreme_value_among_2000_cannot_make_a_huge_drift_effect(credit_model):
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    rows = _rows(2000, start=NOW - 2 * HOUR, seed=2)
    rows[700]["income"] = 1e308
    _ingest("predictions", rows)
    outcome = run_execute(model="credit", start=NOW - 3 * HOUR, end=NOW)

    (income,) = [c for c in _checks(outcome.run_id) if c["check"] == "feature_drift" and c["feature"] == "income"]
    reference = window_load(model="credit", kind="reference").columns["income"]
    current = window_load(model="credit", start=NOW - 3 * HOUR, end=NOW).columns["income"]
    low, high = reference.min(), reference.max()
    span = high - low
    clipped = np.clip(current, low - span, high + span)  # the bound, computed here independently
    expected = stats.wasserstein_distance(reference, clipped) / reference.std()
    assert income["value"] == pytest.approx(expected, rel=1e-9)
    assert income["value"] < 0.1  # the raw figure is about 1e304
    assert stats.wasserstein_distance(reference, current) / reference.std() > 1e300

    (extreme,) = _checks(outcome.run_id, "extreme_value")
    assert (extreme["feature"], extreme["count"], extreme["status"]) == ("income", 1, "warning")
    assert extreme["examples"] == ["1e+308"]


def test_a_window_with_no_rows_is_critical_missing_data_with_an_alert(credit_model):
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    _ingest("predictions", _rows(500, start=NOW - 2 * HOUR, seed=2))
    outcome = run_execute(model="credit", start=NOW - 30 * HOUR, end=NOW - 20 * HOUR)  # nothing was reported then
    run = Run.objects.get(run_id=outcome.run_id)
    assert (run.status, run.level) == ("completed", "critical")
    (rows,) = _checks(outcome.run_id, "rows")
    assert (rows["count"], rows["status"]) == (0, "critical")
    assert run.diagnosis["cause"] == "data_quality"
    assert run.diagnosis["evidence"] == ["data_quality: the window holds no rows [critical]"]
    (alert,) = _open("data_quality")
    assert alert.severity == "critical" and alert.dedupe_key == "credit|data_quality|rows|"
    completed = Event.objects.get(event_type="monitoring.RunCompleted")
    envelope = {"type": completed.event_type, "schema": completed.schema, "payload": completed.payload}
    told = events.sentence({**envelope, "actor": {"name": "worker"}})
    assert "level critical, flagged: rows" in told and "every check passed" not in told


def test_a_window_much_smaller_than_usual_is_a_finding(credit_model):
    policy_in_force("credit", {"window": {"hours": 1}}, reason="hourly windows")
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    end = NOW.replace(minute=0, second=0)
    for back in range(1, 8):  # seven usual hours of 600 rows
        _ingest("predictions", _rows(600, start=end - (back + 1) * HOUR, seed=back, prefix=f"h{back}"))
    _ingest("predictions", _rows(30, start=end - HOUR, seed=9, prefix="now"))
    outcome = run_execute(model="credit", start=end - HOUR, end=end)
    (rows,) = _checks(outcome.run_id, "rows")
    assert rows["count"] == 30 and rows["reference"] == 600
    assert rows["value"] == pytest.approx(30 / 600)
    assert rows["status"] == "critical"  # under critical_share (0.1) of the usual
    assert Run.objects.get(run_id=outcome.run_id).diagnosis["evidence"][0] == (
        "data_quality: the window holds 30 rows, 5% of the usual 600 [critical]"
    )


def test_an_entirely_null_feature_is_a_critical_finding_and_the_run_completes(credit_model):
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    rows = _rows(800, start=NOW - 2 * HOUR, seed=2)
    for row in rows:
        row["debt_ratio"] = None
    _ingest("predictions", rows)
    outcome = run_execute(model="credit", start=NOW - 3 * HOUR, end=NOW)
    run = Run.objects.get(run_id=outcome.run_id)
    assert run.status == "completed"
    (missing,) = _checks(outcome.run_id, "all_missing")
    assert (missing["feature"], missing["count"], missing["status"]) == ("debt_ratio", 800, "critical")
    assert not [c for c in run.checks if c["check"] == "feature_drift" and c["feature"] == "debt_ratio"]
    assert [c for c in run.checks if c["check"] == "feature_drift" and c["feature"] == "income"]  # the rest is measured
    assert run.diagnosis["cause"] == "data_quality"
    assert any(a.feature == "debt_ratio" for a in _open("data_quality"))


def test_a_run_window_in_year_9999_is_refused_before_anything_is_recorded(credit_model, people):
    before = stored()
    for body, field in (
        ({"start": "9998-12-31T00:00:00Z", "end": "9999-12-31T00:00:00Z"}, "start"),
        ({"start": "2026-11-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}, "end"),
        ({"start": "1970-01-01T00:00:00Z", "end": "1970-01-02T00:00:00Z"}, "start"),
    ):
        answer = client_for(people["ml_engineer"]).post("/api/v1/models/credit/runs/", body, format="json")
        assert answer.status_code == 400, answer.content
        assert "outside the plausible time range" in str(answer.json()[field])
    answer = client_for(people["ml_engineer"]).post(
        "/api/v1/models/credit/runs/", {"start": "2024-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, format="json"
    )
    assert answer.status_code == 400 and "at most 366 days" in str(answer.json())
    assert stored() == before


def test_a_failed_run_raises_an_alert_notified_and_resolved_by_the_next_completed_run(credit_model, receiver):  # noqa: F811
    policy_in_force("credit", {"notify": ["ops"]}, reason="page the team")
    _ingest("predictions", _rows(500, start=NOW - 2 * HOUR, seed=2))
    failed = run_execute(model="credit", start=NOW - 3 * HOUR, end=NOW)  # no reference data yet
    assert failed.status == "failed"
    run = Run.objects.get(run_id=failed.run_id)
    assert "has no reference data" in run.error
    (alert,) = _open("run_failed")
    assert alert.severity == "critical" and "has no reference data" in alert.summary
    assert Notification.objects.filter(status="pending").exists()
    deliver_pending(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    hooks = [body for _, body in Receiver.received if body.get("event") == "monitoring.AlertRaised"]
    assert hooks and "run_failed" in str(hooks[0])

    run_execute(model="credit", start=NOW - 3 * HOUR, end=NOW - HOUR)  # fails again: the same alert
    assert len(_open("run_failed")) == 1
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    completed = run_execute(model="credit", start=NOW - 2 * HOUR, end=NOW)
    assert completed.status == "completed"
    assert not _open("run_failed")
    assert Alert.objects.get(alert_id=alert.alert_id).resolution == "auto"


def test_a_run_over_its_memory_budget_fails_before_loading_with_the_figures(credit_model, settings):
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    _ingest("predictions", _rows(3000, start=NOW - 2 * HOUR, seed=2))
    settings.RUN_MEMORY_BUDGET_MB = 1
    outcome = run_execute(model="credit", start=NOW - 3 * HOUR, end=NOW)
    error = Run.objects.get(run_id=outcome.run_id).error
    assert outcome.status == "failed"
    assert "the run would read 3,000 rows of" in error and "2,000 reference rows of" in error, error
    assert "over the run memory budget of 1 MB (RUN_MEMORY_BUDGET_MB)" in error
    assert _open("run_failed")


def test_the_sweeper_fails_a_run_whose_worker_vanished(credit_model, settings):
    run_id = "0b1f4a8e-2c43-4d0b-9f5e-3a1c2b4d5e6f"
    window = RunWindow(start=format_time(NOW - 2 * HOUR), end=format_time(NOW))
    aggregate_execute(
        lambda: RunAggregate(run_id),
        lambda run: run.start(model="credit", policy_version=1, window=window),
        actor=SCHEDULER,
    )
    assert runs_fail_stalled() == []  # just started: not stalled
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.RUN_STALLED_AFTER_SECONDS + 1)
    assert runs_fail_stalled(now=later) == [run_id]
    run = Run.objects.get(run_id=run_id)
    assert run.status == "failed" and "its worker stopped" in run.error
    assert _open("run_failed")
    assert runs_fail_stalled(now=later) == []  # once


def test_a_model_silent_past_its_heartbeat_raises_an_alert_resolved_when_it_reports(credit_model):
    assert heartbeats_check() == []  # not watched by default
    policy_in_force("credit", {"heartbeat": {"expected_every_minutes": 30}}, reason="the service reports every minute")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
    assert len(heartbeats_check(now=soon)) == 1  # never reported since it was registered
    (alert,) = _open("heartbeat")
    assert alert.severity == "critical" and "since it was registered" in alert.summary
    assert heartbeats_check(now=soon) == []  # raised once
    _ingest("predictions", _rows(50, start=NOW - HOUR, seed=2))
    (resolved,) = heartbeats_check()
    assert resolved.type == "monitoring.AlertResolved" and not _open("heartbeat")
    assert len(heartbeats_check(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=45))) == 1
    assert "expected every 30 minutes" in _open("heartbeat")[0].summary


def test_a_worker_process_past_its_memory_limit_gets_a_memory_error_not_the_kernel_killer():
    """What every worker process does as it starts (config/celery.py), in a process of its own."""
    code = """
import django, numpy as np
django.setup()
from monitoring.runs.budget import memory_limit_apply
memory_limit_apply(600)
small = np.ones(10 * 2**20 // 8)  # 10 MB: fine
try:
    np.ones(2 * 2**30 // 8)  # 2 GB: over the limit
except MemoryError:
    print("MemoryError")
"""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url()}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MemoryError"


def test_a_run_window_at_the_start_of_the_calendar_is_a_400(credit_model, people):
    answer = client_for(people["ml_engineer"]).post(
        "/api/v1/models/credit/runs/", {"end": "0001-01-01T00:00:00Z"}, format="json"
    )
    assert answer.status_code == 400 and "end" in answer.json()
