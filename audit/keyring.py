"""Which private key signs new events: AUDIT_SIGNING_KEY_FILE, or a generated development key."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from django.conf import settings

from audit.keys import SigningKey

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cached: tuple[Path, SigningKey] | None = None


def signing_key_path() -> Path:
    configured = settings.AUDIT_SIGNING_KEY_FILE
    return Path(configured) if configured else Path(settings.AUDIT_DEV_KEY_FILE)


def current_signing_key(*, reload: bool = False) -> SigningKey:
    """The configured key, cached; the store asks for a reload when the log names another key
    (after a rotation by another process)."""
    global _cached
    path = signing_key_path()
    with _lock:
        if _cached is not None and _cached[0] == path and not reload:
            return _cached[1]
        if not path.exists():
            if settings.AUDIT_SIGNING_KEY_FILE:
                raise FileNotFoundError(f"AUDIT_SIGNING_KEY_FILE {path} does not exist")
            key = SigningKey.generate()
            key.save(path)
            logger.warning(
                "Generated a DEVELOPMENT audit signing key at %s (key id %s). Production must set "
                "AUDIT_SIGNING_KEY_FILE to a key kept outside the data directory.",
                path,
                key.key_id,
            )
        _cached = (path, SigningKey.load(path))
        return _cached[1]


def install_signing_key(key: SigningKey) -> Path:
    """Make `key` the configured key. The private key it replaces signs nothing any more: it is
    moved to AUDIT_RETIRED_KEY_DIR when one is configured (offline media), else destroyed, so that
    whoever takes the key directory later cannot sign for the past."""
    global _cached
    path = signing_key_path()
    with _lock:
        if path.exists():
            retired_dir = settings.AUDIT_RETIRED_KEY_DIR
            if retired_dir:
                previous = SigningKey.load(path)
                previous.save(Path(retired_dir) / f"{path.stem}.{previous.key_id}.retired{path.suffix}")
            _overwrite(path)
        key.save(path)
        _cached = (path, key)
    return path


def _overwrite(path: Path) -> None:
    """Zeros over the file's bytes, on disk, before it is replaced (a rename alone would leave
    them in the freed blocks)."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(b"\0" * size)
        handle.flush()
        os.fsync(handle.fileno())
