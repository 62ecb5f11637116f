"""Appending to the log: the only code that writes events.

Appends are serialized by a transaction-scoped advisory lock (an insert-only role may take it,
unlike LOCK TABLE), so the global `seq` is gapless and `prev_hash` never forks. Stream versions
are checked under the same lock: a stale expected version is a ConcurrencyConflict, and nothing
is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction

from audit import events, keyring, partitions
from audit.anchor import anchor_pin
from audit.canonical import CanonicalizationError, canonicalize
from audit.envelope import ACTOR_KINDS, GENESIS_PREV_HASH, envelope, format_time, leaf_hash, parse_time
from audit.events import Event, KeyRotated
from audit.keys import SigningKey

# pg_advisory_xact_lock key that orders every append ("drift" in ASCII).
APPEND_LOCK_KEY = 0x6472696674

StreamKey = tuple[str, str]


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "name": self.name}


SYSTEM_ACTOR = Actor("system", "driftledger", "Driftledger")


@dataclass(frozen=True)
class NewEvent:
    """An event to append: a typed event (audit.events) on a stream, by an actor."""

    stream_type: str
    stream_id: str
    event: Event
    actor: Actor
    reason: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    @property
    def stream(self) -> StreamKey:
        return (self.stream_type, self.stream_id)

    @property
    def type(self) -> str:
        return self.event.type_name


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: its envelope, canonical bytes, hash and signature."""

    envelope: dict[str, Any]
    canonical: bytes
    hash: str
    signature: str

    @property
    def seq(self) -> int:
        return self.envelope["seq"]

    @property
    def type(self) -> str:
        return self.envelope["type"]

    @property
    def event_id(self) -> str:
        return self.envelope["event_id"]

    @property
    def stream(self) -> dict[str, Any]:
        return self.envelope["stream"]

    @property
    def payload(self) -> dict[str, Any]:
        return self.envelope["payload"]

    @property
    def actor(self) -> dict[str, str]:
        return self.envelope["actor"]

    @property
    def occurred_at(self) -> dt.datetime:
        return parse_time(self.envelope["occurred_at"])

    @cached_property
    def event(self) -> Event:
        """The typed event, validated against its own schema version."""
        return events.parse(self.type, self.envelope["schema"], self.payload)


class AppendError(Exception):
    """Base of every refusal by append; nothing was written."""


class InvalidEvent(AppendError):
    def __init__(self, index: int, problem: str) -> None:
        super().__init__(f"event {index}: {problem}")
        self.index = index
        self.problem = problem


class ConcurrencyConflict(AppendError):
    def __init__(self, stream: StreamKey, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream[0]}:{stream[1]} is at version {actual}, the command expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class SigningKeyMismatch(AppendError):
    pass


@dataclass
class _Head:
    log_id: str | None
    now: dt.datetime
    seq: int
    hash: str
    current_key_id: str | None
    versions: dict[StreamKey, int] = field(default_factory=dict)
    room: int = 0  # the first seq no partition holds yet


def prepared_statements() -> bool:
    """Server-side prepared statements (one parse per connection), except behind a pooler in
    transaction mode: a statement prepared on one server connection is unknown on the next."""
    return not getattr(settings, "DATABASE_TRANSACTION_POOLING", False)


def append(
    events: Sequence[NewEvent],
    *,
    expected: Mapping[StreamKey, int | None],
) -> list[RecordedEvent]:
    """Append `events` atomically, in order, and run their projections in the same transaction.

    `expected` gives, for every stream the events touch, the version the caller last saw
    (0 for a new stream) or None to append whatever the version. Raises AppendError and writes
    nothing when an event is invalid, a version is stale or the signing key is not the log's.

    With AUDIT_SEQUENCER on and no transaction open, the events are submitted to the sequencer
    (audit.sequencer) and sealed by it; this returns once they are, with the same guarantees.
    Inside a transaction (the caller's `atomic` block, or its own with autocommit off), and for a
    key rotation, they are sealed here under the same lock.
    """
    payloads = _validate(events, expected)
    outermost = not connection.in_atomic_block and connection.get_autocommit()
    if outermost and settings.AUDIT_SEQUENCER and not any(isinstance(e.event, KeyRotated) for e in events):
        from audit import sequencer

        sealed = sequencer.wait(sequencer.submit_validated(events, payloads, expected))
        _checkpoint_when_due(sealed)
        return sealed
    signer = keyring.current_signing_key()
    with transaction.atomic():
        recorded = _append_on_known_tip(events, payloads, expected, signer, commit=outermost)
        if recorded is None:
            recorded = _append_locked(events, payloads, expected, signer, commit=outermost)
    _remember_tip(recorded)
    _checkpoint_when_due(recorded)
    return recorded


