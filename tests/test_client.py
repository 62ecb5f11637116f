"""The model-side client against the real running server: batches, retries, idempotency,
never blocking the caller, flushing on close."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from driftledger.client import Reporter
from monitoring.ingestion.selectors import window_load
from monitoring.models import Batch
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, SCHEMA


def _record(i: int) -> dict:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1000 - i)
    return {"id": f"p-{i}", "timestamp": moment, "income": 40.0 + i, "debt_ratio": 0.2, "region": "north", "score": 0.3}


@pytest.fixture
def served_model(running_server):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    key = registry.api_key_issue(name="credit", label="svc", expires_at=None, actor=ALICE)[1]
    return f"{running_server}/api/v1", key


def test_records_arrive_in_batches_and_close_flushes_the_rest(served_model):
    url, key = served_model
    reporter = Reporter(url, model="credit", api_key=key, batch_size=100, flush_interval=30)
    for i in range(250):
        assert reporter.prediction(_record(i))
    reporter.close()
    assert reporter.stats.sent_records == 250 and reporter.stats.sent_batches == 3
    assert sorted(Batch.objects.values_list("rows", flat=True)) == [50, 100, 100]
    assert window_load(model="credit").columns["income"].tolist() == [40.0 + i for i in range(250)]


def test_a_bad_batch_is_dropped_counted_and_explained(served_model):
    url, key = served_model
    reporter = Reporter(url, model="credit", api_key=key, batch_size=10)
    bad = _record(1) | {"income": "lots"}
    reporter.prediction(bad)
    assert reporter.flush(timeout=20)
    assert reporter.stats.rejected_records == 1 and reporter.last_rejection["status"] == 400
    assert reporter.last_rejection["body"]["problems"][0]["column"] == "income"
    reporter.close()


def test_a_full_buffer_drops_instead_of_blocking():
    reporter = Reporter(
        "http://127.0.0.1:9", model="m", api_key="k.k", batch_size=5, max_buffer=5, flush_interval=60, max_attempts=1
    )
    started = time.perf_counter()
    accepted = [reporter.prediction({"id": str(i)}) for i in range(1000)]
    assert time.perf_counter() - started < 0.5  # the caller's path does no I/O
    assert accepted.count(False) >= 990 and reporter.stats.dropped_records == accepted.count(False)
    reporter.close(timeout=5)


class _Flaky(BaseHTTPRequestHandler):
    """Fails the first two attempts (a 503, then a dropped connection), then forwards to the real server."""

    attempts: list[str] = []
    upstream = ""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.attempts.append(self.headers["Idempotency-Key"])
        if len(self.attempts) == 1:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            return
        import requests

        answer = requests.post(
            self.upstream + self.path,
            data=body,
            headers={k: self.headers[k] for k in ("Authorization", "Content-Type", "Idempotency-Key")},
            timeout=10,
        )
        if len(self.attempts) == 2:  # stored upstream, but the answer is lost on the way back
            self.connection.close()
            return
        self.send_response(answer.status_code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args) -> None:
        pass


def test_retries_reuse_the_idempotency_key_so_a_lost_answer_stores_nothing_twice(served_model):
    url, key = served_model
    _Flaky.attempts, _Flaky.upstream = [], url.removesuffix("/api/v1")
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        reporter = Reporter(
            f"http://127.0.0.1:{proxy.server_port}/api/v1", model="credit", api_key=key, batch_size=20, backoff=0.01
        )
        for i in range(20):
            reporter.prediction(_record(i))
        assert reporter.flush(timeout=30)
        reporter.close()
    finally:
        proxy.shutdown()
    assert len(_Flaky.attempts) == 3 and len(set(_Flaky.attempts)) == 1
    assert reporter.stats.sent_records == 20 and reporter.stats.retries == 2
    assert Batch.objects.count() == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        Reporter("http://x", model="m", api_key="k", batch_size=0)
