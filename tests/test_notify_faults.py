"""A notifier endpoint that is down, with the real broker and a real worker: the alert commits
at once, delivery fails and is recorded, and succeeds once the endpoint is back."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config.celery import app as celery_app
from monitoring.alerting.services import alerts_from_run
from monitoring.alerting.tasks import deliver_notifications
from monitoring.models import Alert, Notification, NotificationAttempt
from monitoring.policies.services import policy_set
from monitoring.registry import services as registry
from monitoring.runs.domain import Check
from tests.monitoring.conftest import ALICE, SCHEMA
from tests.workers import launch_worker, send, stop_worker, use_test_broker, wait_for


class Endpoint(BaseHTTPRequestHandler):
    up = False
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not Endpoint.up:
            self.send_response(503)
            self.end_headers()
            return
        Endpoint.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    Endpoint.up, Endpoint.received = False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_a_down_notifier_is_retried_until_it_is_back(committed_log, endpoint, tmp_path, signing_key_file, settings):
    notifiers = {"ops": {"class": "monitoring.alerting.notifiers.WebhookNotifier", "url": endpoint, "secret": "s"}}
    settings.NOTIFIERS = notifiers
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    policy_set(model="credit", policy={"notify": ["ops"]}, actor=ALICE, reason="page ops")
    previous = use_test_broker()
    worker = launch_worker(tmp_path, signing_key_file, NOTIFIERS_JSON=json.dumps(notifiers))
    try:
        check = Check(
            check="feature_drift", feature="income", metric="psi", value=0.4, threshold=0.1, status="critical"
        )
        alerts_from_run(model="credit", run_id="r1", checks=[check], actor=ALICE)
        assert Alert.objects.get().status == "open"  # committed whatever the endpoint does
        send(deliver_notifications)
        assert wait_for(lambda: NotificationAttempt.objects.filter(ok=False).exists()), worker.log.read_text()
        assert Notification.objects.get().status == "pending" and Endpoint.received == []
        Endpoint.up = True
        time.sleep(2.5)  # the first retry is due 2 s after the failure
        send(deliver_notifications)
        assert wait_for(lambda: Notification.objects.get().status == "sent"), worker.log.read_text()
    finally:
        celery_app.conf.update(**previous)
        stop_worker(worker)
    assert [m["event"] for m in Endpoint.received] == ["monitoring.AlertRaised"]
    assert list(NotificationAttempt.objects.order_by("id").values_list("ok", flat=True)) == [False, True]
