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


# ---- the deployment pointer, checked against the log ----------------------------------------

POINTER = ("champion", "challenger", "canary", "canary_share")


class PointerRefused(Exception):
    """The deployment pointer does not come from a signed decision of the log: do not load it."""


def deployment(
    base_url: str,
    model: str,
    *,
    headers: dict[str, str],
    log_keys: list[bytes] | tuple[bytes, ...] = (),
    log_id: str | None = None,
    witness_keys: list[bytes] | tuple[bytes, ...] = (),
    quorum: int | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The model's deployment pointer (champion, challenger, canary, canary_share, seq, …). Given
    the log's public keys (PEM), it is first checked with `pointer_verify` (and, given witnesses'
    public keys, their cosignatures of its checkpoint), and PointerRefused is raised when it
    fails: a serving system then keeps what it serves. Needs `cryptography` then."""
    response = requests.get(f"{base_url.rstrip('/')}/models/{model}/deployment/", headers=headers, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if log_keys:
        pointer_verify(body, model, log_keys, log_id=log_id, witness_keys=witness_keys, quorum=quorum)
    return body


def _witnessed(checkpoint: dict[str, Any], witnesses: dict[str, bytes], quorum: int | None) -> None:
    """At least `quorum` (default: all) of `witnesses` cosigned the checkpoint (evidence format 2)."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from audit.envelope import cosigned_statement

    needed = len(witnesses) if quorum is None else quorum
    if not 1 <= needed <= len(witnesses):
        raise ValueError(f"the quorum must lie between 1 and the {len(witnesses)} distinct witness key(s)")
    vouching = set()
    for cosignature in checkpoint.get("cosignatures") or []:
        if not isinstance(cosignature, dict) or not isinstance(cosignature.get("witness_id"), str):
            continue
        public = witnesses.get(cosignature["witness_id"])
        if public is None:
            continue
        statement = cosigned_statement(checkpoint, str(cosignature.get("cosigned_at")))
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(cosignature["signature"]), statement)
        except (InvalidSignature, ValueError, KeyError):
            continue
        vouching.add(cosignature["witness_id"])
    if len(vouching) < needed:
        raise PointerRefused(
            f"{len(vouching)} of the {needed} witness cosignature(s) required vouch for the checkpoint of tree size "
            f"{checkpoint.get('tree_size')}: the witnesses have not seen this history"
        )


def pointer_verify(
    body: dict[str, Any],
    model: str,
    log_keys: list[bytes] | tuple[bytes, ...],
    *,
    log_id: str | None = None,
    witness_keys: list[bytes] | tuple[bytes, ...] = (),
    quorum: int | None = None,
) -> None:
    """Check that the pointer is the one a DeploymentChanged event of `model` set, that event
    signed by one of the log's keys (PEM) and included in a checkpoint signed by one of them; with
    `witness_keys` (PEM), that `quorum` of those witnesses (by default all) cosigned that checkpoint."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from audit import merkle
    from audit.envelope import checkpoint_body, key_id_of

    def raw(pem: bytes) -> bytes:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("a log key must be an Ed25519 public key in PEM")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def verified(key_id: object, signature: str, data: bytes, what: str) -> None:
        public = keys.get(str(key_id))
        if public is None:
            raise PointerRefused(f"{what} is signed by key {key_id}, not one of the log's keys given")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(signature), data)
        except (InvalidSignature, ValueError):
            raise PointerRefused(f"{what}: the signature does not verify") from None

    keys = {key_id_of(key): key for key in map(raw, log_keys)}
    signed = body.get("signed")
    if signed is None:
        if body.get("seq") == 0 and all(body.get(field) in (None, 0.0) for field in POINTER):
            return  # nothing was ever deployed: there is nothing to load
        raise PointerRefused("the answer carries no signed event")
    try:
        canonical = base64.b64decode(signed["event"]["canonical"])
        envelope = json.loads(canonical)
        verified(envelope["key_id"], signed["event"]["signature"], canonical, "the event")
        payload = envelope["payload"]
        if envelope["type"] != "monitoring.DeploymentChanged" or payload["name"] != model:
            raise PointerRefused(
                f"the signed event is a {envelope['type']} of {payload.get('name')}, not the pointer of {model}"
            )
        if log_id is not None and envelope["log_id"] != log_id:
            raise PointerRefused(f"the event is of log {envelope['log_id']}, not {log_id}")
        if any(body[field] != payload[field] for field in POINTER) or body["seq"] != envelope["seq"]:
            raise PointerRefused("the pointer differs from the signed event's")
        proof, checkpoint = signed["proof"], signed["proof"]["checkpoint"]
        verified(checkpoint["key_id"], checkpoint["signature"], checkpoint_body(checkpoint), "the checkpoint")
        if checkpoint["log_id"] != envelope["log_id"]:
            raise PointerRefused("the checkpoint is of another log")
        path = [bytes.fromhex(step) for step in proof["path"]]
        if not merkle.verify_inclusion(
            envelope["seq"] - 1, checkpoint["tree_size"], merkle.leaf_hash(canonical), path,
            bytes.fromhex(checkpoint["root_hash"]),
        ):  # fmt: skip
            raise PointerRefused("the event's inclusion proof does not lead to the signed checkpoint")
        if witness_keys:
            _witnessed(checkpoint, {key_id_of(key): key for key in map(raw, witness_keys)}, quorum)
    except (KeyError, TypeError, ValueError) as error:
        raise PointerRefused(f"the signed pointer is malformed: {error!r}") from None
