"""Checks of stored events against their canonical bytes, chain and signatures. Pure (no Django).

A row is the tuple produced by audit.verify.ROW_SQL, or (seq, canonical, hash, leaf hash,
signature, None) for an event read from an archived segment, which has no columns to compare.
Each check names the first bad seq.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from audit.envelope import ENVELOPE_MEMBERS, KEY_ROTATED, key_id_of, rotation_statement
from audit.keys import FastVerifier, public_key_from_raw, signature_valid

_MEMBERS = frozenset(ENVELOPE_MEMBERS)


@dataclass(frozen=True, order=True)
class Failure:
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason}"


@dataclass(frozen=True)
class KeyRange:
    key_id: str
    public_raw: bytes
    valid_from_seq: int
    valid_to_seq: int | None  # None: still current


class KeySchedule:
    """Which key is valid at which seq."""

    def __init__(self, keys: Sequence[KeyRange]) -> None:
        self._keys = sorted(keys, key=lambda k: k.valid_from_seq)
        self._starts = [k.valid_from_seq for k in self._keys]
        self._verifiers = {k.key_id: FastVerifier(k.public_raw) for k in self._keys}

    def key_at(self, seq: int) -> KeyRange | None:
        index = bisect.bisect_right(self._starts, seq) - 1
        return self._keys[index] if index >= 0 else None

    def verifier(self, key_id: str) -> FastVerifier:
        return self._verifiers[key_id]


def verify_rows(
    rows: Iterable[tuple],
    *,
    first_seq: int,
    last_seq: int,
    prev_hash: str,
    log_id: str,
    keys: KeySchedule,
) -> tuple[int, Failure | None]:
    """Verify rows first_seq..last_seq in seq order; return (rows checked, first failure)."""
    expected_seq = first_seq
    checked = 0
    for row in rows:
        seq = row[0]
        if seq != expected_seq:
            return checked, Failure(expected_seq, f"seq {expected_seq} is missing (next stored seq is {seq})")
        problem = _row_problem(row, prev_hash, log_id, keys)
        if problem is not None:
            return checked, Failure(seq, problem)
        prev_hash = bytes(row[2]).hex()
        expected_seq += 1
        checked += 1
    if expected_seq <= last_seq:
        return checked, Failure(expected_seq, f"seq {expected_seq} is missing (the log ends early)")
    return checked, None


def _row_problem(row: tuple, prev_hash: str, log_id: str, keys: KeySchedule) -> str | None:
    (seq, canonical, stored_hash, stored_leaf, signature, key_id, *columns) = row
    canonical = bytes(canonical)
    digest = hashlib.sha256(canonical).digest()
    if digest != bytes(stored_hash):
        return "stored hash does not match SHA-256 of the canonical bytes"
    if hashlib.sha256(b"\x00" + canonical).digest() != bytes(stored_leaf):
        return "stored Merkle leaf hash does not match the canonical bytes"
    # Canonical form itself is the writer's guarantee (property-tested against rfc8785); what is
    # checked here is that bytes, hash, signature and chain agree, at Ed25519 speed.
    try:
        body = orjson.loads(canonical)
    except orjson.JSONDecodeError as exc:
        return f"stored bytes are not JSON: {exc}"
    if not isinstance(body, dict) or body.keys() != _MEMBERS:
        return "envelope members differ from the format (docs/evidence-format.md)"
    if body["seq"] != seq:
        return f"envelope says seq {body['seq']} but it is stored at seq {seq}"
    if body["log_id"] != log_id:
        return f"envelope belongs to log {body['log_id']}, not {log_id}"
    if body["prev_hash"] != prev_hash:
        return "prev_hash does not equal the hash of the previous event: the chain is broken"
    valid_key = keys.key_at(seq)
    if valid_key is None or body["key_id"] != valid_key.key_id:
        expected = valid_key.key_id if valid_key else "none"
        return f"signed by key {body['key_id']}, but the key valid at this seq is {expected}"
    if key_id is not None and key_id != body["key_id"]:
        return f"key_id column {key_id} disagrees with the envelope's {body['key_id']}"
    if not keys.verifier(valid_key.key_id).valid(bytes(signature), canonical):
        return f"signature does not verify under key {valid_key.key_id}"
    if not columns:  # an archived event: its bytes are all there is
        return None
    mismatch = _column_mismatch(body, columns)
    if mismatch is not None:
        return f"indexed column {mismatch} disagrees with the canonical bytes"
    return None


def _column_mismatch(body: dict, columns: list) -> str | None:
    (
        event_id,
        stream_type,
        stream_id,
        stream_version,
        event_type,
        schema,
        occurred_at,
        actor_kind,
        actor_id,
        correlation_id,
        causation_id,
        payload,
    ) = columns
    stream = body["stream"]
    actor = body["actor"]
    pairs = (
        ("event_id", event_id, body["event_id"]),
        ("stream_type", stream_type, stream["type"]),
        ("stream_id", stream_id, stream["id"]),
        ("stream_version", stream_version, stream["version"]),
        ("event_type", event_type, body["type"]),
        ("schema", schema, body["schema"]),
        ("occurred_at", occurred_at, body["occurred_at"]),
        ("actor_kind", actor_kind, actor["kind"]),
        ("actor_id", actor_id, actor["id"]),
        ("correlation_id", correlation_id, body["correlation_id"]),
        ("causation_id", causation_id, body["causation_id"]),
    )
    for name, stored, signed in pairs:
        if stored != signed:
            return name
    if orjson.loads(payload) != body["payload"]:
        return "payload"
    return None


def key_chain_failures(
    keys: Sequence[KeyRange], rotations: Sequence[tuple[int, dict]], log_id: str, first_seq: int = 1
) -> list[Failure]:
    """Check that every key after the first was introduced by a valid audit.KeyRotated event.

    `rotations` are (seq, payload) of every audit.KeyRotated event in the log.
    """
    failures = []
    ordered = sorted(keys, key=lambda k: k.valid_from_seq)
    if ordered and ordered[0].valid_from_seq != first_seq:
        failures.append(Failure(first_seq, f"the first key {ordered[0].key_id} is not valid from seq {first_seq}"))
    for key in ordered:
        if key_id_of(key.public_raw) != key.key_id:
            failures.append(Failure(key.valid_from_seq, f"key {key.key_id} does not match its public key"))
    by_seq = dict(rotations)
    for previous, key in itertools.pairwise(ordered):
        rotation_seq = key.valid_from_seq - 1
        payload = by_seq.get(rotation_seq)
        if payload is None:
            failures.append(Failure(key.valid_from_seq, f"key {key.key_id} takes over without an {KEY_ROTATED} event"))
            continue
        problem = _rotation_problem(payload, previous, key, log_id)
        if problem:
            failures.append(Failure(rotation_seq, problem))
    known = {k.key_id for k in ordered}
    for seq, payload in by_seq.items():
        if payload["new_key_id"] not in known:
            problem = f"{KEY_ROTATED} introduces key {payload['new_key_id']}, which the key table lacks"
            failures.append(Failure(seq, problem))
    return sorted(failures)


def _rotation_problem(payload: dict, previous: KeyRange, key: KeyRange, log_id: str) -> str | None:
    if payload["new_key_id"] != key.key_id or payload["previous_key_id"] != previous.key_id:
        return f"{KEY_ROTATED} names other keys than the key table"
    if base64.b64decode(payload["new_public_key"]) != key.public_raw:
        return f"{KEY_ROTATED} carries another public key than the key table"
    signed = rotation_statement(log_id=log_id, new_key_id=key.key_id, previous_key_id=previous.key_id)
    try:
        cross_signature = base64.b64decode(payload["new_key_signature"], validate=True)
    except ValueError:
        return "new_key_signature is not base64"
    if not signature_valid(public_key_from_raw(key.public_raw), cross_signature, signed):
        return "new_key_signature does not verify under the new key"
    return None
