"""Offline verifier of Driftledger evidence bundles (docs/evidence-format.md, "What a verifier checks").

    python -m audit.verifier BUNDLE.zip --trusted-key KEY.pem [--trusted-key …] [--log-id ID]
    python -m audit.verifier BUNDLE.zip --trusted-key KEY.pem --witness-key W1.pem --witness-key W2.pem [--quorum K]
    python -m audit.verifier BUNDLE.zip --internal-only

Needs only Python ≥ 3.11, `cryptography` and `rfc8785`, and this package's pure modules
(audit.merkle, audit.canonical); no Django, no database. Exit 0 and a summary when every check
holds; exit 1 naming the file, the seq and the reason of the first failure; exit 2 on bad usage;
exit 3 when the bundle is internally consistent but no trusted key was given, so nothing shows
where it comes from (`--internal-only` asks for that weaker check and exits 0). With a witness
policy (`--witness-key`, and `--quorum`, by default all of them), the bundle's checkpoint must
carry that many verifying cosignatures of distinct trusted witnesses (format version 2).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import merkle
from audit.canonical import is_canonical
from audit.envelope import (
    BUNDLE_FORMATS,
    CHECKPOINT_MEMBERS,
    COSIGNATURE_MEMBERS,
    ENVELOPE_MEMBERS,
    KEY_ROTATED,
    checkpoint_body,
    cosigned_statement,
    key_id_of,
    rotation_statement,
)

SIGNED_FILES = ("manifest.json", "manifest.sig")
REQUIRED_FILES = ("events.jsonl", "proofs.jsonl", "keys.json")
_ENVELOPE_MEMBERS = frozenset(ENVELOPE_MEMBERS)
# The tail of an events.jsonl line has a fixed length: ,"hash":"<64 hex>","signature":"<88 base64>"}
_TAIL = re.compile(rb',"hash":"([0-9a-f]{64})","signature":"([A-Za-z0-9+/]{86}==)"\}')
_TAIL_LENGTH = 178
_HEAD = b'{"event":'


def _split_line(line: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(event bytes, hash, signature) of canon({"event", "hash", "signature"}), or None."""
    tail = _TAIL.fullmatch(line, len(line) - _TAIL_LENGTH)
    if tail is None or not line.startswith(_HEAD) or len(line) <= len(_HEAD) + _TAIL_LENGTH:
        return None
    return line[len(_HEAD) : -_TAIL_LENGTH], tail.group(1), tail.group(2)


class BundleInvalid(Exception):
    def __init__(self, file: str, reason: str, seq: int | None = None) -> None:
        where = f"{file} seq {seq}" if seq is not None else file
        super().__init__(f"{where}: {reason}")
        self.file, self.seq, self.reason = file, seq, reason

    def __reduce__(self) -> tuple:
        # A worker process sends its rejection back pickled; rebuilt from args alone (the message),
        # unpickling would fail in the pool's result thread and leave the caller waiting forever.
        return type(self), (self.file, self.reason, self.seq)


@dataclass(frozen=True)
class Report:
    log_id: str
    events: int
    first_seq: int
    last_seq: int
    tree_size: int
    checkpoint_key: str
    trusted_keys: tuple[str, ...]
    earlier_checkpoints: int
    data_files: int
    warnings: tuple[str, ...]
    authenticated: bool  # False: no trusted key was given, the bundle's own first key was assumed
    witnesses: Witnessed


@dataclass(frozen=True)
class Witnessed:
    """What the cosignatures of the bundle's checkpoint show."""

    found: int  # cosignatures in the bundle
    vouching: tuple[str, ...]  # "name (witness_id)" of each that verifies (under a policy key, when given)
    notes: tuple[str, ...]  # each cosignature that could not be verified, and why
    quorum: int | None  # the policy's, or None without a policy
    policy_size: int = 0


def _valid_openssl(raw_public: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw_public).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


try:  # optional accelerator: libsodium verifies about twice as fast, and is the stricter verifier
    from nacl.bindings import crypto_sign_open
    from nacl.exceptions import BadSignatureError
    from nacl.exceptions import ValueError as NaclValueError

    def _valid(raw_public: bytes, signature: bytes, data: bytes) -> bool:
        if len(signature) != 64 or len(raw_public) != 32:
            return False
        try:
            crypto_sign_open(signature + data, raw_public)
        except (BadSignatureError, NaclValueError):
            return False
        return True

except ImportError:
    _valid = _valid_openssl


def _b64(text: object, file: str, what: str, seq: int | None = None) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise BundleInvalid(file, f"{what} is not base64", seq) from None


_loads: Callable[[bytes], Any] = json.loads
with contextlib.suppress(ImportError):  # optional accelerator for parsing; the standard library gives the same values
    from orjson import loads as _loads


def _json(data: bytes, file: str, seq: int | None = None):
    try:
        return _loads(data)
    except ValueError as exc:
        raise BundleInvalid(file, f"not JSON: {exc}", seq) from None


# ---- keys ------------------------------------------------------------------------------------


@dataclass
class KeyTable:
    """keys.json: which key signs which seq, and which keys trace to a trusted one."""

    entries: list[dict]
    trusted: set[str]

    def key_at(self, seq: int) -> dict | None:
        for entry in self.entries:
            end = entry["valid_to_seq"]
            if entry["valid_from_seq"] <= seq and (end is None or seq <= end):
                return entry
        return None

    def raw(self, key_id: str) -> bytes | None:
        for entry in self.entries:
            if entry["key_id"] == key_id:
                return entry["raw"]
        return None


