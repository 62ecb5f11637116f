"""The trust anchor: the log's first public key, pinned in a file outside the database
(AUDIT_TRUST_ANCHOR, PEM). Verification traces every key of the log back to it through the
`audit.KeyRotated` chain, so whoever can write the database but not this file cannot replace the
log's keys and history unnoticed. A deployment provisions the file read-only, owned by another
user than the application; on a single machine the log pins its first key there at genesis.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from django.conf import settings

from audit.keys import SigningKey, public_raw_from_pem

logger = logging.getLogger(__name__)


class AnchorError(ValueError):
    pass


def anchor_path() -> Path:
    return Path(settings.AUDIT_TRUST_ANCHOR)


def anchor_key() -> bytes | None:
    """The pinned key's 32 raw bytes, or None when no anchor is pinned."""
    path = anchor_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return public_raw_from_pem(data)
    except ValueError as exc:
        raise AnchorError(f"the trust anchor {path} is not a PEM public key of Ed25519 ({exc})") from None


def anchor_writable() -> bool:
    """Whether this process's user owns the anchor file (so could change it): then the anchor holds
    against whoever can write the database only, not against this host's application user."""
    try:
        return anchor_path().stat().st_uid == os.geteuid()
    except FileNotFoundError:
        return False


def anchor_pin(key: SigningKey) -> None:
    """At the log's genesis: pin its first key, unless an anchor is already there (never
    overwritten: a provisioned anchor stays, and verification then names any mismatch)."""
    path = anchor_path()
    pem = key.public_pem()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        return
    except OSError as exc:
        logger.warning("could not pin the log's first key %s as the trust anchor %s: %s", key.key_id, path, exc)
        return
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    logger.info("pinned the log's first key %s as its trust anchor at %s", key.key_id, path)