def _checkpoint_when_due(recorded: list[RecordedEvent]) -> None:
    """The append that crosses a multiple of AUDIT_CHECKPOINT_EVERY_EVENTS queues a checkpoint
    (once its transaction commits): exactly one append crosses each, whoever wrote it."""
    every = settings.AUDIT_CHECKPOINT_EVERY_EVENTS
    first, last = recorded[0].envelope["seq"], recorded[-1].envelope["seq"]
    if every and last // every > (first - 1) // every:
        transaction.on_commit(_checkpoint_queue, robust=True)  # a broker away: beat checkpoints soon after


def _checkpoint_queue() -> None:
    from audit.tasks import checkpoint_if_grown

    checkpoint_if_grown.delay()


@dataclass(frozen=True)
class _Tip:
    """The log's last event as this process last wrote it."""

    log_id: str
    seq: int
    hash: str
    key_id: str


_tips: dict[tuple[str, str], _Tip] = {}
_TIP_BATCH_LIMIT = 10  # larger batches are cheaper to insert plainly than through a guarded VALUES list
_tip_misses: dict[tuple[str, str], int] = {}
_rooms: dict[tuple[str, str], int] = {}  # the first seq no partition holds, as this process last saw


def _database_key() -> tuple[str, str]:
    params = connection.settings_dict
    return (str(params.get("HOST") or ""), str(params["NAME"]))


def _remember_tip(recorded: list[RecordedEvent]) -> None:
    last = recorded[-1].envelope
    if last["type"] == KeyRotated.type_name:
        _tips.pop(_database_key(), None)
        return
    _tips[_database_key()] = _Tip(last["log_id"], last["seq"], recorded[-1].hash, last["key_id"])


def _append_on_known_tip(
    events: Sequence[NewEvent],
    payloads: list[dict[str, Any]],
    expected: Mapping[StreamKey, int | None],
    signer: SigningKey,
    *,
    commit: bool,
) -> list[RecordedEvent] | None:
    """The common case in one round trip: sign on top of the event this process wrote last and
    insert under the lock only if that event is still the log's head and every stream is at its
    expected version; with `commit`, the COMMIT rides in the same round trip. Returns None when
    the guess was wrong (nothing was written) and the caller must read the head."""
    key = _database_key()
    tip = _tips.get(key)
    misses = _tip_misses.get(key, 0)
    if tip is None or tip.key_id != signer.key_id or None in expected.values() or len(events) > _TIP_BATCH_LIMIT:
        return None
    if tip.seq + len(events) >= _rooms.get(key, 0):  # no partition for it yet: the locked path makes room
        return None
    if misses:  # busy log, other writers move the head: try again only now and then
        _tip_misses[key] = (misses + 1) % 16
        return None
    from audit import projections

    head = _Head(
        log_id=tip.log_id,
        now=dt.datetime.now(dt.UTC),
        seq=tip.seq,
        hash=tip.hash,
        current_key_id=tip.key_id,
        versions={stream: version for stream, version in expected.items() if version},
    )
    recorded = _seal(events, payloads, head, signer)
    commit_now = commit and not projections.handles(recorded)
    streams = list(expected.items())
    raw = _raw_connection()
    with psycopg.Cursor(raw) as lock_cursor, psycopg.Cursor(raw) as cursor:
        with raw.pipeline():
            lock_cursor.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,), prepare=prepared_statements())
            params = [value for event in recorded for value in _row(event, head.now)]
            params.append(bytes.fromhex(tip.hash))
            for (stream_type, stream_id), version in streams:
                params += [stream_type, stream_id, version]
            cursor.execute(_guarded_insert_sql(len(recorded), len(streams)), params, prepare=prepared_statements())
            if commit_now:
                raw.commit()
        inserted = cursor.rowcount
    if inserted != len(recorded):
        _tip_misses[key] = 1
        return None
    if not commit_now:
        projections.apply(recorded)
    return recorded