def _load_keys(data: bytes) -> list[dict]:
    if _canonical(entries := _json(data, "keys.json")) != data:
        raise BundleInvalid("keys.json", "not canonical JSON")
    if not isinstance(entries, list) or not entries:
        raise BundleInvalid("keys.json", "must be a non-empty list")
    for entry in entries:
        if not isinstance(entry, dict):
            raise BundleInvalid("keys.json", "each key must be an object")
        start, end = entry.get("valid_from_seq"), entry.get("valid_to_seq")
        if not _seq(start) or not (end is None or (_seq(end) and end >= start)):
            raise BundleInvalid("keys.json", f"key {entry.get('key_id')} has no valid seq range")
        raw = _b64(entry.get("public_key"), "keys.json", "public_key")
        if len(raw) != 32 or key_id_of(raw) != entry.get("key_id"):
            raise BundleInvalid("keys.json", f"key {entry.get('key_id')} does not match its public key")
        entry["raw"] = raw
    return sorted(entries, key=lambda e: e["valid_from_seq"])


def _seq(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_key_schedule(entries: list[dict], rotations: list[dict]) -> None:
    """A key enters only through an audit.KeyRotated event: at seq s, the new key is valid from
    s + 1 and the previous one until s. The first key is valid from seq 1; the last, to the end."""
    by_seq = {event["seq"]: event for event in rotations}
    if entries[0]["valid_from_seq"] != 1:
        raise BundleInvalid("keys.json", f"the first key {entries[0]['key_id']} is not valid from seq 1")
    for previous, entry in itertools.pairwise(entries):
        seq = entry["valid_from_seq"] - 1
        payload = by_seq[seq]["payload"] if seq in by_seq else {}
        if payload.get("new_key_id") != entry["key_id"] or payload.get("previous_key_id") != previous["key_id"]:
            raise BundleInvalid(
                "keys.json",
                f"key {entry['key_id']} is valid from seq {seq + 1}, but no {KEY_ROTATED} at seq {seq} "
                f"introduces it after key {previous['key_id']}",
            )
        if previous["valid_to_seq"] != seq:
            raise BundleInvalid("keys.json", f"key {previous['key_id']} must be valid until seq {seq}, its rotation")
    if entries[-1]["valid_to_seq"] is not None:
        raise BundleInvalid("keys.json", f"the last key {entries[-1]['key_id']} has an end, but no key follows it")
    listed = {entry["key_id"] for entry in entries[1:]}
    for event in rotations:
        if event["payload"].get("new_key_id") not in listed:
            raise BundleInvalid("keys.json", f"the key introduced by the {KEY_ROTATED} is not listed", event["seq"])


def _trace_rotations(keys: KeyTable, rotations: list[dict], log_id: str) -> None:
    """Trust flows along audit.KeyRotated events: signed by a trusted key, cross-signed by the new."""
    for event in sorted(rotations, key=lambda e: e["seq"]):
        payload, seq = event["payload"], event["seq"]
        if event["key_id"] not in keys.trusted:
            continue
        new_raw = _b64(payload.get("new_public_key"), "events.jsonl", "new_public_key", seq)
        statement = rotation_statement(
            log_id=log_id, new_key_id=str(payload.get("new_key_id")), previous_key_id=event["key_id"]
        )
        cross = _b64(payload.get("new_key_signature"), "events.jsonl", "new_key_signature", seq)
        if key_id_of(new_raw) != payload.get("new_key_id") or payload.get("previous_key_id") != event["key_id"]:
            raise BundleInvalid("events.jsonl", f"{KEY_ROTATED} names keys that do not match", seq)
        if not _valid(new_raw, cross, statement):
            raise BundleInvalid("events.jsonl", f"{KEY_ROTATED} cross-signature does not verify", seq)
        listed = keys.raw(payload["new_key_id"])
        if listed is not None and listed != new_raw:
            raise BundleInvalid("keys.json", f"key {payload['new_key_id']} differs from its {KEY_ROTATED}", seq)
        keys.trusted.add(payload["new_key_id"])


# ---- events and proofs (parallel) ------------------------------------------------------------


def _check_chunk(job: tuple) -> tuple:
    """Verify a run of event lines and their proof lines; return the chunk's edges for linking."""
    event_lines, proof_lines, key_entries, log_id, tree_size, root = job
    keys = KeyTable(key_entries, set())
    proofs = merkle.BatchInclusionVerifier(tree_size, root)
    first = last = None
    previous_seq, previous_hash = None, None
    used_keys: set[str] = set()
    for line, proof_line in zip(event_lines, proof_lines, strict=True):
        seq, digest, body, event_bytes = _check_event(line, keys, log_id)
        used_keys.add(body["key_id"])
        if previous_seq is not None and seq <= previous_seq:
            raise BundleInvalid("events.jsonl", f"seq {seq} follows seq {previous_seq}: not ascending", seq)
        if previous_seq is not None and seq == previous_seq + 1 and body["prev_hash"] != previous_hash:
            raise BundleInvalid("events.jsonl", "prev_hash does not equal the previous event's hash", seq)
        _check_proof(proof_line, seq, merkle.leaf_hash(event_bytes), tree_size, proofs)
        if first is None:
            first = (seq, body["prev_hash"], body["key_id"])
        previous_seq, previous_hash = seq, digest
        last = (seq, digest)
    return first, last, len(event_lines), used_keys


def _check_event(line: bytes, keys: KeyTable, log_id: str) -> tuple[int, str, dict, bytes]:
    parts = _split_line(line)
    if parts is None:
        raise BundleInvalid("events.jsonl", 'line is not canon({"event", "hash", "signature"})', _seq_hint(line))
    event_bytes, stated_hash, signature = parts
    body = _json(event_bytes, "events.jsonl", _seq_hint(line))
    seq = body.get("seq") if isinstance(body, dict) else None
    if not is_canonical(event_bytes, body):
        raise BundleInvalid("events.jsonl", "event is not RFC 8785 canonical JSON", seq)
    if not isinstance(body, dict) or body.keys() != _ENVELOPE_MEMBERS or not isinstance(seq, int):
        raise BundleInvalid("events.jsonl", "envelope members differ from the format (docs/evidence-format.md)", seq)
    digest = hashlib.sha256(event_bytes).hexdigest()
    if digest != stated_hash.decode():
        raise BundleInvalid("events.jsonl", "hash does not equal SHA-256 of the canonical event", seq)
    if body["log_id"] != log_id:
        raise BundleInvalid("events.jsonl", f"event belongs to log {body['log_id']}, not {log_id}", seq)
    entry = keys.key_at(seq)
    if entry is None or entry["key_id"] != body["key_id"]:
        raise BundleInvalid("events.jsonl", f"signed by key {body['key_id']}, not the key keys.json assigns", seq)
    if not _valid(entry["raw"], base64.b64decode(signature), event_bytes):
        raise BundleInvalid("events.jsonl", f"signature does not verify under key {entry['key_id']}", seq)
    return seq, digest, body, event_bytes


def _seq_hint(line: bytes) -> int | None:
    found = re.search(rb'"seq":(\d+)', line)
    return int(found.group(1)) if found else None


def _check_proof(line: bytes, seq: int, leaf: bytes, tree_size: int, proofs: merkle.BatchInclusionVerifier) -> None:
    proof = _json(line, "proofs.jsonl", seq)
    if not isinstance(proof, dict) or proof.get("seq") != seq:
        raise BundleInvalid("proofs.jsonl", "proof lines do not match the event lines one to one", seq)
    if proof.get("leaf_index") != seq - 1 or proof.get("tree_size") != tree_size:
        raise BundleInvalid("proofs.jsonl", "leaf index or tree size does not match the checkpoint", seq)
    try:
        steps = proof["path"]
        joined = bytes.fromhex("".join(steps))
    except (KeyError, TypeError, ValueError):
        raise BundleInvalid("proofs.jsonl", "path is not a list of hex hashes", seq) from None
    if any(len(step) != 64 for step in steps):
        raise BundleInvalid("proofs.jsonl", "path is not a list of hex hashes", seq)
    path = [joined[i : i + 32] for i in range(0, len(joined), 32)]
    if not proofs.verify(seq - 1, leaf, path):
        raise BundleInvalid("proofs.jsonl", "inclusion proof does not lead to the checkpoint's root", seq)


# ---- the bundle ------------------------------------------------------------------------------


def verify_bundle(
    path: Path,
    trusted_keys: list[bytes],
    *,
    log_id: str | None = None,
    workers: int | None = None,
    witness_keys: list[bytes] | None = None,
    quorum: int | None = None,
) -> Report:
    """Check everything in docs/evidence-format.md; raise BundleInvalid at the first failure.
    `witness_keys` and `quorum` are the witness policy (quorum: by default every witness key)."""
    witness_keys = witness_keys or []
    distinct = len({key_id_of(raw) for raw in witness_keys})
    if witness_keys and quorum is None:
        quorum = distinct
    if witness_keys and not 1 <= quorum <= distinct:  # type: ignore[operator]
        raise ValueError(f"the quorum must lie between 1 and the {distinct} distinct witness key(s)")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleInvalid(str(path), f"not a readable zip file: {exc}") from None
    with archive:
        files = _members(archive)
        for name in (*SIGNED_FILES, *REQUIRED_FILES):
            if name not in files:
                raise BundleInvalid(name, "missing from the bundle")
        manifest_bytes = _read(archive, "manifest.json")
        manifest = _check_manifest(manifest_bytes)
        contents = _check_files(archive, files, manifest["files"])
        warnings: list[str] = []
        keys = KeyTable(_load_keys(contents["keys.json"]), _trusted_ids(trusted_keys, warnings, contents))
        bundle_log = manifest["log_id"]
        if log_id is not None and bundle_log != log_id:
            raise BundleInvalid("manifest.json", f"bundle is of log {bundle_log}, not the expected log {log_id}")
        event_lines = contents["events.jsonl"].splitlines()
        proof_lines = contents["proofs.jsonl"].splitlines()
        if not event_lines:
            raise BundleInvalid("events.jsonl", "holds no event")
        if len(event_lines) != len(proof_lines):
            raise BundleInvalid("proofs.jsonl", f"{len(proof_lines)} proofs for {len(event_lines)} events")
        rotations = _rotations(event_lines)
        _check_key_schedule(keys.entries, rotations)
        _trace_rotations(keys, rotations, bundle_log)
        _check_manifest_signature(archive, manifest_bytes, keys)
        checkpoint = _check_checkpoint(manifest["checkpoint"], bundle_log, keys, "manifest.json")
        witnessed = _check_cosignatures(manifest, contents, witness_keys, quorum)
        root = bytes.fromhex(checkpoint["root_hash"])
        results = _check_events(event_lines, proof_lines, keys, bundle_log, checkpoint["tree_size"], root, workers)
        earlier = _check_consistency(contents.get("consistency.jsonl", b""), checkpoint, keys, bundle_log)
        data = _check_data(contents)
    first_seq, last_seq, used = results
    untrusted = sorted(used - keys.trusted)
    if untrusted:
        raise BundleInvalid("events.jsonl", f"key(s) {', '.join(untrusted)} do not trace to a trusted key")
    return Report(
        bundle_log, len(event_lines), first_seq, last_seq, checkpoint["tree_size"], checkpoint["key_id"],
        tuple(sorted(keys.trusted)), earlier, data, tuple(warnings), bool(trusted_keys), witnessed,
    )  # fmt: skip


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes; a damaged or unreadable member (bad CRC or compressed data, an unknown
    compression method, encryption, a wrong offset) is a reason, not a traceback."""
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BundleInvalid(name, f"cannot be read from the zip: {exc}") from None


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Each member once: of two members of one name, an unzip tool may extract either."""
    files: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.filename in files:
            raise BundleInvalid(info.filename, "is in the zip more than once: which copy is the evidence is ambiguous")
        if info.is_dir():
            raise BundleInvalid(info.filename, "is a directory entry, which the manifest does not list")
        files[info.filename] = info
    return files


def _check_manifest(data: bytes) -> dict:
    manifest = _json(data, "manifest.json")
    if _canonical(manifest) != data:
        raise BundleInvalid("manifest.json", "not canonical JSON")
    if not isinstance(manifest, dict) or manifest.get("format") not in BUNDLE_FORMATS:
        raise BundleInvalid("manifest.json", f"format is not one of {', '.join(BUNDLE_FORMATS)}")
    for name in ("log_id", "created_at", "created_by", "query", "checkpoint", "files"):
        if name not in manifest:
            raise BundleInvalid("manifest.json", f"member {name!r} is missing")
    if not isinstance(manifest["files"], dict) or not isinstance(manifest["checkpoint"], dict):
        raise BundleInvalid("manifest.json", "files and checkpoint must be objects")
    version_2 = manifest["format"] == BUNDLE_FORMATS[1]
    if version_2 != ("cosignatures" in manifest["checkpoint"]) or version_2 != ("witnesses.json" in manifest["files"]):
        raise BundleInvalid(
            "manifest.json",
            "a format 2 bundle, and only it, has checkpoint.cosignatures and lists witnesses.json",
        )
    return manifest


def _check_files(archive: zipfile.ZipFile, files: dict, listed: dict) -> dict[str, bytes]:
    contents = {}
    for name in sorted(files):
        if name in SIGNED_FILES:
            continue
        if name not in listed:
            raise BundleInvalid(name, "is in the bundle but not in the manifest")
        data = _read(archive, name)
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise BundleInvalid(name, "its SHA-256 differs from the manifest's")
        contents[name] = data
    for name in listed:
        if name not in files:
            raise BundleInvalid(name, "is listed in the manifest but missing from the bundle")
    return contents


def _trusted_ids(trusted_keys: list[bytes], warnings: list[str], contents: dict, what: str = "bundle") -> set[str]:
    if trusted_keys:
        return {key_id_of(raw) for raw in trusted_keys}
    genesis = _load_keys(contents["keys.json"])[0]
    warnings.append(
        f"no trusted key given: the {what}'s own first key {genesis['key_id']} was assumed; this shows "
        f"the {what} is internally consistent, not that it comes from the log you expect"
    )
    return {genesis["key_id"]}


def _rotations(event_lines: list[bytes]) -> list[dict]:
    """The bundle's audit.KeyRotated events, by their envelope's own type: the bytes alone only
    say which lines to parse, since any payload may hold {"type": "audit.KeyRotated"} nested."""
    rotations = []
    for line in event_lines:
        if b'"type":"%s"' % KEY_ROTATED.encode() in line:
            parts = _split_line(line)
            if parts is not None:
                event = _json(parts[0], "events.jsonl", _seq_hint(line))
                if isinstance(event, dict) and event.get("type") == KEY_ROTATED:
                    rotations.append(_rotation_shape(event, _seq_hint(line)))
    return rotations


def _rotation_shape(event: dict, seq_hint: int | None) -> dict:
    """These events are read, and trust traced along them, before any signature is checked: the
    members read must be of their type, or a forged line would crash the reading."""
    if not (
        _seq(event.get("seq"))
        and isinstance(event.get("key_id"), str)
        and isinstance(event.get("payload"), dict)
        and all(isinstance(event["payload"].get(name), str) for name in ("new_key_id", "previous_key_id"))
    ):
        raise BundleInvalid("events.jsonl", f"the {KEY_ROTATED} is not of the format", seq_hint)
    return event


def _check_manifest_signature(archive: zipfile.ZipFile, manifest_bytes: bytes, keys: KeyTable) -> None:
    data = _read(archive, "manifest.sig")
    signed = _json(data, "manifest.sig")
    if (
        _canonical(signed) != data
        or not isinstance(signed, dict)
        or set(signed) != {"key_id", "signature"}
        or not isinstance(signed["key_id"], str)
    ):
        raise BundleInvalid("manifest.sig", 'must be canon({"key_id", "signature"})')
    if signed["key_id"] not in keys.trusted:
        raise BundleInvalid("manifest.sig", f"signed by key {signed['key_id']}, which is not trusted")
    raw = keys.raw(signed["key_id"])
    if raw is None or not _valid(raw, _b64(signed["signature"], "manifest.sig", "signature"), manifest_bytes):
        raise BundleInvalid("manifest.sig", "signature does not verify over manifest.json")


def _check_checkpoint(checkpoint: object, log_id: str, keys: KeyTable, file: str) -> dict:
    if not isinstance(checkpoint, dict) or any(name not in checkpoint for name in (*CHECKPOINT_MEMBERS, "signature")):
        raise BundleInvalid(file, "checkpoint lacks members of the format")
    if not _checkpoint_shape(checkpoint):
        raise BundleInvalid(file, "checkpoint's members are not of the format")
    if checkpoint["log_id"] != log_id:
        raise BundleInvalid(file, f"checkpoint is of log {checkpoint['log_id']}, not {log_id}")
    if checkpoint["key_id"] not in keys.trusted:
        raise BundleInvalid(file, f"checkpoint is signed by key {checkpoint['key_id']}, not a trusted key")
    raw = keys.raw(checkpoint["key_id"])
    body = checkpoint_body(checkpoint)
    if raw is None or not _valid(raw, _b64(checkpoint["signature"], file, "checkpoint signature"), body):
        raise BundleInvalid(file, f"checkpoint signature does not verify (tree size {checkpoint['tree_size']})")
    return checkpoint


def _checkpoint_shape(checkpoint: dict) -> bool:
    """Each member of its type, so that a signed but malformed checkpoint is a reason, not a crash."""
    root = checkpoint["root_hash"]
    return (
        all(isinstance(checkpoint[name], str) for name in ("log_id", "timestamp", "key_id", "signature"))
        and _seq(checkpoint["tree_size"])
        and isinstance(root, str)
        and re.fullmatch("[0-9a-f]{64}", root) is not None
    )


# ---- witnesses (format version 2) -------------------------------------------------------------


def _check_cosignatures(manifest: dict, contents: dict, witness_keys: list[bytes], quorum: int | None) -> Witnessed:
    """Which witnesses vouch for the checkpoint. Under a policy, only cosignatures verifying under
    its keys count and fewer than `quorum` is a failure; without one, each is checked under the key
    witnesses.json lists, which shows only that the bundle agrees with itself."""
    if "cosignatures" not in manifest["checkpoint"]:
        if witness_keys:
            raise BundleInvalid(
                "manifest.json", f"a format 1 bundle carries no cosignature; the policy requires {quorum}"
            )
        return Witnessed(0, (), (), None)
    checkpoint, listed = manifest["checkpoint"], _load_witnesses(contents["witnesses.json"])
    cosignatures = checkpoint["cosignatures"]
    if not isinstance(cosignatures, list):
        raise BundleInvalid("manifest.json", "checkpoint.cosignatures must be a list")
    policy = {key_id_of(raw): raw for raw in witness_keys}
    vouching, notes, seen = [], [], set()
    for cosignature in cosignatures:
        if (
            not isinstance(cosignature, dict)
            or set(cosignature) != set(COSIGNATURE_MEMBERS)
            or not all(isinstance(value, str) for value in cosignature.values())
        ):
            raise BundleInvalid(
                "manifest.json", f"a cosignature must be {{{', '.join(COSIGNATURE_MEMBERS)}}}, each a string"
            )
        witness_id = cosignature["witness_id"]
        if witness_id in seen:
            raise BundleInvalid("manifest.json", f"witness {witness_id} cosigns the checkpoint twice")
        seen.add(witness_id)
        name = f"{listed[witness_id]['name']} ({witness_id})" if witness_id in listed else witness_id
        raw = policy.get(witness_id) if witness_keys else listed.get(witness_id, {}).get("raw")
        if raw is None:
            notes.append(f"{name}: {'not a witness of the policy' if witness_keys else 'not listed in witnesses.json'}")
            continue
        signature = _b64(cosignature["signature"], "manifest.json", f"the cosignature of {name}")
        if not isinstance(cosignature["cosigned_at"], str) or not _valid(
            raw, signature, cosigned_statement(checkpoint, cosignature["cosigned_at"])
        ):
            notes.append(f"{name}: its cosignature does not verify over this checkpoint")
            continue
        vouching.append(name)
    if witness_keys and len(vouching) < (quorum or 0):
        reasons = "; ".join(notes) or "no cosignature from a witness of the policy"
        raise BundleInvalid(
            "manifest.json",
            f"{len(vouching)} of the {quorum} witness cosignature(s) the policy requires vouch for the checkpoint of "
            f"tree size {checkpoint['tree_size']} ({reasons})",
        )
    return Witnessed(len(cosignatures), tuple(vouching), tuple(notes), quorum, len(policy))


def _load_witnesses(data: bytes) -> dict[str, dict]:
    entries = _json(data, "witnesses.json")
    if rfc8785.dumps(entries) != data or not isinstance(entries, list):
        raise BundleInvalid("witnesses.json", "must be a canonical JSON list")
    listed = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"witness_id", "public_key", "name"}:
            raise BundleInvalid("witnesses.json", 'each witness must be {"witness_id", "public_key", "name"}')
        raw = _b64(entry["public_key"], "witnesses.json", "public_key")
        if len(raw) != 32 or key_id_of(raw) != entry["witness_id"]:
            raise BundleInvalid("witnesses.json", f"witness {entry['witness_id']} does not match its public key")
        if entry["witness_id"] in listed:
            raise BundleInvalid("witnesses.json", f"witness {entry['witness_id']} is listed twice")
        listed[entry["witness_id"]] = {**entry, "raw": raw}
    return listed


