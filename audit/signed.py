"""Events as the log signed them, checked as they are read: for the answers that must not rest on
a read model alone (which reporting key is valid, which version serves). Whoever can write the
database can change a read model, or an event's columns; not the signed bytes of an event,
without the signing key.

A signed event is read by seq: its stored bytes must hash to its stored hash and carry a
signature of the key the log assigns to that seq. With its inclusion proof against a signed
checkpoint, a client holding the log's public key checks the answer itself.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection

from audit import checkpoints, cosigning
from audit.models import Checkpoint


class NotAsSigned(Exception):
    """What the database holds at a seq is not what the log signed there."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"seq {seq}: {reason}")
        self.seq, self.reason = seq, reason


@dataclass(frozen=True)
class SignedEvent:
    seq: int
    canonical: bytes
    signature: str  # base64, over `canonical`
    key_id: str

    @property
    def envelope(self) -> dict[str, Any]:
        return orjson.loads(self.canonical)

    def as_dict(self) -> dict[str, Any]:
        """What a client needs to check the event on its own."""
        return {
            "seq": self.seq,
            "canonical": base64.b64encode(self.canonical).decode("ascii"),
            "signature": self.signature,
            "key_id": self.key_id,
        }


def signed_event(seq: int) -> SignedEvent:
    """The event at `seq`, its bytes checked against its hash and its signature against the key
    the log assigns to that seq; NotAsSigned otherwise. Checked events are remembered (by seq,
    stored hash and signature), so a hot one costs one primary-key read."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical, hash, signature, key_id FROM audit_event WHERE seq = %s", [seq])
        row = cursor.fetchone()
    if row is None:
        raise NotAsSigned(seq, "no event holds this seq")
    canonical, digest, signature, key_id = bytes(row[0]), bytes(row[1]), bytes(row[2]), row[3]
    return _checked(seq, canonical, digest, signature, key_id)


@lru_cache(maxsize=4096)
def _checked(seq: int, canonical: bytes, digest: bytes, signature: bytes, key_id: str) -> SignedEvent:
    if hashlib.sha256(canonical).digest() != digest:
        raise NotAsSigned(seq, "its stored bytes do not hash to its stored hash")
    envelope = orjson.loads(canonical)
    if envelope.get("seq") != seq or envelope.get("key_id") != key_id:
        raise NotAsSigned(seq, "its signed bytes name another seq or key")
    public = _key_at(seq)
    if public is None or public[0] != key_id:
        raise NotAsSigned(seq, f"key {key_id} is not the key the log assigns to this seq")
    try:
        Ed25519PublicKey.from_public_bytes(public[1]).verify(signature, canonical)
    except InvalidSignature:
        raise NotAsSigned(seq, f"its signature does not verify under key {key_id}") from None
    return SignedEvent(seq, canonical, base64.b64encode(signature).decode("ascii"), key_id)


def _key_at(seq: int) -> tuple[str, bytes] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key_id, public_key FROM audit_signing_key WHERE valid_from_seq <= %s"
            " ORDER BY valid_from_seq DESC LIMIT 1",
            [seq],
        )
        row = cursor.fetchone()
    return (row[0], bytes(row[1])) if row else None


def later_events(stream_type: str, stream_id: str, event_type: str, after_seq: int) -> list[SignedEvent]:
    """The stream's events of `event_type` after `after_seq`, each checked as signed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq FROM audit_event WHERE stream_type = %s AND stream_id = %s AND event_type = %s AND seq > %s"
            " ORDER BY seq",
            [stream_type, stream_id, event_type, after_seq],
        )
        seqs = [seq for (seq,) in cursor.fetchall()]
    return [signed_event(seq) for seq in seqs]


def inclusion(seq: int) -> dict[str, Any]:
    """The event's RFC 9162 inclusion proof against the newest checkpoint the witnesses cosigned
    that covers it, with their cosignatures; when none does yet, against the latest signed
    checkpoint (made first when the event is newer than it), with what cosignatures it has."""
    checkpoint = cosigning.newest_cosigned(covering=seq) or Checkpoint.objects.order_by("-tree_size").first()
    if checkpoint is None or checkpoint.tree_size < seq:
        checkpoint = checkpoints.checkpoint_create()
    if checkpoint is None or checkpoint.tree_size < seq:
        raise NotAsSigned(seq, "no checkpoint covers this seq")
    path = checkpoints.inclusion_proof(seq, checkpoint.tree_size)
    return {
        "checkpoint": {**checkpoint.as_dict(), "cosignatures": cosigning.cosignatures_of(checkpoint)},
        "leaf_index": seq - 1,
        "tree_size": checkpoint.tree_size,
        "path": [step.hex() for step in path],
    }
