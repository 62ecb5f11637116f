"""The sequencer write path, after Certificate Transparency logs and Trillian: writers submit
appends concurrently, each in its own short transaction (so their commits share WAL flushes), and
one sequencer seals them in batches: seq, prev_hash, signature and projections, in one transaction
under the log's lock.

- **Durable first.** `submit_validated` returns once the submission is committed to
  `audit_pending`; `wait` returns its sealed events, or raises what append would have raised
  (ConcurrencyConflict for a stale expected version).
- **One sequencer.** A lease row names the active one (holder, epoch); every sealing transaction
  renews it under that holder and epoch after taking the log's lock, or writes nothing. A second
  sequencer, or one that lost the lease while paused, seals nothing; it waits as a standby.
- **No gap, no fork.** Sealing is one transaction: a sequencer killed mid-batch leaves its
  submissions pending for the next one. The lock that orders sealing is the one every direct
  append takes (audit.store), so both paths can run against one log.
- **Never stuck.** A writer whose submission is not sealed within AUDIT_SEQUENCER_WAIT_SECONDS
  withdraws it under the lock and seals it itself: a dead sequencer slows appends, never stops them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import django.db
import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction

from audit.store import (
    APPEND_LOCK_KEY,
    Actor,
    AppendError,
    ConcurrencyConflict,
    NewEvent,
    RecordedEvent,
    StreamKey,
    Submitted,
    append_locked,
    raw_connection,
    seal_submitted,
)

log = logging.getLogger("driftledger.sequencer")

# The database away: the sequencer waits and tries again, as a standby until it holds the lease anew.
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, django.db.OperationalError, django.db.InterfaceError)


class LeaseLost(Exception):
    """This sequencer no longer holds the lease: it must not seal."""


@dataclass(frozen=True)
class Submission:
    """A submitted append, as its writer keeps it until it is sealed."""

    batch: str
    event_ids: list[str]
    events: Sequence[NewEvent]
    payloads: list[dict[str, Any]]
    expected: Mapping[StreamKey, int | None]


_SUBMIT_SQL = "INSERT INTO audit_pending (batch, entries, expected, mac, submitted_at) VALUES (%s, %s, %s, %s, now())"


class Forged(Exception):
    """A pending row whose MAC is not its writer's: written past the application."""


def _mac(batch: str, entries_json: str, expected_json: str) -> str:
    """Whoever may insert into audit_pending must not get events signed: only a process holding
    the application's SECRET_KEY (which the database never sees) can submit."""
    key = hmac.new(settings.SECRET_KEY.encode(), b"driftledger audit_pending v1", hashlib.sha256).digest()
    message = "\n".join((batch, entries_json, expected_json)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def submit_validated(
    events: Sequence[NewEvent], payloads: list[dict[str, Any]], expected: Mapping[StreamKey, int | None]
) -> Submission:
    """Commit validated events (audit.store.validate) to the pending table, in a transaction of
    their own: durable when this returns."""
    if connection.in_atomic_block:
        raise AppendError("a submission to the sequencer commits on its own: call it outside a transaction")
    event_ids = [str(uuid.uuid4()) for _ in events]
    entries = [
        {
            "event_id": event_id,
            "stream": [event.stream_type, event.stream_id],
            "type": event.type,
            "schema": event.event.type_schema,
            "payload": payload,
            "actor": event.actor.as_dict(),
            "reason": event.reason,
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
        }
        for event, event_id, payload in zip(events, event_ids, payloads, strict=True)
    ]
    expectations = [[kind, ident, version] for (kind, ident), version in expected.items()]
    batch = str(uuid.uuid4())
    entries_json, expected_json = orjson.dumps(entries).decode(), orjson.dumps(expectations).decode()
    raw = raw_connection()
    with raw.transaction(), psycopg.Cursor(raw) as cursor:
        cursor.execute(_SUBMIT_SQL, (batch, entries_json, expected_json, _mac(batch, entries_json, expected_json)))
    return Submission(batch, event_ids, events, payloads, expected)


# Its events once sealed, or the sequencer's refusal: one round trip per look.
_OUTCOME_SQL = """
SELECT seq, canonical, hash, signature, NULL::text FROM audit_event WHERE event_id = ANY(%s::uuid[])
UNION ALL
SELECT NULL, NULL, NULL, NULL, refused::text FROM audit_pending WHERE batch = %s AND refused IS NOT NULL
"""


def wait(submission: Submission, timeout: float | None = None) -> list[RecordedEvent]:
    """The sealed events of `submission`, in order; raises ConcurrencyConflict or AppendError as
    append would. Past `timeout` (AUDIT_SEQUENCER_WAIT_SECONDS) the writer seals it itself."""
    deadline = time.monotonic() + (settings.AUDIT_SEQUENCER_WAIT_SECONDS if timeout is None else timeout)
    pause = 0.002  # a batch takes milliseconds to seal; many waiters must not flood the database
    while True:
        time.sleep(pause)
        outcome = _outcome(submission)
        if outcome is not None:
            return outcome
        if time.monotonic() >= deadline:
            return _seal_it_myself(submission)
        pause = min(pause * 1.5, 0.02)


def _outcome(submission: Submission) -> list[RecordedEvent] | None:
    with psycopg.Cursor(raw_connection()) as cursor:
        rows = cursor.execute(_OUTCOME_SQL, (submission.event_ids, submission.batch)).fetchall()
    for *_, refused in rows:
        if refused is not None:
            _forget(submission)
            raise _refusal(orjson.loads(refused))
    if len(rows) < len(submission.event_ids):
        return None
    return [_recorded(row) for row in sorted(rows, key=lambda row: row[0])]


def _recorded(row: tuple) -> RecordedEvent:
    _, canonical, digest, signature, _ = row
    canonical = bytes(canonical)
    return RecordedEvent(orjson.loads(canonical), canonical, bytes(digest).hex(), base64.b64encode(signature).decode())


def _refusal(refused: dict[str, Any]) -> AppendError:
    conflict = refused.get("conflict")
    if conflict is not None:
        return ConcurrencyConflict(tuple(conflict["stream"]), conflict["expected"], conflict["actual"])
    return AppendError(f"the sequencer refused the append: {refused.get('error')}")


def _forget(submission: Submission) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_pending WHERE batch = %s", [submission.batch])


def _seal_it_myself(submission: Submission) -> list[RecordedEvent]:
    """Under the lock no sequencer is mid-batch: the submission is either sealed already, or
    withdrawn here and sealed by this writer in the same transaction."""
    log.warning("no sequencer sealed submission %s in time: its writer seals it", submission.batch)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])
            outcome = _outcome(submission)
            if outcome is not None:
                return outcome
            cursor.execute("DELETE FROM audit_pending WHERE batch = %s", [submission.batch])
        return append_locked(submission.events, submission.payloads, submission.expected)


