"""The scheduled full verification of the log (audit.selfcheck): recorded, shown on /metrics, handed
to the failure handlers and through them to the notifiers, and skipped while another one runs.
On the real PostgreSQL, tampered with as the superuser (as in test_tamper.py)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from django.db import connection
from django.test import RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from audit.checkpoints import checkpoint_create
from audit.models import LogVerification
from audit.selfcheck import log_verify_recorded
from audit.store import append
from audit.tasks import VERIFY_TIME_LIMIT, verify_log
from config.celery import app as celery_app
from monitoring.alerting.metrics import metrics_view
from monitoring.alerting.notifiers import SIGNATURE_HEADER, webhook_signature_valid
from tests.audit.factories import noted_event
from tests.owner import as_owner
from tests.workers import database_url, launch_worker, send, stop_worker, use_test_broker, wait_for

EVENTS = 12
SECRET = "whsec-selfcheck"
handled: list[tuple[str, int, bool | None, str]] = []


def record_failure(verification: LogVerification) -> None:
    """A failure handler, named in AUDIT_VERIFY_FAILURE_HANDLERS by the tests."""
    handled.append(("recorded", verification.id, verification.ok, verification.problem))


def broken_handler(verification: LogVerification) -> None:
    raise RuntimeError("the pager is down")


def _append_notes(count: int, batch: int = 500, start: int = 0) -> None:
    """Notes `start` .. `start + count - 1`, each on its own stream."""
    index = start
    while index < start + count:
        events = [noted_event(summary=f"note {i}") for i in range(index, min(index + batch, start + count))]
        append(events, expected={event.stream: 0 for event in events})
        index += len(events)


@pytest.fixture
def log_of_12(committed_log, settings):
    """A committed log of 12 events, note 0 at seq 1 to note 11 at seq 12, and no verification yet
    (committed_log empties the log's tables, not this working table); no failure handler unless
    the test names one."""
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = []
    LogVerification.objects.all().delete()
    handled.clear()
    _append_notes(EVENTS, batch=1)
    yield EVENTS
    LogVerification.objects.all().delete()


_as_superuser = as_owner


def _tamper_with_note(number: int) -> int:
    """Change one byte of note `number`'s signed bytes; returns its seq."""
    seq = number + 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical FROM audit_event WHERE seq = %s", (seq,))
        canonical = bytes(cursor.fetchone()[0])
    changed = canonical.replace(f"note {number}".encode(), f"note {number + 1}".encode(), 1)
    assert changed != canonical
    _as_superuser("UPDATE audit_event SET canonical = %s WHERE seq = %s", (changed, seq))
    return seq


def _metrics(settings) -> dict[str, float]:
    """The log verification's samples as the /metrics view serves them."""
    settings.METRICS_PUBLIC = True
    response = metrics_view(RequestFactory().get("/metrics"))
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name.startswith("driftledger_log_verification_")
    }


def test_a_good_log_is_recorded_as_verified_with_its_size_keys_and_checkpoints(log_of_12, settings):
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = ["tests.audit.test_selfcheck.record_failure"]
    checkpoint_create()  # stored, and published to the test's directory witness: one checkpoint, held once
    before = dt.datetime.now(dt.UTC)
    verification = log_verify_recorded()
    stored = LogVerification.objects.get()
    assert stored.id == verification.id
    assert (stored.ok, stored.events_checked, stored.keys_checked, stored.checkpoints_checked) == (True, 12, 1, 1)
    assert (stored.failed_seq, stored.problem) == (None, "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT encode(hash, 'hex') FROM audit_event WHERE seq = %s", (EVENTS,))
        assert stored.head_hash == cursor.fetchone()[0]
    assert before <= stored.started_at <= stored.finished_at <= dt.datetime.now(dt.UTC)
    assert handled == []


def test_a_tampered_log_is_recorded_as_failed_and_a_raising_handler_does_not_stop_the_next(log_of_12, settings, caplog):
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = [
        "tests.audit.test_selfcheck.broken_handler",
        "tests.audit.test_selfcheck.record_failure",
    ]
    seq = _tamper_with_note(5)
    verification = log_verify_recorded()
    stored = LogVerification.objects.get()
    expected = f"seq {seq}: stored hash does not match SHA-256 of the canonical bytes"
    assert (stored.ok, stored.failed_seq, stored.problem, stored.events_checked) == (False, seq, expected, 12)
    assert (stored.checkpoints_checked, stored.head_hash) == (0, "")
    assert stored.finished_at is not None
    assert handled == [("recorded", verification.id, False, expected)]
    assert "failure handler tests.audit.test_selfcheck.broken_handler raised" in caplog.text
    assert "the pager is down" in caplog.text


def test_a_truncated_tail_fails_against_the_stored_and_witnessed_checkpoint(log_of_12, settings):
    """A chain that is intact but shorter than what was checkpointed: audit_verify without
    --witness would pass it; the scheduled verification holds the checkpoints against it."""
    checkpoint_create()
    _as_superuser("DELETE FROM audit_event WHERE seq > %s", (EVENTS - 2,))
    verification = log_verify_recorded()
    assert verification.ok is False
    assert "covers 12 events but the log holds 10: the tail was truncated" in verification.problem


def test_an_error_is_recorded_as_a_failure_handed_to_the_handlers_and_raised(log_of_12, settings, tmp_path):
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = ["tests.audit.test_selfcheck.record_failure"]
    (tmp_path / "witness").mkdir()
    (tmp_path / "witness" / "00000000000000000012.json").write_text("{not json")
    with pytest.raises(ValueError, match="unexpected character"):
        log_verify_recorded()
    stored = LogVerification.objects.get()
    assert stored.ok is False and stored.finished_at is not None and stored.failed_seq is None
    assert stored.problem.startswith("WitnessUnreadable: witnessed checkpoint ")
    assert "00000000000000000012.json cannot be read: unexpected character" in stored.problem
    assert handled == [("recorded", stored.id, False, stored.problem)]