def _append_locked(
    events: Sequence[NewEvent],
    payloads: list[dict[str, Any]],
    expected: Mapping[StreamKey, int | None],
    signer: SigningKey,
    *,
    after_insert: Callable[[psycopg.Cursor, list[RecordedEvent]], None] | None = None,
    commit: bool = False,
    event_ids: Sequence[str] | None = None,
) -> list[RecordedEvent]:
    """The append itself, inside a transaction. With `commit` (append owns the transaction) and
    no projection to run, the INSERT and the COMMIT travel in one round trip; Django's own
    commit at the end of the atomic block then finds nothing left to do. `event_ids`: those the
    events were submitted under (fresh ones otherwise)."""
    from audit import projections

    raw = _raw_connection()
    head = _lock_and_read_head(raw, list(expected))
    signer = _check_signer(raw, head, signer)
    for stream, version in expected.items():
        actual = head.versions.get(stream, 0)
        if version is not None and version != actual:
            raise ConcurrencyConflict(stream, version, actual)
    recorded = _seal(events, payloads, head, signer, event_ids=event_ids)
    commit_with_insert = commit and after_insert is None and not projections.handles(recorded)
    _rooms[_database_key()] = partitions.room_make(raw, head.seq, head.room, len(recorded))
    with psycopg.Cursor(raw) as cursor, raw.pipeline():
        rows = [_row(event, head.now) for event in recorded]
        if len(rows) == 1:
            cursor.execute(_INSERT_SQL, rows[0], prepare=prepared_statements())
        else:
            cursor.executemany(_INSERT_SQL, rows)
        if after_insert is not None:
            after_insert(cursor, recorded)
        if commit_with_insert:
            raw.commit()
    if not commit_with_insert:
        projections.apply(recorded)
    return recorded


def append_locked(
    events: Sequence[NewEvent],
    payloads: list[dict[str, Any]],
    expected: Mapping[StreamKey, int | None],
    *,
    event_ids: Sequence[str],
) -> list[RecordedEvent]:
    """Seal validated events here, under the lock, inside the caller's transaction: a writer
    whose submission the sequencer did not seal in time seals it itself, under the event ids it
    submitted. (Under fresh ones, its pending row, MAC and all, would stay valid: inserted again,
    it would be sealed again. Under its own, a replay collides with the events in the log.)"""
    return _append_locked(events, payloads, expected, keyring.current_signing_key(), event_ids=event_ids)


@dataclass(frozen=True)
class Submitted:
    """A validated append waiting for the sequencer, with the event ids it is sealed under."""

    batch: str
    events: Sequence[NewEvent]
    payloads: list[dict[str, Any]]
    event_ids: list[str]
    expected: Mapping[StreamKey, int | None]


@dataclass
class Sealed:
    recorded: list[RecordedEvent]
    refused: dict[str, dict[str, Any]]  # batch -> why (a version conflict)


def seal_submitted(submitted: Sequence[Submitted], *, replays: bool = False) -> Sealed:
    """Seal `submitted` in order on top of the head, inside the caller's transaction, which holds
    the append lock: one head read, one signature each, one COPY for all, their projections.
    An append whose expected versions are stale is refused whole, the others go on. With
    `replays`, so is one whose events are in the log already (a pending row inserted again);
    without, such a row fails the whole batch on the event ids' uniqueness, and the sequencer
    seals that batch again submission by submission, with `replays`. (Looking for replays in
    every batch cost a third of the sealing rate while 100-event transactions were submitted.)"""
    from audit import projections

    raw = _raw_connection()
    streams = sorted({stream for one in submitted for stream in one.expected})
    head = _lock_and_read_head(raw, streams)
    signer = _check_signer(raw, head, keyring.current_signing_key())
    sealed = Sealed([], {})
    replayed = _sealed_already(raw, [i for one in submitted for i in one.event_ids]) if replays else set()
    room = partitions.room_make(raw, head.seq, head.room, sum(len(one.events) for one in submitted))
    # Each event goes onto the COPY once it is signed, and psycopg sends the rows in 32 kB chunks:
    # the server inserts and indexes those while this process signs the next (two cores at once).
    with psycopg.Cursor(raw) as cursor, cursor.copy(_COPY_SQL) as copy:
        for one in submitted:
            if replayed.intersection(one.event_ids):
                sealed.refused[one.batch] = {"error": "its events are in the log already: a replay, refused"}
                continue
            stale = [
                (stream, version, head.versions.get(stream, 0))
                for stream, version in one.expected.items()
                if version is not None and version != head.versions.get(stream, 0)
            ]
            if stale:
                stream, version, actual = stale[0]
                refusal = {"conflict": {"stream": list(stream), "expected": version, "actual": actual}}
                sealed.refused[one.batch] = refusal
                continue
            recorded = _seal(one.events, one.payloads, head, signer, event_ids=one.event_ids)
            for event in recorded:
                copy.write_row(_row(event, head.now))
                head.versions[(event.stream["type"], event.stream["id"])] = event.stream["version"]
            head.seq, head.hash = recorded[-1].seq, recorded[-1].hash
            sealed.recorded += recorded
    _rooms[_database_key()] = room  # only once the COPY went through: a failed one rolls back its partitions
    if sealed.recorded:
        projections.apply(sealed.recorded)
    return sealed