@dataclass(frozen=True)
class _Submitted:
    """An event's type and schema as its writer validated them; projections that need the typed
    event parse it from the sealed envelope (RecordedEvent.event)."""

    type_name: str
    type_schema: int


def pending_from_row(batch: str, entries_json: str, expected_json: str, mac: str) -> Submitted:
    """A pending row as the sealer takes it, once its writer's MAC proves that a process holding
    the application's secret validated it (a row written by anyone else is refused)."""
    if not hmac.compare_digest(mac, _mac(str(batch), entries_json, expected_json)):
        raise Forged(str(batch))
    entries, expected = orjson.loads(entries_json), orjson.loads(expected_json)
    events = [
        NewEvent(
            entry["stream"][0],
            entry["stream"][1],
            _Submitted(entry["type"], entry["schema"]),  # type: ignore[arg-type]
            Actor(**entry["actor"]),
            reason=entry["reason"],
            correlation_id=entry["correlation_id"],
            causation_id=entry["causation_id"],
        )
        for entry in entries
    ]
    return Submitted(
        batch=str(batch),
        events=events,
        payloads=[entry["payload"] for entry in entries],
        event_ids=[entry["event_id"] for entry in entries],
        expected={(kind, ident): version for kind, ident, version in expected},
    )


_ACQUIRE_SQL = """
INSERT INTO audit_sequencer_lease (id, holder, epoch, expires_at) VALUES (1, %(me)s, 1, now() + %(ttl)s)
ON CONFLICT (id) DO UPDATE SET holder = %(me)s, epoch = audit_sequencer_lease.epoch + 1, expires_at = now() + %(ttl)s
 WHERE audit_sequencer_lease.expires_at < now() OR audit_sequencer_lease.holder = %(me)s
RETURNING epoch
"""
_RENEW_SQL = (
    "UPDATE audit_sequencer_lease SET expires_at = now() + %(ttl)s"
    " WHERE id = 1 AND holder = %(me)s AND epoch = %(epoch)s"
)
_PENDING_SQL = "SELECT batch, entries, expected, mac FROM audit_pending WHERE refused IS NULL ORDER BY id LIMIT %s"
_ANY_PENDING_SQL = "SELECT EXISTS (SELECT 1 FROM audit_pending WHERE refused IS NULL)"