_shared: tuple = ()  # the lines, inherited by forked workers instead of being pickled to them


def _check_range(bounds: tuple[int, int]) -> tuple:
    event_lines, proof_lines, entries, log_id, tree_size, root = _shared
    start, end = bounds
    return _check_chunk((event_lines[start:end], proof_lines[start:end], entries, log_id, tree_size, root))


def _check_events(event_lines, proof_lines, keys: KeyTable, log_id, tree_size, root, workers) -> tuple:
    global _shared
    size = 5000
    _shared = (event_lines, proof_lines, keys.entries, log_id, tree_size, root)
    bounds = [(i, min(i + size, len(event_lines))) for i in range(0, len(event_lines), size)]
    workers = min(workers or os.cpu_count() or 1, len(bounds))
    if threading.active_count() > 1:
        # The workers share the bundle by forking; forking a process whose other threads may
        # hold locks can hang the children. Run as the CLI runs only when alone; else serially.
        workers = 1
    try:
        if workers > 1:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                chunks = pool.map(_check_range, bounds, chunksize=1)
        else:
            chunks = [_check_range(b) for b in bounds]
    finally:
        _shared = ()
    used: set[str] = set()
    previous_last = None
    for first, last, _, chunk_keys in chunks:
        used |= chunk_keys
        if previous_last is not None:
            if first[0] <= previous_last[0]:
                raise BundleInvalid("events.jsonl", "seq is not ascending", first[0])
            if first[0] == previous_last[0] + 1 and first[1] != previous_last[1]:
                raise BundleInvalid("events.jsonl", "prev_hash does not equal the previous event's hash", first[0])
        previous_last = last
    if previous_last is None:
        raise BundleInvalid("events.jsonl", "holds no event")
    if previous_last[0] > tree_size:
        raise BundleInvalid("events.jsonl", f"event beyond the checkpoint's tree size {tree_size}", previous_last[0])
    return chunks[0][0][0], previous_last[0], used


