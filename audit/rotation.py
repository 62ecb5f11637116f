"""Signing-key rotation: `audit.KeyRotated`, signed by the old key, cross-signed by the new."""

from __future__ import annotations

import base64

from django.db import transaction

from audit import keyring
from audit.envelope import rotation_statement
from audit.events import KeyRotated
from audit.keys import SigningKey
from audit.selectors import signing_keys
from audit.store import (
    Actor,
    NewEvent,
    RecordedEvent,
    _append_locked,
    _check_signer,
    _lock_and_read_head,
    _raw_connection,
    _validate,
    insert_key_record,
)

KEYS_STREAM = ("audit.keys", "signing-keys")


def signing_key_rotate(*, new_key: SigningKey, actor: Actor, reason: str) -> RecordedEvent:
    """Introduce `new_key`; events after the returned one are signed by it.

    The new private key is parked beside the key file before the commit and installed after it,
    so a crash in between leaves the key recoverable rather than lost.
    """
    old_key = keyring.current_signing_key()
    if new_key.key_id == old_key.key_id:
        raise ValueError("the new key is the key already in use")
    _refuse_a_key_used_before(new_key)
    parked = keyring.signing_key_path().with_suffix(f".{new_key.key_id}.pending")
    new_key.save(parked)
    committing = False
    try:
        with transaction.atomic():
            recorded = _rotated(new_key, old_key, actor, reason)
            committing = True  # from here the commit's outcome may be unknown: the parked key stays
    except BaseException:
        if not committing:  # refused before the commit: no event names the parked key
            parked.unlink(missing_ok=True)
        raise
    keyring.install_signing_key(new_key)
    parked.unlink(missing_ok=True)
    return recorded


def _refuse_a_key_used_before(new_key: SigningKey) -> None:
    """A retired key is one whose private half may have left the operator's hands: it never
    signs again (and the log's key table holds each key once)."""
    for key in signing_keys():
        if key.key_id == new_key.key_id:
            until = key.valid_to_seq if key.valid_to_seq is not None else "now"
            raise ValueError(
                f"key {key.key_id} signed seqs {key.valid_from_seq}..{until} of this log before: a retired key "
                "never signs again (rotate to a new key)"
            )


def _rotated(new_key: SigningKey, old_key: SigningKey, actor: Actor, reason: str) -> RecordedEvent:
    """The KeyRotated event and the new key's record, under the log's lock (in the caller's transaction)."""
    raw = _raw_connection()
    head = _lock_and_read_head(raw, [])
    old_key = _check_signer(raw, head, old_key)
    assert head.log_id is not None, "the signer check creates the log"
    statement = rotation_statement(log_id=head.log_id, new_key_id=new_key.key_id, previous_key_id=old_key.key_id)
    rotated = KeyRotated(
        new_key_id=new_key.key_id,
        new_public_key=new_key.public_b64,
        previous_key_id=old_key.key_id,
        new_key_signature=base64.b64encode(new_key.sign(statement)).decode("ascii"),
    )
    event = NewEvent(KEYS_STREAM[0], KEYS_STREAM[1], rotated, actor, reason=reason)
    expected = {KEYS_STREAM: None}
    payloads = _validate([event], expected)

    def register_new_key(cursor, recorded: list[RecordedEvent]) -> None:
        seq = recorded[0].seq
        insert_key_record(cursor, new_key, valid_from_seq=seq + 1, introduced_by_seq=seq, now=head.now)

    (recorded,) = _append_locked([event], payloads, expected, old_key, after_insert=register_new_key)
    return recorded