class Sequencer:
    """The one process that seals submissions, once it holds the lease."""

    def __init__(self, name: str | None = None, *, batch: int | None = None, lease_seconds: float | None = None):
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch or settings.AUDIT_SEQUENCER_BATCH
        self.ttl = dt.timedelta(seconds=lease_seconds or settings.AUDIT_SEQUENCER_LEASE_SECONDS)
        self.epoch: int | None = None
        self._renewed = 0.0

    def acquire(self) -> bool:
        """Take the lease if it is free or expired (a new epoch); False while another holds it."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_ACQUIRE_SQL, {"me": self.name, "ttl": self.ttl})
            row = cursor.fetchone()
        self.epoch = row[0] if row else None
        self._renewed = time.monotonic()
        return self.epoch is not None

    def seal_once(self) -> int:
        """Seal up to `batch` pending submissions in one transaction; the number of events sealed.
        Raises LeaseLost, writing nothing, when this sequencer no longer holds the lease."""
        if self.epoch is None:
            raise LeaseLost(f"{self.name} holds no lease")
        if not self._anything_pending():
            if time.monotonic() - self._renewed > self.ttl.total_seconds() / 3:
                with transaction.atomic(), connection.cursor() as cursor:
                    self._fence(cursor)
            return 0
        with transaction.atomic():
            cursor = connection.cursor()
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])
            self._fence(cursor)
            cursor.execute(_PENDING_SQL, [self.batch])
            submitted, forged = [], []
            for row in cursor.fetchall():
                try:
                    submitted.append(pending_from_row(*row))
                except Forged:
                    forged.append(str(row[0]))
            for batch in forged:
                log.error("pending append %s carries no valid MAC: refused, not sealed", batch)
                cursor.execute(
                    "UPDATE audit_pending SET refused = %s WHERE batch = %s",
                    [orjson.dumps({"error": "its MAC is not a writer's: refused"}).decode(), batch],
                )
            if not submitted:
                return 0
            try:
                with transaction.atomic():
                    sealed = seal_submitted(submitted)
                refused = sealed.refused
                count = len(sealed.recorded)
            except (*UNREACHABLE, LeaseLost):
                raise
            except Exception:
                log.exception("sealing %d submissions failed: sealing them one by one", len(submitted))
                count, refused = self._seal_one_by_one(submitted)
            sealed_batches = [one.batch for one in submitted if one.batch not in refused]
            cursor.execute("DELETE FROM audit_pending WHERE batch = ANY(%s::uuid[])", [sealed_batches])
            for batch, why in refused.items():
                cursor.execute(
                    "UPDATE audit_pending SET refused = %s WHERE batch = %s", [orjson.dumps(why).decode(), batch]
                )
        return count

    def _seal_one_by_one(self, submitted: list[Submitted]) -> tuple[int, dict[str, dict[str, Any]]]:
        count, refused = 0, {}
        for one in submitted:
            try:
                with transaction.atomic():  # a savepoint each
                    sealed = seal_submitted([one])
            except UNREACHABLE:
                raise
            except Exception as error:  # noqa: BLE001 - refused, with the reason its writer raises
                refused[one.batch] = {"error": f"{type(error).__name__}: {error}"}
                continue
            refused |= sealed.refused
            count += len(sealed.recorded)
        return count, refused

    def _anything_pending(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(_ANY_PENDING_SQL)
            return bool(cursor.fetchone()[0])

    def _fence(self, cursor) -> None:
        cursor.execute(_RENEW_SQL, {"me": self.name, "ttl": self.ttl, "epoch": self.epoch})
        if cursor.rowcount != 1:
            self.epoch = None
            raise LeaseLost(f"{self.name} lost the sequencer lease")
        self._renewed = time.monotonic()

    def run(self, keep_going: Callable[[], bool], idle: float = 0.002) -> None:
        """Seal while `keep_going()`: as a standby until the lease is free, then as the sequencer;
        a database outage or a lost lease sends it back to waiting, never to sealing blind."""
        pause = idle
        while keep_going():
            try:
                if self.epoch is None and not self.acquire():
                    time.sleep(min(1.0, self.ttl.total_seconds() / 5))
                    continue
                sealed = self.seal_once()
            except LeaseLost as lost:
                log.warning("%s: standing by", lost)
                continue
            except UNREACHABLE as error:
                log.warning("the database is unreachable (%s): trying again", error)
                connection.close()
                self.epoch = None
                time.sleep(1)
                continue
            except Exception:  # a bug: writers seal their own appends meanwhile; keep serving
                log.exception("sealing failed: trying again in 1 s")
                connection.close()
                self.epoch = None
                time.sleep(1)
                continue
            pause = idle if sealed else min(pause * 2, 0.05)
            if not sealed:
                time.sleep(pause)