def test_metrics_show_the_latest_finished_verification(log_of_12, settings):
    assert _metrics(settings) == {}  # never verified: no samples, so nothing alerts on a fresh install
    log_verify_recorded()
    good = _metrics(settings)
    assert good["driftledger_log_verification_ok"] == 1
    assert good["driftledger_log_verification_events"] == 12
    assert 0 <= time.time() - good["driftledger_log_verification_last_timestamp_seconds"] < 60
    assert 0 <= good["driftledger_log_verification_duration_seconds"] < 60
    _tamper_with_note(3)
    log_verify_recorded()
    LogVerification.objects.create(started_at=dt.datetime.now(dt.UTC))  # running: not an outcome yet
    bad = _metrics(settings)
    assert bad["driftledger_log_verification_ok"] == 0
    assert (
        bad["driftledger_log_verification_last_timestamp_seconds"]
        >= (good["driftledger_log_verification_last_timestamp_seconds"])
    )


def test_the_task_skips_while_another_verification_runs(log_of_12):
    """A verification held up (its first read waits on a lock the test holds on audit_log) is
    running when the task arrives: the task skips; the held one then finishes."""
    outcome: list[LogVerification] = []

    def verify_in_another_thread() -> None:
        try:
            outcome.append(log_verify_recorded())
        finally:
            connection.close()

    with psycopg.connect(database_url()) as blocker:
        blocker.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
        held = threading.Thread(target=verify_in_another_thread)
        held.start()
        assert wait_for(lambda: LogVerification.objects.filter(finished_at=None).exists(), seconds=10)
        assert verify_log.delay().get() is None
        assert LogVerification.objects.count() == 1
    held.join(timeout=30)
    assert [v.ok for v in outcome] == [True]
    assert LogVerification.objects.get().ok is True


def test_a_verification_older_than_the_time_limit_no_longer_holds_the_task_back(log_of_12):
    """Killed with its worker at the hard time limit, it stays unfinished and stops counting."""
    killed_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=VERIFY_TIME_LIMIT + 1)
    killed = LogVerification.objects.create(started_at=killed_at)
    verification_id = verify_log.delay().get()
    assert verification_id is not None
    assert LogVerification.objects.get(id=verification_id).ok is True
    assert LogVerification.objects.get(id=killed.id).finished_at is None  # left as the worker left it


def test_a_prefork_worker_verifies_a_log_longer_than_one_chunk(log_of_12, tmp_path, signing_key_file):
    """A prefork child is a daemonic process, which may start no processes of its own: there the
    verification runs in the child itself rather than over a pool (the log spans two chunks)."""
    _append_notes(4_100 - EVENTS)
    previous = use_test_broker()
    worker = launch_worker(tmp_path, signing_key_file, pool="prefork")
    try:
        send(verify_log)
        assert wait_for(lambda: LogVerification.objects.exclude(finished_at=None).exists()), worker.log.read_text()
    finally:
        celery_app.conf.update(**previous)
        stop_worker(worker)
    stored = LogVerification.objects.get()
    assert (stored.ok, stored.events_checked, stored.problem) == (True, 4_100, "")


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    settings.NOTIFIERS = {
        "down": {"class": "monitoring.alerting.notifiers.WebhookNotifier", "url": down, "secret": "s"},
        "ops": {"class": "monitoring.alerting.notifiers.WebhookNotifier", "url": f"{url}/hook", "secret": SECRET},
        "pager": {"class": "monitoring.alerting.notifiers.PagerDutyNotifier", "url": f"{url}/pd", "routing_key": "rk"},
        "slack": {"class": "monitoring.alerting.notifiers.SlackNotifier", "url": f"{url}/slack"},
    }
    yield url
    server.shutdown()
    server.server_close()


def test_the_monitoring_handler_sends_a_failed_verification_to_every_notifier(log_of_12, settings, receiver):
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = ["monitoring.alerting.selfcheck.notify_log_verification_failed"]
    seq = _tamper_with_note(7)
    verification = log_verify_recorded()
    problem = f"seq {seq}: stored hash does not match SHA-256 of the canonical bytes"
    assert verification.problem == problem
    by_path = {path: (headers, body) for path, headers, body in Receiver.received}
    assert sorted(by_path) == ["/hook", "/pd", "/slack"]  # "down" refused the connection; the rest were sent

    headers, hook = by_path["/hook"]
    raw = json.dumps(hook, sort_keys=True, separators=(",", ":")).encode()
    assert webhook_signature_valid(SECRET, raw, headers[SIGNATURE_HEADER], now=time.time())
    assert hook["event"] == "log_verification_failed" and hook["severity"] == "critical"
    assert (hook["verification_id"], hook["failed_seq"], hook["problem"]) == (verification.id, seq, problem)
    assert hook["events_checked"] == 12

    _, pager = by_path["/pd"]
    assert (pager["event_action"], pager["dedup_key"]) == ("trigger", "driftledger-audit-log-verification")
    assert pager["payload"]["severity"] == "critical" and problem in pager["payload"]["summary"]
    _, slack = by_path["/slack"]
    assert slack["text"] == (
        f"[CRITICAL] audit-log: the full verification of the audit log failed: {problem} (log_verification_failed)"
    )
