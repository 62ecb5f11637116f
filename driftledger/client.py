"""A small client for model services: report predictions, labels and KPIs to Driftledger.

    from driftledger.client import Reporter

    reporter = Reporter("https://driftledger.example/api/v1", model="credit", api_key=KEY)
    reporter.prediction({"id": "p-1", "timestamp": "2026-11-25T10:00:00Z", "income": 52.0, ...})

Reporting never blocks the caller: records go into a bounded in-memory buffer, and a
background thread sends them in batches (JSON records), each with its own Idempotency-Key so
that a retry after a timeout can never store a batch twice. Network errors, 429 and 5xx are
retried with exponential backoff and jitter (honouring Retry-After); a 4xx other than 429 is
a bad batch: it is dropped, counted and kept in `last_rejection`, since sending it again
cannot succeed. When the buffer is full, new records are dropped and counted rather than
slowing the service down. `flush()` waits for what is buffered; `close()` (also run at exit)
flushes and stops the thread.

Needs only `requests`; no Django.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests

log = logging.getLogger("driftledger.client")
KINDS = ("predictions", "labels", "kpis")


@dataclass
class Stats:
    sent_records: int = 0
    sent_batches: int = 0
    retries: int = 0
    dropped_records: int = 0  # the buffer was full
    rejected_records: int = 0  # the server refused their batch (4xx)


@dataclass
class _Batch:
    kind: str
    records: list[dict[str, Any]]
    idempotency_key: str = field(default_factory=lambda: str(uuid.uuid4()))


class Reporter:
    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str,
        batch_size: int = 1000,
        flush_interval: float = 2.0,
        max_buffer: int = 100_000,
        max_attempts: int = 8,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
    ):
        if batch_size < 1 or max_buffer < batch_size:
            raise ValueError("batch_size must be at least 1 and max_buffer at least batch_size")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.batch_size, self.flush_interval, self.max_buffer = batch_size, flush_interval, max_buffer
        self.max_attempts, self.backoff, self.max_backoff, self.timeout = max_attempts, backoff, max_backoff, timeout
        self.stats = Stats()
        self.last_rejection: dict[str, Any] | None = None
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Api-Key {api_key}", "Content-Type": "application/json"})
        self._buffers: dict[str, deque] = {kind: deque() for kind in KINDS}
        self._condition = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="driftledger-reporter", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # The caller's side: never blocks on the network -----------------------------------------

    def prediction(self, record: dict[str, Any]) -> bool:
        return self._add("predictions", record)

    def label(self, record: dict[str, Any]) -> bool:
        return self._add("labels", record)

    def kpi(self, record: dict[str, Any]) -> bool:
        return self._add("kpis", record)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything buffered so far is sent (or given up); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            self._condition.notify_all()
            while self._pending():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._condition.wait(remaining if remaining is not None else 0.5)
        return True

    def close(self, timeout: float = 10.0) -> None:
        if self._closing:
            return
        self.flush(timeout)
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout)
        self._session.close()

    def _add(self, kind: str, record: dict[str, Any]) -> bool:
        with self._condition:
            if self._closing or sum(len(b) for b in self._buffers.values()) >= self.max_buffer:
                self.stats.dropped_records += 1
                return False
            self._buffers[kind].append(record)
            if len(self._buffers[kind]) >= self.batch_size:
                self._condition.notify_all()
        return True

    def _pending(self) -> bool:
        return self._in_flight > 0 or any(self._buffers.values())

    # The background sender --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                if not any(self._buffers.values()):
                    if self._closing:
                        return
                    self._condition.wait(self.flush_interval)
                batch = self._take()
                if batch is None:
                    continue
                self._in_flight += 1
            try:
                self._send(batch)
            finally:
                with self._condition:
                    self._in_flight -= 1
                    self._condition.notify_all()

    def _take(self) -> _Batch | None:
        for kind, buffer in self._buffers.items():
            if buffer:
                records = [buffer.popleft() for _ in range(min(self.batch_size, len(buffer)))]
                return _Batch(kind, records)
        return None

    def _send(self, batch: _Batch) -> None:
        url = f"{self.base_url}/models/{self.model}/{batch.kind}/"
        body = json.dumps(batch.records, default=_encode).encode()
        headers = {"Idempotency-Key": batch.idempotency_key}
        for attempt in range(1, self.max_attempts + 1):
            wait = None
            try:
                response = self._session.post(url, data=body, headers=headers, timeout=self.timeout)
            except requests.RequestException as error:
                log.warning("sending %d %s failed (attempt %d): %s", len(batch.records), batch.kind, attempt, error)
            else:
                if response.status_code < 300:
                    self.stats.sent_records += len(batch.records)
                    self.stats.sent_batches += 1
                    return
                if response.status_code != 429 and response.status_code < 500:
                    self.stats.rejected_records += len(batch.records)
                    self.last_rejection = {"status": response.status_code, "body": _json(response)}
                    log.error("Driftledger refused %d %s: %s", len(batch.records), batch.kind, response.text[:500])
                    return
                wait = _retry_after(response)
            if attempt == self.max_attempts:
                break
            self.stats.retries += 1
            time.sleep(wait if wait is not None else self._delay(attempt))
        self.stats.rejected_records += len(batch.records)
        log.error("gave up on %d %s after %d attempts", len(batch.records), batch.kind, self.max_attempts)

    def _delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))


def _encode(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes sent to Driftledger must be timezone-aware")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _retry_after(response: requests.Response) -> float | None:
    try:
        return min(float(response.headers.get("Retry-After", "")), 300.0)
    except ValueError:
        return None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]
