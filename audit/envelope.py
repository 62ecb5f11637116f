"""The names and encodings of the log and bundle format (docs/evidence-format.md) that the
writer and the offline verifier share: envelope members, hashing, key ids, time format,
checkpoint members, the bundle format tag. Pure: the standard library only."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

GENESIS_PREV_HASH = "0" * 64
# The one event type the format itself names: a new key enters the log only through it.
KEY_ROTATED = "audit.KeyRotated"

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
CHECKPOINT_MEMBERS = ("log_id", "tree_size", "root_hash", "timestamp", "key_id")
# Version 2 adds the witnesses' cosignatures; a verifier still reads version 1 bundles.
BUNDLE_FORMAT = "driftledger-evidence/2"
BUNDLE_FORMATS = ("driftledger-evidence/1", BUNDLE_FORMAT)


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


def read_time(text: str) -> dt.datetime:
    """An ISO 8601 time as people (and older events) write it: a date, a time with or without
    microseconds, `Z` or an offset; without a zone it is UTC. `parse_time` is the strict form."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


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


def checkpoint_body(checkpoint: dict[str, Any]) -> bytes:
    """The bytes a checkpoint's signature covers: canon of its five members."""
    from audit.canonical import canonicalize

    return canonicalize({name: checkpoint[name] for name in CHECKPOINT_MEMBERS})


def rotation_statement(*, log_id: str, new_key_id: str, previous_key_id: str) -> bytes:
    """The bytes a new key signs to accept its role (docs/evidence-format.md, key rotation)."""
    from audit.canonical import canonicalize

    return canonicalize({"log_id": log_id, "new_key_id": new_key_id, "previous_key_id": previous_key_id})


COSIGNATURE_KIND = "driftledger-cosignature/1"
COSIGNATURE_MEMBERS = ("witness_id", "cosigned_at", "signature")


def cosigned_statement(checkpoint: dict[str, Any], cosigned_at: str) -> bytes:
    """The bytes a witness signs for a checkpoint (docs/evidence-format.md, version 2)."""
    from audit.canonical import canonicalize

    return canonicalize(
        {
            "kind": COSIGNATURE_KIND,
            "log_id": checkpoint["log_id"],
            "tree_size": checkpoint["tree_size"],
            "root_hash": checkpoint["root_hash"],
            "checkpoint_key_id": checkpoint["key_id"],
            "cosigned_at": cosigned_at,
        }
    )