def _sealed_already(raw: psycopg.Connection, event_ids: list[str]) -> set[str]:
    """Those of `event_ids` that are in the log (the key table: one index, all partitions)."""
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(
            "SELECT event_id::text FROM audit_event_key WHERE event_id = ANY(%s::uuid[])",
            (event_ids,),
            prepare=prepared_statements(),
        )
        return {event_id for (event_id,) in cursor.fetchall()}


def validate(events: Sequence[NewEvent], expected: Mapping[StreamKey, int | None]) -> list[dict[str, Any]]:
    """The payloads of `events`, each checked as append checks it (InvalidEvent, AppendError)."""
    return _validate(events, expected)


def _validate(events: Sequence[NewEvent], expected: Mapping[StreamKey, int | None]) -> list[dict[str, Any]]:
    """Every event checked, its payload validated against its class and canonicalisable; returns
    the payloads to seal."""
    if not events:
        raise AppendError("nothing to append: the event list is empty")
    payloads = []
    for index, event in enumerate(events):
        if not isinstance(event, NewEvent):
            raise InvalidEvent(index, f"expected a NewEvent, got {type(event).__name__}")
        for problem in _event_problems(event):
            raise InvalidEvent(index, problem)
        payloads.append(_payload(index, event.event))
    streams = {event.stream for event in events}
    missing = streams - set(expected)
    if missing:
        raise AppendError(f"no expected version given for stream(s) {_names(missing)}")
    extra = set(expected) - streams
    if extra:
        raise AppendError(f"expected version given for stream(s) with no event: {_names(extra)}")
    for stream, version in expected.items():
        if version is not None and (type(version) is not int or version < 0):
            raise AppendError(f"expected version of {_names([stream])} must be an integer >= 0 or None")
    return payloads


def _payload(index: int, event: Event) -> dict[str, Any]:
    if not isinstance(event, Event):
        raise InvalidEvent(index, f"event must be a registered event class, not {type(event).__name__}")
    if not hasattr(type(event), "type_name"):
        raise InvalidEvent(index, f"{type(event).__name__} is not registered: decorate it with @event_type")
    try:
        registered = events.lookup(event.type_name, event.type_schema)
    except events.UnknownEventType as exc:
        raise InvalidEvent(index, str(exc)) from None
    if registered is not type(event):
        raise InvalidEvent(index, f"{type(event).__name__} is not the class registered as {event.type_name}")
    latest = events.lookup(event.type_name)
    if latest is not registered:
        problem = (
            f"{event.type_name} schema {event.type_schema} is superseded: new events take schema {latest.type_schema}"
        )
        raise InvalidEvent(index, problem)
    payload = event.to_payload()
    try:  # again from the JSON form: an instance built without validation cannot slip through
        read_back = registered.from_payload(payload)
        canonicalize(payload)
    except events.InvalidPayload as exc:
        raise InvalidEvent(index, str(exc)) from None
    except CanonicalizationError as exc:
        raise InvalidEvent(index, f"payload{exc.path[1:]}: {exc.problem}") from None
    if read_back != event:
        raise InvalidEvent(index, f"payload of {event.type_name} does not read back as the same event")
    return payload


