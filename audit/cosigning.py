"""Cosigning witnesses: each checkpoint goes to the witnesses of AUDIT_COSIGNING_WITNESSES
(`python -m audit.witness`), with a consistency proof from the last checkpoint each one cosigned.
Their cosignatures are checked against the witness's configured key and kept beside the
checkpoint; evidence bundles carry them (docs/evidence-format.md, version 2).

The witnesses are asked in parallel: the network waits overlap, the database work stays here.
"""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import orjson
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import checkpoints
from audit.canonical import canonicalize
from audit.envelope import KEY_ROTATED, cosigned_statement, key_id_of
from audit.keys import public_key_from_raw, signature_valid
from audit.models import Checkpoint, Cosignature, WitnessDelivery

logger = logging.getLogger(__name__)


class WitnessRefused(RuntimeError):
    pass


@dataclass(frozen=True)
class CosigningWitness:
    name: str
    url: str  # the witness's base URL, e.g. http://witness-a.internal:8700
    public_raw: bytes

    @cached_property
    def witness_id(self) -> str:
        return key_id_of(self.public_raw)

    def describe(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"cosigning witness {self.name} ({parts.hostname}{f':{parts.port}' if parts.port else ''})"

    def as_listed(self) -> dict:
        """Its entry in a bundle's witnesses.json."""
        return {
            "witness_id": self.witness_id,
            "public_key": base64.b64encode(self.public_raw).decode("ascii"),
            "name": self.name,
        }


def witness_from_setting(spec: dict) -> CosigningWitness:
    """{"name", "url", "public_key"}: the key as PEM text or base64 of its 32 raw bytes."""
    name, url, key = spec.get("name"), spec.get("url"), str(spec.get("public_key") or "")
    if not name or not str(url).startswith(("http://", "https://")):
        raise ValueError(f"a cosigning witness needs a name and an http(s) url: {spec!r}")
    if key.startswith("-----BEGIN"):
        loaded = serialization.load_pem_public_key(key.encode())
        raw = loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = base64.b64decode(key, validate=True)
    public_key_from_raw(raw)  # refuses anything but 32 bytes of an Ed25519 key
    return CosigningWitness(str(name), str(url).rstrip("/"), raw)


def configured() -> list[CosigningWitness]:
    return [witness_from_setting(spec) for spec in settings.AUDIT_COSIGNING_WITNESSES]


def cosignatures_of(checkpoint: Checkpoint) -> list[dict]:
    found = Cosignature.objects.filter(checkpoint=checkpoint).order_by("witness_id")
    return [cosignature.as_dict() for cosignature in found]


def cosign(checkpoint: Checkpoint) -> list[str]:
    """Ask each configured witness that has not cosigned `checkpoint` for its cosignature and keep
    it; return the failures (each also logged and shown on the integrity page)."""
    have = set(Cosignature.objects.filter(checkpoint=checkpoint).values_list("witness_id", flat=True))
    wanted = [witness for witness in configured() if witness.witness_id not in have]
    if not wanted:
        return []
    log_id = str(checkpoint.log_id)
    known = _parallel(lambda witness: _get(witness, f"/logs/{log_id}"), wanted)
    requests = {}
    failures = {}
    rotations = _rotations(checkpoint.tree_size)
    for witness, answer in zip(wanted, known, strict=True):
        try:
            if isinstance(answer, Exception):
                raise answer
            old_size = (answer.get("checkpoint") or {}).get("tree_size", 0)
            requests[witness] = _request(checkpoint, old_size, rotations)
        except Exception as exc:  # noqa: BLE001 - one witness failing must not stop the others
            failures[witness] = exc
    answers = _parallel(lambda witness: _post(witness, f"/logs/{log_id}/cosign", requests[witness]), list(requests))
    for witness, answer in zip(list(requests), answers, strict=True):
        try:
            if isinstance(answer, Exception):
                raise answer
            _keep(witness, checkpoint, answer)
        except Exception as exc:  # noqa: BLE001
            failures[witness] = exc
    for witness, exc in failures.items():
        logger.error("%s did not cosign tree size %s: %s", witness.describe(), checkpoint.tree_size, exc)
        WitnessDelivery.objects.update_or_create(
            name=witness.describe()[:300],
            defaults={"failed_at": timezone.now(), "error": f"{type(exc).__name__}: {exc}"[:2000]},
        )
    return [f"{witness.describe()}: {exc}" for witness, exc in failures.items()]


def held_checkpoints(log_id: str) -> tuple[list[dict], list[str]]:
    """The last checkpoint each configured witness cosigned for the log, labelled by witness,
    and the witnesses that could not be asked (each: who and why)."""
    witnesses = configured()
    answers = _parallel(lambda witness: _get(witness, f"/logs/{log_id}"), witnesses)
    held, unreachable = [], []
    for witness, answer in zip(witnesses, answers, strict=True):
        if isinstance(answer, Exception):
            unreachable.append(f"{witness.describe()}: {answer}")
        elif answer.get("checkpoint"):
            held.append({**answer["checkpoint"], "_source": f"the checkpoint witness {witness.name} cosigned"})
    return held, unreachable


def _request(checkpoint: Checkpoint, old_size: int, rotations: list[tuple[int, bytes, bytes]]) -> dict:
    size = checkpoint.tree_size
    if old_size > size:
        raise WitnessRefused(f"it has cosigned tree size {old_size}, past this checkpoint's {size}")
    proof = checkpoints.consistency_proof(old_size, size) if 0 < old_size < size else []
    return {
        "checkpoint": checkpoint.as_dict(),
        "old_size": old_size,
        "consistency": [step.hex() for step in proof],
        "rotations": [
            {
                "event": canonical.decode(),
                "signature": base64.b64encode(signature).decode("ascii"),
                "proof": [step.hex() for step in checkpoints.inclusion_proof(seq, size)],
            }
            for seq, canonical, signature in rotations
        ],
    }


def _rotations(size: int) -> list[tuple[int, bytes, bytes]]:
    """The log's key rotations up to `size`: a witness learns the log's later keys from them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, canonical, signature FROM audit_event WHERE event_type = %s AND seq <= %s ORDER BY seq",
            [KEY_ROTATED, size],
        )
        return [(seq, bytes(canonical), bytes(signature)) for seq, canonical, signature in cursor.fetchall()]


def _keep(witness: CosigningWitness, checkpoint: Checkpoint, answer: dict) -> None:
    """Store a cosignature only once it verifies under the witness's configured key."""
    if not isinstance(answer, dict) or answer.get("witness_id") != witness.witness_id:
        raise WitnessRefused(f"answered for witness {answer.get('witness_id')!r}, not {witness.witness_id}")
    try:
        signature = base64.b64decode(str(answer.get("signature")), validate=True)
    except ValueError:
        raise WitnessRefused("its cosignature is not base64") from None
    statement = cosigned_statement(checkpoint.as_dict(), str(answer.get("cosigned_at")))
    if not signature_valid(public_key_from_raw(witness.public_raw), signature, statement):
        raise WitnessRefused("its cosignature does not verify under its configured public key")
    try:
        with transaction.atomic():
            Cosignature.objects.create(
                checkpoint=checkpoint,
                witness_id=witness.witness_id,
                cosigned_at=answer["cosigned_at"],
                signature=answer["signature"],
            )
    except IntegrityError:
        pass  # another process kept this witness's cosignature of this checkpoint first
    if not WitnessDelivery.objects.filter(name=witness.describe()[:300], tree_size__gt=checkpoint.tree_size).exists():
        WitnessDelivery.objects.update_or_create(
            name=witness.describe()[:300],
            defaults={"tree_size": checkpoint.tree_size, "delivered_at": timezone.now(), "error": ""},
        )


def _parallel(call: Callable[[CosigningWitness], dict], witnesses: list[CosigningWitness]) -> list[dict | Exception]:
    def guarded(witness: CosigningWitness) -> dict | Exception:
        try:
            return call(witness)
        except Exception as exc:  # noqa: BLE001 - returned, so each witness's failure is its own
            return exc

    if len(witnesses) <= 1:
        return [guarded(witness) for witness in witnesses]
    with ThreadPoolExecutor(max_workers=len(witnesses)) as pool:
        return list(pool.map(guarded, witnesses))


def _get(witness: CosigningWitness, path: str) -> dict:
    return _call(urllib.request.Request(witness.url + path, method="GET"))  # noqa: S310 - http(s), checked at load


def _post(witness: CosigningWitness, path: str, body: dict) -> dict:
    request = urllib.request.Request(  # noqa: S310 - http(s), checked at load
        witness.url + path, data=canonicalize(body), headers={"Content-Type": "application/json"}, method="POST"
    )
    return _call(request)


def _call(request: urllib.request.Request) -> dict:
    try:
        with urllib.request.urlopen(request, timeout=settings.AUDIT_COSIGN_TIMEOUT) as response:  # noqa: S310
            return orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            error = orjson.loads(exc.read()).get("error", "")
        except (ValueError, AttributeError):
            error = ""
        raise WitnessRefused(f"HTTP {exc.code}: {error or exc.reason}") from None
