"""Witnesses: every checkpoint is also published outside the database.

Publishers are chosen in settings (AUDIT_WITNESSES: dotted class path and options). A copy that
another host holds is what lets audit_verify --witness catch a truncated tail, a restored old
backup, or a history rewritten and re-signed by someone holding the key.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson
from django.conf import settings
from django.utils.module_loading import import_string

from audit.canonical import canonicalize

logger = logging.getLogger(__name__)


class WitnessConflict(RuntimeError):
    """The witness already holds a different checkpoint for this tree size: the log equivocated."""


class Witness:
    def publish(self, checkpoint: dict) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """What and where, for people (never a secret: no credentials, query or headers)."""
        return type(self).__name__


class DirectoryWitness(Witness):
    """One file per checkpoint, `<tree_size>.json`, never overwritten: suited to a directory that
    another host syncs, or an object-lock bucket mounted here."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"directory {self.path}"

    def publish(self, checkpoint: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"{checkpoint['tree_size']:020d}.json"
        body = canonicalize(checkpoint)
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        except FileExistsError:
            if target.read_bytes() != body:
                raise WitnessConflict(f"{target} holds another checkpoint for this tree size") from None
            return
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())


class HttpWitness(Witness):
    """POSTs the checkpoint as JSON to a URL (a transparency witness or a monitoring service)."""

    def __init__(self, url: str, timeout: float = 5.0, attempts: int = 3, headers: dict | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"witness URL must be http(s), not {url!r}")
        self.url, self.timeout, self.attempts = url, timeout, attempts
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"HTTP {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def publish(self, checkpoint: dict) -> None:
        body = canonicalize(checkpoint)
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    if 200 <= response.status < 300:
                        return
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self.attempts:
                    raise
                logger.warning("witness %s: attempt %d failed: %s", self.url, attempt, exc)
            time.sleep(0.2 * 2**attempt)


def configured_witnesses() -> list[Witness]:
    return [import_string(spec["class"])(**spec.get("options", {})) for spec in settings.AUDIT_WITNESSES]


def publish_checkpoint(checkpoint: dict) -> list[str]:
    """Give the checkpoint to every configured witness; return the failures (each is logged)."""
    from django.utils import timezone

    from audit.models import WitnessDelivery

    failures = []
    for witness in configured_witnesses():
        name = witness.describe()[:300]
        try:
            witness.publish(checkpoint)
        except Exception as exc:  # noqa: BLE001 - one witness failing must not stop the others
            logger.error("witness %s failed for tree size %s: %s", name, checkpoint["tree_size"], exc)
            failures.append(f"{type(witness).__name__}: {exc}")
            WitnessDelivery.objects.update_or_create(
                name=name, defaults={"failed_at": timezone.now(), "error": f"{type(exc).__name__}: {exc}"[:2000]}
            )
            continue
        if not WitnessDelivery.objects.filter(name=name, tree_size__gt=checkpoint["tree_size"]).exists():  # republished
            WitnessDelivery.objects.update_or_create(
                name=name, defaults={"tree_size": checkpoint["tree_size"], "delivered_at": timezone.now(), "error": ""}
            )
    return failures


class WitnessUnreadable(ValueError):
    """A file of a witness directory that is no checkpoint: damaged, or put there by someone else."""


def read_witnessed(path: str | Path) -> list[dict]:
    """Every checkpoint a directory witness holds, by tree size. The directory is storage another
    host holds: a file in it that is no checkpoint raises WitnessUnreadable, naming it."""
    found = []
    for file in sorted(Path(path).glob("*.json")):
        try:
            body = orjson.loads(file.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise WitnessUnreadable(f"witnessed checkpoint {file} cannot be read: {exc}") from exc
        if not isinstance(body, dict) or type(body.get("tree_size")) is not int:
            raise WitnessUnreadable(f"witnessed checkpoint {file} is no checkpoint (an object with a tree_size)")
        found.append(body)
    return sorted(found, key=lambda c: c["tree_size"])