def _event_problems(event: NewEvent) -> list[str]:
    problems = []
    for name, limit in (("stream_type", 100), ("stream_id", 200)):
        value = getattr(event, name)
        if not isinstance(value, str) or not value or len(value) > limit:
            problems.append(f"{name} must be a non-empty string of at most {limit} characters")
    actor = event.actor
    if not isinstance(actor, Actor):
        problems.append("actor must be an Actor")
    elif actor.kind not in ACTOR_KINDS:
        problems.append(f"actor kind {actor.kind!r} is not one of {', '.join(ACTOR_KINDS)}")
    elif not all(isinstance(part, str) and part for part in (actor.id, actor.name)):
        problems.append("actor id and name must be non-empty strings")
    if event.reason is not None and not isinstance(event.reason, str):
        problems.append("reason must be a string or None")
    for name in ("correlation_id", "causation_id"):
        value = getattr(event, name)
        if value is not None and not _is_canonical_uuid(value):
            problems.append(f"{name} must be a lowercase UUID string or None, not {value!r}")
    return problems


def _is_canonical_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _names(streams) -> str:
    return ", ".join(f"{kind}:{ident}" for kind, ident in sorted(streams))


def raw_connection() -> psycopg.Connection:
    """The psycopg connection under Django's, opened if need be."""
    return _raw_connection()


def _raw_connection() -> psycopg.Connection:
    connection.ensure_connection()
    return connection.connection


# The current key is the last event's key, unless that event introduced a new one. Streams'
# versions come from the key table: one index, however many partitions the log has.
_HEAD_SQL = """
SELECT (SELECT log_id::text FROM audit_log), clock_timestamp(), h.seq, h.hash,
       coalesce(h.rotated_to, h.key_id),
       ARRAY(SELECT coalesce((SELECT k.stream_version FROM audit_event_key k
                               WHERE k.stream_type = w.t AND k.stream_id = w.i
                               ORDER BY k.stream_version DESC LIMIT 1), 0)
               FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS w(t, i, n) ORDER BY w.n),
       (SELECT coalesce(max(end_seq), 1) FROM audit_log_partition)
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT seq, hash, key_id,
                            CASE WHEN event_type = %s THEN payload->>'new_key_id' END AS rotated_to
                       FROM audit_event ORDER BY seq DESC LIMIT 1) h ON true
"""
_GENESIS_KEY_SQL = "SELECT key_id FROM audit_signing_key ORDER BY valid_from_seq DESC LIMIT 1"


