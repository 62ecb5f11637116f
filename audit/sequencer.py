"""The sequencer write path, after Certificate Transparency logs and Trillian: writers submit
appends concurrently, each in its own short transaction (so their commits share WAL flushes), and
one sequencer seals them in batches: seq, prev_hash, signature and projections, in one transaction
under the log's lock.

- **Durable first.** `submit_validated` returns once the submission is committed to
  `audit_pending`; `wait` returns its sealed events, or raises what append would have raised
  (ConcurrencyConflict for a stale expected version), or OutcomeUnknown when the database is out
  of reach until its deadline (never a bare database error: the submission is in the table).
- **Sealed once.** Whoever seals a submission seals it under the event ids its writer submitted:
  its row inserted again collides with the events in the log and is refused, never signed twice.
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
import functools
import hashlib
import hmac
import logging
import os
import socket
import threading
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
    prepared_statements,
    raw_connection,
    seal_submitted,
    single_row,
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
    id: int  # its place in the sequencer's order
    event_ids: list[str]
    events: Sequence[NewEvent]
    payloads: list[dict[str, Any]]
    expected: Mapping[StreamKey, int | None]


_SUBMIT_SQL = """
INSERT INTO audit_pending (batch, entries, expected, mac, submitted_at) VALUES (%s, %s, %s, %s, now()) RETURNING id
"""
# After each batch the sequencer notifies the highest pending id it decided (sealed or refused):
# a wake-up only, since any role may notify (listeners read what is decided from audit_pending).
CHANNEL = "driftledger_sealed"


class Forged(Exception):
    """A pending row whose MAC is not its writer's: written past the application."""


def _mac(batch: str, entries_json: str, expected_json: str) -> str:
    """Whoever may insert into audit_pending must not get events signed: only a process holding
    the application's SECRET_KEY (which the database never sees) can submit."""
    key = _mac_key(settings.SECRET_KEY)
    message = "\n".join((batch, entries_json, expected_json)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=4)
def _mac_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"driftledger audit_pending v1", hashlib.sha256).digest()


def submit_validated(
    events: Sequence[NewEvent], payloads: list[dict[str, Any]], expected: Mapping[StreamKey, int | None]
) -> Submission:
    """Commit validated events (audit.store.validate) to the pending table, in a transaction of
    their own: durable when this returns."""
    if connection.in_atomic_block or not connection.get_autocommit():
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
    if not raw.autocommit or raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise AppendError("a submission to the sequencer commits on its own: its connection is in a transaction")
    # One statement in autocommit is its own transaction: one round trip, where BEGIN, INSERT and
    # COMMIT took three (about 100 µs of this process's CPU and 250 µs of wall time here).
    with psycopg.Cursor(raw) as cursor:
        params = (batch, entries_json, expected_json, _mac(batch, entries_json, expected_json))
        cursor.execute(_SUBMIT_SQL, params, prepare=prepared_statements())
        (submitted_id,) = single_row(cursor.fetchone())
    _decisions.note_submitted(submitted_id)
    return Submission(batch, submitted_id, event_ids, events, payloads, expected)


def _listening() -> bool:
    """LISTEN needs a session of its own: not behind a pooler in transaction mode."""
    return not getattr(settings, "DATABASE_TRANSACTION_POOLING", False)


