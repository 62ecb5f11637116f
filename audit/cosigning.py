"""Cosigning witnesses: each checkpoint goes to the witnesses of AUDIT_COSIGNING_WITNESSES
(`python -m audit.witness`), with a consistency proof from the last checkpoint each one cosigned.
Their cosignatures are checked against the witness's configured key and kept beside the
checkpoint; evidence bundles carry them (docs/evidence-format.md, version 2).

The witnesses are asked in parallel: the network waits overlap, the database work stays here.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
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
from django.db import connection, transaction
from django.utils import timezone

from audit import checkpoints
from audit.canonical import canonicalize
from audit.envelope import KEY_ROTATED, cosigned_statement, format_time, key_id_of, parse_time
from audit.keys import public_key_from_raw, signature_valid
from audit.models import Checkpoint, Cosignature, LogInfo, WitnessDelivery

logger = logging.getLogger(__name__)


class WitnessRefused(RuntimeError):
    def __init__(self, message: str, *, status: int | None = None, tree_size: int | None = None) -> None:
        super().__init__(message)
        self.status, self.tree_size = status, tree_size


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
    """The configured witnesses, each once (a key listed twice is one witness)."""
    found: dict[str, CosigningWitness] = {}
    for spec in settings.AUDIT_COSIGNING_WITNESSES:
        witness = witness_from_setting(spec)
        found.setdefault(witness.witness_id, witness)
    return list(found.values())


def cosignatures_of(checkpoint: Checkpoint) -> list[dict]:
    """The checkpoint's stored cosignatures that hold: a row of a configured witness whose
    signature does not verify was written past the application; it is left out, and recorded as
    an integrity failure. (Rows of witnesses no longer configured go as they are: a verifier's
    witness policy decides about them.)"""
    return [row.as_dict() for row in _holding(checkpoint)]


def _holding(checkpoint: Checkpoint, witnesses: list[CosigningWitness] | None = None) -> list[Cosignature]:
    by_id = {witness.witness_id: witness for witness in (configured() if witnesses is None else witnesses)}
    statement_of = functools.partial(cosigned_statement, checkpoint.as_dict())
    holding, forged = [], []
    for row in Cosignature.objects.filter(checkpoint=checkpoint).order_by("witness_id"):
        witness = by_id.get(row.witness_id)
        if witness is not None and _answer_problem(witness, row.as_dict(), statement_of):
            forged.append(row.witness_id)
        else:
            holding.append(row)
    if forged:
        from audit.selfcheck import integrity_failure_record

        integrity_failure_record(
            f"audit_cosignature: the cosignature(s) of tree size {checkpoint.tree_size} by witness(es) "
            f"{', '.join(forged)} do not verify under their configured keys: written past the application"
        )
    return holding


def cosign(checkpoint: Checkpoint) -> list[str]:
    """Ask each configured witness that has not cosigned `checkpoint` for its cosignature and keep
    it; return the failures (each also logged and shown on the integrity page).

    One request per witness, in parallel: the consistency proof starts from the last checkpoint
    the witness cosigned as this database knows it, with the key rotations only when the signing
    key changed since. A witness that holds another size, or lacks a key, is asked once more."""
    have = {row.witness_id for row in _holding(checkpoint)}
    pending = {witness: None for witness in configured() if witness.witness_id not in have}
    if not pending:
        return []
    last = _last_cosigned([witness.witness_id for witness in pending])
    starts = {witness: last.get(witness.witness_id, (0, None)) for witness in pending}
    path = f"/logs/{checkpoint.log_id}/cosign"
    answers: dict[CosigningWitness, dict] = {}
    failures: dict[CosigningWitness, Exception] = {}
    built: dict[tuple[int, bool], dict] = {}  # witnesses that start from the same size share one request
    for attempt in (1, 2):
        requests = {}
        for witness in pending:
            old_size, old_key = starts[witness]
            shape = (old_size, old_key != checkpoint.key_id)
            try:
                if shape not in built:
                    built[shape] = _request(checkpoint, old_size, with_rotations=shape[1])
                requests[witness] = built[shape]
            except Exception as exc:  # noqa: BLE001 - one witness failing must not stop the others
                failures[witness] = exc
        replies = _parallel(lambda witness: _post(witness, path, requests[witness]), list(requests))  # noqa: B023
        pending = {}
        for witness, reply in zip(list(requests), replies, strict=True):
            if isinstance(reply, WitnessRefused) and attempt == 1 and reply.status in (403, 409):
                # It holds another size than this database knows (a retry proves from there), or
                # lacks the checkpoint's key (a retry carries the rotations): else it refuses again.
                held = reply.tree_size if reply.tree_size is not None else starts[witness][0]
                if reply.status == 403 or held != starts[witness][0]:
                    starts[witness], pending[witness] = (held, None), None
                    continue
            if isinstance(reply, Exception):
                failures[witness] = reply
            else:
                answers[witness] = reply
    failures |= _keep(checkpoint, answers)
    for witness, problem in failures.items():
        logger.error("%s did not cosign tree size %s: %s", witness.describe(), checkpoint.tree_size, problem)
        WitnessDelivery.objects.update_or_create(
            name=witness.describe()[:300],
            defaults={"failed_at": timezone.now(), "error": f"{type(problem).__name__}: {problem}"[:2000]},
        )
    return [f"{witness.describe()}: {problem}" for witness, problem in failures.items()]


def _last_cosigned(witness_ids: list[str]) -> dict[str, tuple[int, str]]:
    """witness_id → (tree size, key id) of the last checkpoint it cosigned, as stored here."""
    rows = (
        Cosignature.objects.filter(witness_id__in=witness_ids)
        .order_by("witness_id", "-checkpoint_id")
        .distinct("witness_id")
        .values_list("witness_id", "checkpoint_id", "checkpoint__key_id")
    )
    return {witness_id: (size, key_id) for witness_id, size, key_id in rows}


@dataclass(frozen=True)
class Freshest:
    tree_size: int  # 0: no checkpoint is cosigned by a quorum yet
    age_seconds: float  # since that checkpoint's timestamp (or since the log began)


def freshest_cosigned() -> Freshest | None:
    """The newest checkpoint a quorum (AUDIT_WITNESS_QUORUM, by default every configured witness)
    has cosigned, and its age; None when no cosigning witness is configured."""
    witnesses = configured()
    if not witnesses:
        return None
    newest = newest_cosigned(witnesses)
    now = dt.datetime.now(dt.UTC)
    if newest is not None:
        return Freshest(newest.tree_size, (now - parse_time(newest.timestamp)).total_seconds())
    began = LogInfo.objects.values_list("created_at", flat=True).first()
    return Freshest(0, (now - began).total_seconds() if began else 0.0)


def newest_cosigned(witnesses: list[CosigningWitness] | None = None, *, covering: int = 1) -> Checkpoint | None:
    """The newest checkpoint of at least `covering` events that a quorum of the witnesses
    (AUDIT_WITNESS_QUORUM, by default all) cosigned. Read backwards along the cosignatures' index:
    it stops at the first such checkpoint, however many there are."""
    witnesses = configured() if witnesses is None else witnesses
    if not witnesses:
        return None
    quorum = _quorum(witnesses)
    below = None
    for _ in range(_CANDIDATES):  # each candidate's rows are checked: a forged row counts for nothing
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tree_size FROM audit_cosignature WHERE witness_id = ANY(%s) AND tree_size >= %s"
                " AND (%s::bigint IS NULL OR tree_size < %s::bigint)"
                " GROUP BY tree_size HAVING count(*) >= %s ORDER BY tree_size DESC LIMIT 1",
                [[witness.witness_id for witness in witnesses], covering, below, below, quorum],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        candidate = Checkpoint.objects.get(tree_size=row[0])
        ids = {witness.witness_id for witness in witnesses}
        if len({r.witness_id for r in _holding(candidate, witnesses)} & ids) >= quorum:
            return candidate
        below = candidate.tree_size
    return None


_CANDIDATES = 20


def _quorum(witnesses: list[CosigningWitness]) -> int:
    """AUDIT_WITNESS_QUORUM, between 1 and the number of distinct witnesses (0: all of them)."""
    distinct = len({witness.witness_id for witness in witnesses})
    wanted = settings.AUDIT_WITNESS_QUORUM
    return distinct if wanted <= 0 else min(wanted, distinct)


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


def _request(checkpoint: Checkpoint, old_size: int, *, with_rotations: bool) -> dict:
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
            for seq, canonical, signature in (_rotations(size) if with_rotations else [])
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


def _keep(checkpoint: Checkpoint, answers: dict[CosigningWitness, dict]) -> dict[CosigningWitness, Exception]:
    """Store the cosignatures that verify under their witness's configured key, in one
    transaction; return the witnesses whose answer did not."""
    statement_of = functools.partial(cosigned_statement, checkpoint.as_dict())
    rows: list[Cosignature] = []
    failures: dict[CosigningWitness, Exception] = {}
    for witness, answer in answers.items():
        problem = _answer_problem(witness, answer, statement_of)
        if problem:
            failures[witness] = WitnessRefused(problem)
            continue
        rows.append(
            Cosignature(
                checkpoint=checkpoint,
                witness_id=witness.witness_id,
                cosigned_at=answer["cosigned_at"],
                signature=answer["signature"],
            )
        )
    if rows:
        names = [witness.describe()[:300] for witness in answers.keys() - failures.keys()]
        with transaction.atomic(), connection.cursor() as cursor:
            Cosignature.objects.bulk_create(rows, ignore_conflicts=True)  # another process may have kept one first
            cursor.execute(_DELIVERED_SQL, {"names": names, "size": checkpoint.tree_size, "now": timezone.now()})
    return failures


# What each witness last received, in one statement (never moved back by a late older checkpoint).
_DELIVERED_SQL = """
INSERT INTO audit_witness_delivery (name, tree_size, delivered_at, failed_at, error)
SELECT name, %(size)s, %(now)s, NULL, '' FROM unnest(%(names)s::text[]) AS name
ON CONFLICT (name) DO UPDATE SET tree_size = EXCLUDED.tree_size, delivered_at = EXCLUDED.delivered_at, error = ''
 WHERE audit_witness_delivery.tree_size IS NULL OR audit_witness_delivery.tree_size <= EXCLUDED.tree_size
"""


def _answer_problem(witness: CosigningWitness, answer: dict, statement_of: Callable[[str], bytes]) -> str | None:
    if not isinstance(answer, dict) or answer.get("witness_id") != witness.witness_id:
        return f"it answered as witness {answer.get('witness_id') if isinstance(answer, dict) else None!r}"
    cosigned_at = answer.get("cosigned_at")
    try:
        signature = base64.b64decode(str(answer.get("signature")), validate=True)
        if not isinstance(cosigned_at, str) or format_time(parse_time(cosigned_at)) != cosigned_at:
            raise ValueError(cosigned_at)
    except ValueError:
        return "its cosignature is not base64, or its time is not RFC 3339 UTC with microseconds"
    statement = statement_of(cosigned_at)
    if not signature_valid(public_key_from_raw(witness.public_raw), signature, statement):
        return "its cosignature does not verify under its configured public key"
    return None


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
            body = orjson.loads(exc.read())
            error, held = str(body.get("error", "")), body.get("tree_size")
        except (ValueError, AttributeError):
            error, held = "", None
        held = held if isinstance(held, int) and not isinstance(held, bool) else None
        raise WitnessRefused(f"HTTP {exc.code}: {error or exc.reason}", status=exc.code, tree_size=held) from None