def _lock_and_read_head(raw: psycopg.Connection, streams: list[StreamKey]) -> _Head:
    """Take the append lock and read the chain head: one round trip, BEGIN included (pipeline)."""
    with psycopg.Cursor(raw) as lock_cursor, psycopg.Cursor(raw) as head_cursor:
        with raw.pipeline():
            lock_cursor.execute("SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK_KEY,), prepare=prepared_statements())
            streams_sql = ([s[0] for s in streams], [s[1] for s in streams], KeyRotated.type_name)
            head_cursor.execute(_HEAD_SQL, streams_sql, prepare=prepared_statements())
        log_id, now, seq, digest, key_id, versions, room = single_row(head_cursor.fetchone())
        if seq is None:  # an empty log: its first key, if any, is in the key table
            row = head_cursor.execute(_GENESIS_KEY_SQL).fetchone()
            key_id = row[0] if row else None
    return _Head(
        log_id=log_id,
        now=now.astimezone(dt.UTC),
        seq=seq or 0,
        hash=bytes(digest).hex() if digest is not None else GENESIS_PREV_HASH,
        current_key_id=key_id,
        versions={stream: version for stream, version in zip(streams, versions, strict=True) if version},
        room=room,
    )


def single_row(row: tuple | None) -> tuple:
    """The row of a query that always returns one (an aggregate, the head)."""
    if row is None:
        raise RuntimeError("a query that always returns one row returned none")
    return row


def _check_signer(raw: psycopg.Connection, head: _Head, signer: SigningKey) -> SigningKey:
    """Genesis: record the log id and first key. Later: the signer must be the log's current key."""
    with psycopg.Cursor(raw) as cursor:
        if head.log_id is None:
            head.log_id = str(uuid.uuid4())
            cursor.execute("INSERT INTO audit_log (log_id, created_at) VALUES (%s, %s)", (head.log_id, head.now))
        if head.current_key_id is None:
            insert_key_record(cursor, signer, valid_from_seq=head.seq + 1, introduced_by_seq=None, now=head.now)
            head.current_key_id = signer.key_id
            anchor_pin(signer)
    if signer.key_id != head.current_key_id:
        signer = keyring.current_signing_key(reload=True)  # another process may have rotated it
    if signer.key_id != head.current_key_id:
        raise SigningKeyMismatch(
            f"the configured signing key {signer.key_id} is not the log's current key "
            f"{head.current_key_id}; configure that key, or introduce a new one with rotate_signing_key"
        )
    return signer


def insert_key_record(
    cursor: psycopg.Cursor,
    key: SigningKey,
    *,
    valid_from_seq: int,
    introduced_by_seq: int | None,
    now: dt.datetime,
) -> None:
    cursor.execute(
        "INSERT INTO audit_signing_key (key_id, public_key, valid_from_seq, introduced_by_seq, created_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (key.key_id, key.public_raw, valid_from_seq, introduced_by_seq, now),
    )


def _seal(
    events: Sequence[NewEvent],
    payloads: list[dict[str, Any]],
    head: _Head,
    signer: SigningKey,
    *,
    event_ids: Sequence[str] | None = None,
) -> list[RecordedEvent]:
    occurred_at = format_time(head.now)
    assert head.log_id is not None, "the head is read (and the log created) before sealing"
    versions = dict(head.versions)
    prev_hash = head.hash
    recorded = []
    for offset, (event, payload) in enumerate(zip(events, payloads, strict=True), start=1):
        version = versions.get(event.stream, 0) + 1
        versions[event.stream] = version
        body = envelope(
            log_id=head.log_id,
            seq=head.seq + offset,
            event_id=event_ids[offset - 1] if event_ids is not None else str(uuid.uuid4()),
            stream={"type": event.stream_type, "id": event.stream_id, "version": version},
            type=event.type,
            schema=event.event.type_schema,
            occurred_at=occurred_at,
            actor=event.actor.as_dict(),
            reason=event.reason,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            payload=payload,
            prev_hash=prev_hash,
            key_id=signer.key_id,
        )
        canonical = canonicalize(body)
        prev_hash = hashlib.sha256(canonical).hexdigest()
        signature = base64.b64encode(signer.sign(canonical)).decode("ascii")
        sealed = RecordedEvent(body, canonical, prev_hash, signature)
        if isinstance(event.event, Event):  # the validated instance: no need to parse it back
            sealed.__dict__["event"] = event.event
        recorded.append(sealed)
    return recorded


_INSERT_SQL = """
INSERT INTO audit_event (seq, event_id, stream_type, stream_id, stream_version, event_type, schema,
    occurred_at, actor_kind, actor_id, correlation_id, causation_id, payload, canonical, hash,
    leaf_hash, signature, key_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)
"""


_COPY_SQL = """
COPY audit_event (seq, event_id, stream_type, stream_id, stream_version, event_type, schema, occurred_at,
    actor_kind, actor_id, correlation_id, causation_id, payload, canonical, hash, leaf_hash, signature, key_id)
FROM STDIN
"""


# Column types, in _INSERT_SQL order, for the typed VALUES list of the guarded insert.
_ROW_TYPES = [
    "bigint", "uuid", "text", "text", "integer", "text", "integer", "timestamptz", "text", "text",
    "uuid", "uuid", "jsonb", "bytea", "bytea", "bytea", "bytea", "text",
]  # fmt: skip


def _guarded_insert_sql(events: int, streams: int) -> str:
    row = "(" + ", ".join(f"%s::{kind}" for kind in _ROW_TYPES) + ")"
    stream_guards = " AND ".join(
        [
            "(SELECT coalesce(max(stream_version), 0) FROM audit_event_key"
            " WHERE stream_type = %s AND stream_id = %s) = %s"
        ]
        * streams
    )
    return (
        "INSERT INTO audit_event (seq, event_id, stream_type, stream_id, stream_version, event_type, schema,"
        " occurred_at, actor_kind, actor_id, correlation_id, causation_id, payload, canonical, hash, leaf_hash,"
        " signature, key_id) SELECT * FROM (VALUES " + ", ".join([row] * events) + ") AS v"
        " WHERE (SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1) = %s AND " + stream_guards
    )


def _row(event: RecordedEvent, now: dt.datetime) -> tuple:
    body = event.envelope
    stream = body["stream"]
    return (
        body["seq"],
        body["event_id"],
        stream["type"],
        stream["id"],
        stream["version"],
        body["type"],
        body["schema"],
        now,
        body["actor"]["kind"],
        body["actor"]["id"],
        body["correlation_id"],
        body["causation_id"],
        orjson.dumps(body["payload"]).decode("utf-8"),
        event.canonical,
        bytes.fromhex(event.hash),
        leaf_hash(event.canonical),
        base64.b64decode(event.signature),
        body["key_id"],
    )