class _Decisions:
    """One LISTEN connection per process, on a thread of its own, keeps the highest pending id
    known to be decided; every waiting caller of the process sleeps on it. (A LISTEN per caller
    would have the server send each batch's notification to every waiting caller.)

    Any role that may connect may NOTIFY any channel, with any payload. A payload that is not an
    id is ignored, and none counts beyond the ids this process submitted: a forged one can at
    worst have the callers waiting now look once more, then poll (2 to 20 ms) until sealed. (Reading
    what is decided from the database at each notification instead cost every listening process
    a query per sealed batch: a third more CPU an append at 500 appends/s.)"""

    def __init__(self) -> None:
        self.up_to = 0
        self.submitted = 0  # the highest id this process submitted
        self.notified = 0  # the latest notified id (not the highest: the next one replaces a forged one)
        self.changed = threading.Condition()
        self.ready = threading.Event()
        self.pid: int | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listening already, or started now (in this process: a fork has no thread of its
        parent's). False while it cannot listen (reconnecting): callers then poll, without waiting
        here again."""
        if self.pid == os.getpid():
            return self.ready.is_set()
        self.pid, self.ready = os.getpid(), threading.Event()
        params = connection.get_connection_params()
        self.thread = threading.Thread(
            target=self._listen, args=(params, self.ready), name="driftledger-sealed", daemon=True
        )
        self.thread.start()
        return self.ready.wait(timeout=2)

    def stop(self) -> None:
        """Close the listening connection (its thread ends within a second)."""
        thread, self.thread = self.thread, None
        self.pid = None
        if thread is not None:
            thread.join(timeout=5)

    def _listen(self, params: dict[str, Any], ready: threading.Event) -> None:
        me = threading.current_thread()
        try:
            while self.thread is me:
                try:
                    self._serve(params, ready, me)
                except Exception as error:  # noqa: BLE001 - whatever ends a session, listen anew
                    log.warning("listening for sealed appends failed (%s): again in 1 s", error)
                    ready.clear()
                    time.sleep(1)
        finally:
            # Ended for good (stopped, or a BaseException): callers poll rather than sleep on a
            # thread that will never wake them.
            ready.clear()

    def _serve(self, params: dict[str, Any], ready: threading.Event, me: threading.Thread) -> None:
        with psycopg.Connection.connect(**params, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            ready.set()
            while self.thread is me:
                for notice in listener.notifies(timeout=1.0):
                    self._notified(notice.payload)

    def _notified(self, payload: str) -> None:
        """The sequencer says every submission up to this id is decided."""
        try:
            notified = int(payload)
        except ValueError:
            return
        with self.changed:
            self.notified = notified
            self.up_to = max(self.up_to, min(notified, self.submitted))
            self.changed.notify_all()

    def note_submitted(self, submitted_id: int) -> None:
        """This process submitted `submitted_id` (its notification may have come first)."""
        with self.changed:
            self.submitted = max(self.submitted, submitted_id)
            if self.notified >= submitted_id:
                self.up_to = max(self.up_to, submitted_id)

    def wait(self, submitted_id: int, seconds: float) -> bool:
        """True once `submitted_id` is decided, False after `seconds`."""
        with self.changed:
            return self.changed.wait_for(lambda: self.up_to >= submitted_id, timeout=seconds)


_decisions = _Decisions()


def stop_listening() -> None:
    """Close this process's listening connection (before dropping its database, say)."""
    _decisions.stop()


def wait(submission: Submission, timeout: float | None = None) -> list[RecordedEvent]:
    """The sealed events of `submission`, in order; raises ConcurrencyConflict or AppendError as
    append would. Past `timeout` (AUDIT_SEQUENCER_WAIT_SECONDS) the writer seals it itself.

    The submission is durable: a connection lost meanwhile (a server restart, a pooler recycling
    the session) is not an error of the append, so this looks again on a new connection until
    the deadline; raises OutcomeUnknown if it still cannot tell then."""
    deadline = time.monotonic() + (settings.AUDIT_SEQUENCER_WAIT_SECONDS if timeout is None else timeout)
    pause = 0.002  # polling, behind a pooler: a batch takes milliseconds to seal
    told = False  # the listener said its id was decided
    while True:
        if not told and _listening() and _decisions.start():
            # A notification missed (sent before this process listened, or lost with its
            # connection) costs a look every 250 ms, not the deadline.
            told = _decisions.wait(submission.id, max(0.0, min(0.25, deadline - time.monotonic())))
        else:
            # Polling; or told its id was decided while it is not (its row committed after the
            # listener looked): then poll too, rather than spin on a wait that returns at once.
            time.sleep(pause)
            pause = min(pause * 1.5, 0.02)
        outcome = _look(submission)
        if isinstance(outcome, AppendError):
            _forget(submission)
            raise outcome
        if outcome is not None:
            return outcome
        if time.monotonic() >= deadline:
            return _seal_it_myself(submission)


class OutcomeUnknown(Exception):
    """The database could not be reached to learn what became of a durable submission: it is
    sealed, or will be by the sequencer, or was refused. Not an AppendError (which means nothing
    was written): appending it again may record it twice; look for its event ids instead."""

    def __init__(self, submission: Submission) -> None:
        super().__init__(
            f"submission {submission.batch} is durable and its outcome unknown: the database could not be"
            f" reached; look for its event ids ({', '.join(submission.event_ids)}) before appending it again"
        )
        self.batch = submission.batch
        self.event_ids = submission.event_ids


def _look(submission: Submission) -> list[RecordedEvent] | AppendError | None:
    """Its outcome, or None while pending or while the database cannot be reached (the
    connection is then closed: the next look opens a new one)."""
    try:
        return _outcome(submission)
    except UNREACHABLE as error:
        log.warning("waiting for %s: the database is unreachable (%s), looking again", submission.batch, error)
        connection.close()
        return None


# Its events once sealed, or the sequencer's refusal: one round trip per look.
_OUTCOME_SQL = """
SELECT seq, canonical, hash, signature, NULL::text FROM audit_event WHERE event_id = ANY(%s::uuid[])
UNION ALL
SELECT NULL, NULL, NULL, NULL, refused::text FROM audit_pending WHERE batch = %s AND refused IS NOT NULL
"""


def _outcome(submission: Submission) -> list[RecordedEvent] | AppendError | None:
    """Its sealed events, the sequencer's refusal, or None while pending: a read, nothing more."""
    with psycopg.Cursor(raw_connection()) as cursor:
        rows = cursor.execute(
            _OUTCOME_SQL, (submission.event_ids, submission.batch), prepare=prepared_statements()
        ).fetchall()
    sealed = [row for row in rows if row[-1] is None]
    if len(sealed) == len(submission.event_ids):  # in the log, whatever a replay of its row was told since
        return [_recorded(row) for row in sorted(sealed, key=lambda row: row[0])]
    for *_, refused in rows:
        if refused is not None:
            return _refusal(orjson.loads(refused))
    return None


def _recorded(row: tuple) -> RecordedEvent:
    _, canonical, digest, signature, _ = row
    canonical = bytes(canonical)
    return RecordedEvent(orjson.loads(canonical), canonical, bytes(digest).hex(), base64.b64encode(signature).decode())


def _refusal(refused: dict[str, Any]) -> AppendError:
    conflict = refused.get("conflict")
    if conflict is not None:
        return ConcurrencyConflict(tuple(conflict["stream"]), conflict["expected"], conflict["actual"])
    return AppendError(f"the sequencer refused the append: {refused.get('error')}")


_FORGET_SQL = "DELETE FROM audit_pending WHERE batch = %s"


def _forget(submission: Submission) -> None:
    """Its refused row deleted once its writer knows why. Best effort: the refusal stands
    whether or not the row goes (the sequencer never looks at a refused row again)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FORGET_SQL, [submission.batch])
    except UNREACHABLE as error:
        log.warning("refused submission %s left in audit_pending: %s", submission.batch, error)
        connection.close()


def _seal_it_myself(submission: Submission) -> list[RecordedEvent]:
    """Under the lock no sequencer is mid-batch: the submission is sealed already, refused, or
    withdrawn here and sealed by this writer in the same transaction. Withdrawn means withdrawn
    even when sealing it fails: the error raised then means, as append's, that nothing was
    written, and no sequencer seals it later. Raises OutcomeUnknown when the database cannot be
    reached (the transaction may or may not have committed)."""
    log.warning("no sequencer sealed submission %s in time: its writer seals it", submission.batch)
    try:
        outcome = _withdraw_and_seal(submission)
    except UNREACHABLE as error:
        connection.close()
        raise OutcomeUnknown(submission) from error
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _withdraw_and_seal(submission: Submission) -> list[RecordedEvent] | Exception:
    """Its events, or the exception that refused them, returned (not raised) so that the
    withdrawal commits either way."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])
            outcome = _outcome(submission)
            if isinstance(outcome, list):
                return outcome
            cursor.execute(_FORGET_SQL, [submission.batch])  # refused, or withdrawn from the sequencer
        if outcome is not None:
            return outcome
        try:
            with transaction.atomic():  # a savepoint: a failed seal leaves the withdrawal standing
                return append_locked(
                    submission.events, submission.payloads, submission.expected, event_ids=submission.event_ids
                )
        except UNREACHABLE:
            raise
        except Exception as error:  # noqa: BLE001 - raised once the withdrawal is committed
            return error


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
_PENDING_SQL = "SELECT id, batch, entries, expected, mac FROM audit_pending WHERE refused IS NULL ORDER BY id LIMIT %s"
_ANY_PENDING_SQL = "SELECT EXISTS (SELECT 1 FROM audit_pending WHERE refused IS NULL)"
_SETTLE_SQL = """
WITH sealed AS (DELETE FROM audit_pending WHERE batch = ANY(%s::uuid[])),
     refused AS (UPDATE audit_pending p SET refused = r.why::jsonb
                   FROM unnest(%s::uuid[], %s::text[]) AS r(batch, why) WHERE p.batch = r.batch)
SELECT pg_notify(%s, %s)
"""


class Sequencer:
    """The one process that seals submissions, once it holds the lease."""

    def __init__(self, name: str | None = None, *, batch: int | None = None, lease_seconds: float | None = None):
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch or settings.AUDIT_SEQUENCER_BATCH
        self.ttl = dt.timedelta(seconds=lease_seconds or settings.AUDIT_SEQUENCER_LEASE_SECONDS)
        self.epoch: int | None = None
        self._renewed = 0.0
        self._busy = False  # the last call found work: look for more without asking first
        self._isolate = False  # the last batch failed: seal the next one submission by submission

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
        if not self._busy and not self._anything_pending():
            if time.monotonic() - self._renewed > self.ttl.total_seconds() / 3:
                with transaction.atomic(), connection.cursor() as cursor:
                    self._fence(cursor)
            return 0
        isolate, self._isolate = self._isolate, False
        try:
            with transaction.atomic():
                rows = self._lock_fence_and_read()
                if not rows:
                    self._busy = False
                    return 0
                submitted, refused = [], {}
                for _, *row in rows:
                    try:
                        submitted.append(pending_from_row(*row))
                    except Forged:
                        log.error("pending append %s carries no valid MAC: refused, not sealed", row[0])
                        refused[str(row[0])] = {"error": "its MAC is not a writer's: refused"}
                count = 0
                if submitted and isolate:
                    count, more = self._seal_one_by_one(submitted)
                    refused |= more
                elif submitted:
                    sealed = seal_submitted(submitted)
                    count, refused = len(sealed.recorded), refused | sealed.refused
                self._settle(rows[-1][0], [one.batch for one in submitted if one.batch not in refused], refused)
        except (*UNREACHABLE, LeaseLost):
            raise
        except Exception:
            if isolate:
                raise
            # A submission no projection accepts: the next transaction finds it and refuses it alone.
            log.exception("sealing a batch failed: sealing the next one submission by submission")
            self._isolate = True
            return 0
        self._busy = True
        return count

    def _lock_fence_and_read(self) -> list[tuple]:
        """The log's lock, the lease renewed under this holder and epoch, and the oldest pending
        submissions: one round trip."""
        raw = raw_connection()
        with psycopg.Cursor(raw) as lock, psycopg.Cursor(raw) as fence, psycopg.Cursor(raw) as pending:
            with raw.pipeline():
                lock.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,))
                fence.execute(_RENEW_SQL, {"me": self.name, "ttl": self.ttl, "epoch": self.epoch})
                pending.execute(_PENDING_SQL, (self.batch,))
            if fence.rowcount != 1:
                self.epoch = None
                raise LeaseLost(f"{self.name} lost the sequencer lease")
            self._renewed = time.monotonic()
            return pending.fetchall()

    def _settle(self, last_id: int, sealed: list[str], refused: dict[str, dict[str, Any]]) -> None:
        """Sealed submissions deleted, refused ones marked with why, and the writers told (on
        commit) that everything up to `last_id` is decided: one statement."""
        with psycopg.Cursor(raw_connection()) as cursor:
            cursor.execute(
                _SETTLE_SQL,
                (
                    sealed,
                    list(refused),
                    [orjson.dumps(why).decode() for why in refused.values()],
                    CHANNEL,
                    str(last_id),
                ),
            )

    def _seal_one_by_one(self, submitted: list[Submitted]) -> tuple[int, dict[str, dict[str, Any]]]:
        count, refused = 0, {}
        for one in submitted:
            try:
                with transaction.atomic():  # a savepoint each
                    sealed = seal_submitted([one], replays=True)
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
