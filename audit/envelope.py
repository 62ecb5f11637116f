"""The event envelope of EVIDENCE-FORMAT.md v1: field order, hashing, time format. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

GENESIS_PREV_HASH = "0" * 64

ENVELOPE_MEMBERS = (
    "log_id",
    "seq",
    "event_id",
    "stream",
    "type",
    "schema",
    "occurred_at",
    "actor",
    "reason",
    "correlation_id",
    "causation_id",
    "payload",
    "prev_hash",
    "key_id",
)

ACTOR_KINDS = ("user", "service", "model", "system")


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds and `Z`, e.g. 2026-11-25T21:00:00.123456Z."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    # isoformat, not strftime: strftime writes the year 442 as "442", which parse_time rejects.
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> dt.datetime:
    if not text.endswith("Z"):
        raise ValueError(f"{text!r} is not an RFC 3339 UTC time ending in Z")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaf_hash(canonical_envelope: bytes) -> bytes:
    """RFC 9162 §2.1 leaf hash: H(0x00 ‖ leaf data)."""
    return hashlib.sha256(b"\x00" + canonical_envelope).digest()


def key_id_of(raw_public_key: bytes) -> str:
    """First 16 lowercase hex characters of SHA-256 of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


def envelope(
    *,
    log_id: str,
    seq: int,
    event_id: str,
    stream: dict[str, Any],
    type: str,
    schema: int,
    occurred_at: str,
    actor: dict[str, str],
    reason: str | None,
    correlation_id: str | None,
    causation_id: str | None,
    payload: dict[str, Any],
    prev_hash: str,
    key_id: str,
) -> dict[str, Any]:
    """The envelope as a dict with exactly the specified members."""
    return {
        "log_id": log_id,
        "seq": seq,
        "event_id": event_id,
        "stream": stream,
        "type": type,
        "schema": schema,
        "occurred_at": occurred_at,
        "actor": actor,
        "reason": reason,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "payload": payload,
        "prev_hash": prev_hash,
        "key_id": key_id,
    }


def rotation_statement(*, log_id: str, new_key_id: str, previous_key_id: str) -> bytes:
    """The bytes a new key signs to accept its role (EVIDENCE-FORMAT.md, key rotation)."""
    from audit.canonical import canonicalize

    return canonicalize({"log_id": log_id, "new_key_id": new_key_id, "previous_key_id": previous_key_id})