def _check_consistency(data: bytes, checkpoint: dict, keys: KeyTable, log_id: str) -> int:
    count = 0
    for line in data.splitlines():
        entry = _json(line, "consistency.jsonl")
        if not isinstance(entry, dict):
            raise BundleInvalid("consistency.jsonl", "each line must be a JSON object")
        old = _check_checkpoint(entry.get("checkpoint"), log_id, keys, "consistency.jsonl")
        try:
            path = [bytes.fromhex(step) for step in entry["path"]]
        except (KeyError, TypeError, ValueError):
            raise BundleInvalid("consistency.jsonl", "path is not a list of hex hashes") from None
        if not merkle.verify_consistency(
            old["tree_size"], checkpoint["tree_size"], bytes.fromhex(old["root_hash"]),
            bytes.fromhex(checkpoint["root_hash"]), path,
        ):  # fmt: skip
            raise BundleInvalid(
                "consistency.jsonl", f"checkpoint of size {old['tree_size']} is not consistent with the manifest's"
            )
        count += 1
    return count


def _check_data(contents: dict) -> int:
    count = 0
    for name, data in contents.items():
        if name.startswith("data/"):
            if hashlib.sha256(data).hexdigest() != name.removeprefix("data/"):
                raise BundleInvalid(name, "its name is not the SHA-256 of its bytes")
            count += 1
    return count


