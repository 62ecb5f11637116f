"""Monitoring runs under faults, on the real Redis broker with real worker processes: a worker
killed with SIGKILL mid-run, the database unreachable for a few seconds mid-run, and a run
requested while the broker is down (503, nothing queued)."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import time

import pytest
from django.db import connection

from audit.envelope import format_time
from audit.models import Event
from audit.store import append
from config.celery import app as celery_app
from monitoring.models import Run
from monitoring.registry import services as registry
from monitoring.runs.tasks import run_monitoring
from tests.monitoring.conftest import ALICE, SCHEMA, client_for, person
from tests.monitoring.runs.conftest import _ingest, _rows
from tests.proxy import Cuttable
from tests.workers import database_url, launch_worker, send, stop_worker, use_test_broker, wait_for

ROWS = 300_000  # enough for the run to take seconds on this machine, the engine already loaded


@pytest.fixture
def window(committed_log):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _ingest("reference", _rows(ROWS, start=now, seed=1, reference=True))
    start = now - dt.timedelta(seconds=ROWS + 60)  # one row a second, all in the past
    _ingest("predictions", _rows(ROWS, start=start, shift=0.5, seed=2))
    previous = use_test_broker()
    yield format_time(start - dt.timedelta(hours=1)), format_time(now)
    celery_app.conf.update(**previous)


def _completed() -> int:
    return Event.objects.filter(event_type="monitoring.RunCompleted").count()


def test_a_run_whose_worker_is_killed_is_redelivered_and_recorded_once(window, tmp_path, signing_key_file):
    fast_redelivery = {
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
        "CELERY_UNACKED_RESTORE_THROTTLE": "1",
    }
    first = launch_worker(tmp_path, signing_key_file, name="first", **fast_redelivery)
    send(run_monitoring, "credit", *window)
    started = wait_for(lambda: Event.objects.filter(event_type="monitoring.RunStarted").exists(), every=0.01)
    assert started, first.log.read_text()
    first.send_signal(signal.SIGKILL)  # mid-run: started, not completed
    first.wait(timeout=10)
    assert _completed() == 0, "the run completed before the kill: ROWS too few for this machine"
    second = launch_worker(tmp_path, signing_key_file, name="second", **fast_redelivery)
    try:
        assert wait_for(lambda: _completed() == 1, seconds=120), second.log.read_text()
        time.sleep(2)  # a second redelivery, if there were one, would have shown by now
    finally:
        stop_worker(second)
    assert _completed() == 1
    assert Event.objects.filter(event_type="monitoring.RunStarted").count() == 1
    assert Run.objects.get().status == "completed"


def test_a_run_survives_the_database_going_away_for_a_few_seconds(window, tmp_path, signing_key_file):
    params = connection.settings_dict
    host, port = params.get("HOST") or "", int(params.get("PORT") or 5432)
    # The embedded server listens on a Unix socket only: the proxy bridges TCP to it.
    proxy = Cuttable(f"{host}/.s.PGSQL.{port}" if host.startswith("/") or not host else (host, port))
    worker = launch_worker(tmp_path, signing_key_file, DATABASE_URL=database_url("127.0.0.1", proxy.port))
    try:
        send(run_monitoring, "credit", *window)
        assert wait_for(lambda: Event.objects.filter(event_type="monitoring.RunStarted").exists()), (
            worker.log.read_text()
        )
        proxy.cut()
        time.sleep(4)
        proxy.open = True
        assert wait_for(lambda: _completed() == 1, seconds=120), worker.log.read_text()
    finally:
        stop_worker(worker)
    log = worker.log.read_text()
    assert "Retry" in log or "retry" in log, log
    assert _completed() == 1 and Run.objects.get().status == "completed"


def test_a_run_over_its_time_limit_ends_as_failed_with_the_reason_and_an_alert(window, tmp_path, signing_key_file):
    from monitoring.alerting.models import Alert

    worker = launch_worker(tmp_path, signing_key_file, name="timed", pool="prefork", RUN_TIME_LIMIT_SECONDS="1")
    try:
        # The sender's limits travel with the message: as a web process configured alike sends them.
        # A quarter of a second: the run of 300,000 rows took 0.9 s on a fast morning, under 1 s.
        send(run_monitoring, "credit", *window, soft_time_limit=0.25, time_limit=31)
        assert wait_for(lambda: Run.objects.filter(status="failed").exists(), seconds=120), worker.log.read_text()
        error = Run.objects.get().error
        assert "over the time limit of 1 s (RUN_TIME_LIMIT_SECONDS)" in error, (error, worker.log.read_text())
        assert Alert.objects.filter(check_name="run_failed", status="open").exists()
    finally:
        stop_worker(worker)


def test_with_the_broker_down_a_run_request_is_a_503_and_queues_nothing(committed_log):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(hours=3)
    engineer = client_for(person("eve", "ml_engineer"))
    with socket.socket() as probe:  # a port nothing listens on: the broker is down
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    _connect_anew(broker_url=f"redis://127.0.0.1:{closed}/0", task_always_eager=False)
    try:
        # Committed as in production: the request queues its run before it answers.
        answer = engineer.post("/api/v1/models/credit/runs/", {"start": start.isoformat(), "end": end.isoformat()})
    finally:
        _connect_anew(**previous)
    assert answer.status_code == 503, answer.content
    assert answer["Retry-After"] == "30" and "task queue is unreachable" in answer.json()["detail"]
    assert not Run.objects.exists() and not Event.objects.filter(event_type="monitoring.RunStarted").exists()


def test_with_the_broker_down_an_evidence_request_is_a_503_and_leaves_no_export_waiting(committed_log):
    from audit.models import EvidenceExport
    from tests.audit.factories import noted_event

    event = noted_event()
    append([event], expected={event.stream: 0})
    auditor = client_for(person("ada", "auditor"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    _connect_anew(broker_url=f"redis://127.0.0.1:{closed}/0", task_always_eager=False)
    try:
        answer = auditor.post("/api/v1/evidence/", {}, format="json")
    finally:
        _connect_anew(**previous)
    assert answer.status_code == 503, answer.content
    export = EvidenceExport.objects.get()
    assert export.status == "failed" and "start the export again" in export.error


def _connect_anew(**conf) -> None:
    """Change the app's broker settings and let go of the pools an earlier test filled, which
    would otherwise still reach the old broker. They are not closed: kombu keeps producer pools
    by broker address, and the restored address finds its own again."""
    celery_app.conf.update(**conf)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_while_the_database_is_away_api_and_pages_answer_503_with_retry_after(committed_log):
    """Every request fails where it first touches the database (a middleware loading the
    session, authentication looking up a key): a 503 that clients retry, not a 500."""
    from django.test import Client

    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    key = registry.api_key_issue(name="credit", label="scoring service", expires_at=None, actor=ALICE)[1]
    browser = Client(raise_request_exception=False)
    browser.force_login(person("eve", "ml_engineer"))
    params = connection.settings_dict
    saved = {"HOST": params.get("HOST"), "PORT": params.get("PORT")}
    host, port = params.get("HOST") or "", int(params.get("PORT") or 5432)
    proxy = Cuttable(f"{host}/.s.PGSQL.{port}" if host.startswith("/") or not host else (host, port))
    connection.close()
    params.update(HOST="127.0.0.1", PORT=str(proxy.port))
    proxy.cut()
    try:
        service = client_for(key=key)
        service.raise_request_exception = False
        report = service.post(
            "/api/v1/models/credit/predictions/", _rows(1, start=dt.datetime.now(dt.UTC)), format="json"
        )
        page = browser.get("/models/")
    finally:
        connection.close()
        params.update(saved)
        proxy.open = True
    assert report.status_code == 503 and report["Retry-After"] == "10", report.content
    assert report.json()["detail"] == "the database is unreachable; nothing was stored, try again"
    assert page.status_code == 503 and b"database is unreachable" in page.content
    assert not Event.objects.filter(event_type="monitoring.BatchIngested").exists()