# ---- command line ----------------------------------------------------------------------------


def _read_public_key(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not an Ed25519 public key in PEM: {exc}") from None
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class SegmentReport:
    log_id: str
    events: int
    first_seq: int
    last_seq: int
    tree_size: int
    checkpoint_key: str
    warnings: tuple[str, ...]
    authenticated: bool  # the checkpoint's key is trusted (given, or traced from one given)
    trusted_keys: tuple[str, ...] = ()  # given and traced


SEGMENT_FILES = ("events.jsonl.gz", "manifest.json", "keys.json", "rotations.jsonl", "rotation_proofs.jsonl")


def verify_segment(path: Path, trusted_keys: list[bytes], *, log_id: str | None = None) -> SegmentReport:
    """Check an archived segment as `audit_archive --copy-out` writes it (docs/evidence-format.md,
    "Archived segments"); raise BundleInvalid at the first failure.

    Trust rests on the checkpoint: its key must be trusted, given or traced from a given key
    through the log's key rotations. Those rotations are proven in the checkpoint's tree, and
    keys.json must agree with them, so the key schedule the events are checked under is the
    log's own. Without a trusted key, the log's first key is assumed (with a warning)."""
    from audit.segment import SegmentInvalid, segment_verify
    from audit.verification import KeyRange, KeySchedule

    contents = {}
    for name in SEGMENT_FILES:
        if not (path / name).is_file():
            raise BundleInvalid(name, f"missing from the segment's directory {path}")
        if name != "events.jsonl.gz":
            contents[name] = (path / name).read_bytes()
    manifest = _json(contents["manifest.json"], "manifest.json")
    if not isinstance(manifest, dict) or _canonical(manifest) != contents["manifest.json"]:
        raise BundleInvalid("manifest.json", "not a canonical JSON object")
    segment_log = manifest.get("log_id")
    if log_id is not None and segment_log != log_id:
        raise BundleInvalid("manifest.json", f"segment is of log {segment_log}, not the expected log {log_id}")
    checkpoint = manifest.get("checkpoint")
    if not (
        isinstance(checkpoint, dict)
        and _seq(checkpoint.get("tree_size"))
        and isinstance(checkpoint.get("key_id"), str)
        and isinstance(segment_log, str)
    ):
        raise BundleInvalid("manifest.json", "the checkpoint or log_id is not of the format")
    size = checkpoint["tree_size"]
    warnings: list[str] = []
    # The schedule as of the checkpoint: keys introduced after it are not the segment's business.
    entries = [e for e in _load_keys(contents["keys.json"]) if e["valid_from_seq"] <= size + 1]
    if not entries:
        raise BundleInvalid("keys.json", f"no key is valid at the checkpoint's tree size {size}")
    entries[-1]["valid_to_seq"] = None
    keys = KeyTable(entries, _trusted_ids(trusted_keys, warnings, contents, "segment"))
    _check_checkpoint_signature(checkpoint, segment_log, keys)
    rotations = _proven_rotations(contents, keys, segment_log, checkpoint)
    _check_key_schedule(keys.entries, rotations)
    try:
        _trace_rotations(keys, rotations, segment_log)
    except BundleInvalid as exc:
        raise BundleInvalid("rotations.jsonl", exc.reason, exc.seq) from None
    authenticated = checkpoint["key_id"] in keys.trusted
    if not authenticated and trusted_keys:
        raise BundleInvalid("manifest.json", f"checkpoint is signed by key {checkpoint['key_id']}, not a trusted key")
    schedule = KeySchedule([KeyRange(e["key_id"], e["raw"], e["valid_from_seq"], e["valid_to_seq"]) for e in entries])
    try:
        with (path / "events.jsonl.gz").open("rb") as data:
            events = segment_verify(data, manifest, keys=schedule)
    except SegmentInvalid as exc:
        raise BundleInvalid("manifest.json" if exc.in_manifest else "events.jsonl.gz", exc.reason, exc.seq) from None
    given = {key_id_of(raw) for raw in trusted_keys}
    if trusted_keys and checkpoint["key_id"] not in given:
        warnings.append(
            f"the checkpoint's key {checkpoint['key_id']} was trusted through the log's key rotations from "
            f"{', '.join(sorted(given))}; the holder of a retired key could sign a checkpoint of another history: "
            f"give {checkpoint['key_id']} itself to rule that out"
        )
    return SegmentReport(
        segment_log, events, manifest["first_seq"], manifest["last_seq"], size, checkpoint["key_id"],
        tuple(warnings), authenticated and bool(trusted_keys), tuple(sorted(keys.trusted)),
    )  # fmt: skip


def _check_checkpoint_signature(checkpoint: dict, log_id: str, keys: KeyTable) -> None:
    """Before anything is read from the checkpoint's tree: its signature, under the key of its id."""
    if checkpoint.get("log_id") != log_id:
        raise BundleInvalid("manifest.json", f"the checkpoint is of log {checkpoint.get('log_id')}, not {log_id}")
    raw = keys.raw(checkpoint["key_id"])
    if raw is None:
        raise BundleInvalid("manifest.json", f"the checkpoint's key {checkpoint['key_id']} is not in keys.json")
    try:
        body = checkpoint_body(checkpoint)
    except (KeyError, ValueError):
        raise BundleInvalid("manifest.json", "the checkpoint's members are not of the format") from None
    if not _valid(raw, _b64(checkpoint.get("signature"), "manifest.json", "the checkpoint's signature"), body):
        raise BundleInvalid(
            "manifest.json", f"the checkpoint's signature does not verify (tree size {checkpoint['tree_size']})"
        )


def _canonical(value: Any) -> bytes | None:
    """RFC 8785 bytes of `value`, or None where it holds what canonical JSON cannot (2^53 and up)."""
    try:
        return rfc8785.dumps(value)
    except ValueError:
        return None


def _proven_rotations(contents: dict, keys: KeyTable, log_id: str, checkpoint: dict) -> list[dict]:
    """The log's audit.KeyRotated events up to the checkpoint, each checked as an events.jsonl
    line and proven in the checkpoint's tree (whose signature segment_verify checks)."""
    lines = contents["rotations.jsonl"].splitlines()
    proofs = contents["rotation_proofs.jsonl"].splitlines()
    if len(lines) != len(proofs):
        raise BundleInvalid("rotation_proofs.jsonl", f"{len(proofs)} proofs for {len(lines)} rotations")
    size = checkpoint["tree_size"]
    try:
        root = bytes.fromhex(str(checkpoint.get("root_hash")))
        verifier = merkle.BatchInclusionVerifier(size, root)
        rotations = []
        for line, proof in zip(lines, proofs, strict=True):
            seq, _, body, event_bytes = _check_event(line, keys, log_id)
            payload = body["payload"]
            if body["type"] != KEY_ROTATED or not isinstance(payload, dict):
                raise BundleInvalid("events.jsonl", f"not an {KEY_ROTATED} event", seq)
            if not all(isinstance(payload.get(name), str) for name in ("new_key_id", "previous_key_id")):
                raise BundleInvalid("events.jsonl", f"the {KEY_ROTATED} names its keys otherwise than the format", seq)
            _check_proof(proof, seq, merkle.leaf_hash(event_bytes), size, verifier)
            rotations.append(body)
    except BundleInvalid as exc:
        file = "rotations.jsonl" if exc.file == "events.jsonl" else "rotation_proofs.jsonl"
        raise BundleInvalid(file, exc.reason, exc.seq) from None
    except ValueError:
        raise BundleInvalid("manifest.json", "the checkpoint's root_hash is not hex") from None
    return rotations


def _segment_main(options: argparse.Namespace, trusted: list[bytes]) -> int:
    if options.witness_key or options.quorum is not None or options.workers is not None:
        print("error: --witness-key, --quorum and --workers are for bundles, not --segment", file=sys.stderr)
        return 2
    try:
        report = verify_segment(options.bundle, trusted, log_id=options.log_id)
    except BundleInvalid as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a shape no check above foresaw
        print(f"INVALID: the segment's files are not of the format ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    facts = (
        f"{report.events} events (seq {report.first_seq}..{report.last_seq}) of log {report.log_id}, included in the "
        f"checkpoint of tree size {report.tree_size} signed by {report.checkpoint_key}"
    )
    if not report.authenticated:
        print(
            f"INTERNALLY CONSISTENT, NOT AUTHENTICATED: {facts}; nothing shows the checkpoint's key is the log's: "
            "give the log's key with --trusted-key"
        )
        return 0 if options.internal_only else 3
    print(f"VALID: {facts}; trusted keys: {', '.join(report.trusted_keys)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.verifier", description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="an evidence bundle (.zip), or with --segment a segment's directory")
    parser.add_argument(
        "--segment",
        action="store_true",
        help="verify an archived segment (the directory audit_archive --copy-out writes)",
    )
    parser.add_argument("--trusted-key", type=Path, action="append", default=[], help="Ed25519 public key PEM")
    parser.add_argument("--log-id", help="the log the bundle must come from")
    parser.add_argument(
        "--witness-key", type=Path, action="append", default=[], help="a trusted witness's Ed25519 public key PEM"
    )
    parser.add_argument("--quorum", type=int, help="cosignatures of distinct trusted witnesses required (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument(
        "--internal-only",
        action="store_true",
        help="without a trusted key: check only that the bundle is internally consistent, and exit 0 if it is",
    )
    options = parser.parse_args(argv)
    if options.internal_only and options.trusted_key:
        print(
            "error: --internal-only is the check without a trusted key: drop it or the --trusted-key", file=sys.stderr
        )
        return 2
    try:
        trusted = [_read_public_key(path) for path in options.trusted_key]
        witness_keys = [_read_public_key(path) for path in options.witness_key]
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if options.segment:
        if not options.bundle.is_dir():
            print(f"error: {options.bundle} is not a directory: --segment takes what audit_archive --copy-out writes",
                  file=sys.stderr)  # fmt: skip
            return 2
        return _segment_main(options, trusted)
    if options.bundle.is_dir():
        print(f"error: {options.bundle} is a directory: a bundle is a .zip file; for a segment, add --segment",
              file=sys.stderr)  # fmt: skip
        return 2
    distinct = len({key_id_of(raw) for raw in witness_keys})
    if options.quorum is not None and not 1 <= options.quorum <= distinct:
        print(f"error: --quorum must lie between 1 and the {distinct} distinct --witness-key given", file=sys.stderr)
        return 2
    try:
        report = verify_bundle(
            options.bundle, trusted, log_id=options.log_id, workers=options.workers,
            witness_keys=witness_keys, quorum=options.quorum,
        )  # fmt: skip
    except BundleInvalid as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    for note in report.witnesses.notes:
        print(f"WITNESS: {note}", file=sys.stderr)
    if not report.authenticated:
        print(
            f"INTERNALLY CONSISTENT, NOT AUTHENTICATED: {report.events} events (seq {report.first_seq}.."
            f"{report.last_seq}) of log {report.log_id} agree with each other and with the checkpoint of tree size "
            f"{report.tree_size}; nothing shows the bundle comes from that log: give the log's key with --trusted-key"
        )
        return 0 if options.internal_only else 3
    print(
        f"VALID: {report.events} events (seq {report.first_seq}..{report.last_seq}) of log {report.log_id}; "
        f"included in the checkpoint of tree size {report.tree_size} signed by {report.checkpoint_key}; "
        f"{report.earlier_checkpoints} earlier checkpoint(s) consistent; {report.data_files} data file(s) intact; "
        f"trusted keys: {', '.join(report.trusted_keys)}; {_witness_summary(report.witnesses)}"
    )
    return 0


def _witness_summary(witnessed: Witnessed) -> str:
    if witnessed.quorum is not None:
        return (
            f"witnesses vouching: {', '.join(witnessed.vouching)} "
            f"({len(witnessed.vouching)} of {witnessed.policy_size}, quorum {witnessed.quorum})"
        )
    return (
        f"{witnessed.found} witness cosignature(s) found, {len(witnessed.vouching)} verifying under the keys "
        "the bundle lists; not required: no --witness-key given"
    )


if __name__ == "__main__":
    sys.exit(main())
