"""A witness: an independent process that cosigns a log's checkpoints (docs/evidence-format.md, version 2).

    python -m audit.witness init  --state DIR [--name NAME]     make the witness's key, print it
    python -m audit.witness trust --state DIR --log-id ID --log-key PEM
    python -m audit.witness serve --state DIR [--host 127.0.0.1] [--port 8700]
    python -m audit.witness show  --state DIR                   its public key, id and logs

It cosigns a checkpoint only when a key of the log signed it and an RFC 9162 consistency proof
shows it extends the last checkpoint the witness cosigned for that log; so it never cosigns two
roots for one tree size, and a history rewritten with a stolen signing key gets no cosignature.
It follows key rotations through the log's own `audit.KeyRotated` events, each with an inclusion
proof in the checkpoint it comes with. No Django, no database: its state is a directory of files,
each replaced atomically; one process holds a directory at a time.

HTTP (JSON):
    GET  /                       {"witness_id", "public_key", "name"}
    GET  /logs/<log_id>          {"log_id", "checkpoint", "cosignature"}: the last one it cosigned
    POST /logs/<log_id>/cosign   {"checkpoint", "old_size", "consistency": [hex], "rotations": [...]}
                                 → 200 {"witness_id", "cosigned_at", "signature"}
                                 → 4xx {"error", "tree_size"}: 400 malformed, 403 not signed by the
                                   log, 404 log not followed, 409 not an extension (or a stale
                                   old_size: retry from "tree_size")
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import merkle
from audit.canonical import canonicalize, is_canonical
from audit.envelope import (
    CHECKPOINT_MEMBERS,
    KEY_ROTATED,
    checkpoint_body,
    cosigned_statement,
    format_time,
    key_id_of,
    rotation_statement,
)
from audit.keys import public_raw_from_pem

MAX_REQUEST_BYTES = 1 << 20
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def valid(raw: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str, tree_size: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.tree_size = status, message, tree_size


@dataclass
class LogState:
    """What the witness holds for one log: the log's keys it knows and its last cosigned checkpoint."""

    log_id: str
    keys: list[dict]  # [{"key_id", "public_key" (base64 raw), "valid_from_seq"}], by valid_from_seq
    checkpoint: dict | None = None
    cosignature: dict | None = None

    def as_dict(self) -> dict:
        return {
            "log_id": self.log_id,
            "keys": self.keys,
            "checkpoint": self.checkpoint,
            "cosignature": self.cosignature,
        }

    @property
    def tree_size(self) -> int:
        return self.checkpoint["tree_size"] if self.checkpoint else 0


def cosign(state: LogState, request: Any, key: Ed25519PrivateKey, now: dt.datetime) -> tuple[LogState, dict]:
    """The new state and the cosignature for `request`, or Refused. Pure but for the signing."""
    if not isinstance(request, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, "the request must be a JSON object")
    checkpoint = _checkpoint(request.get("checkpoint"), state.log_id)
    keys = _learn_rotations(state, request.get("rotations", []), checkpoint)
    current = key_at(keys, checkpoint["tree_size"] + 1)  # the key the log signs with after that size
    signature = _b64(checkpoint["signature"], "checkpoint signature")
    if checkpoint["key_id"] != current["key_id"] or not valid(
        base64.b64decode(current["public_key"]), signature, checkpoint_body(checkpoint)
    ):
        raise Refused(
            HTTPStatus.FORBIDDEN,
            f"the checkpoint of size {checkpoint['tree_size']} is not signed by key {current['key_id']}, the key"
            f" of log {state.log_id} at that size as this witness knows it (it names key {checkpoint['key_id']})",
        )
    size, old = checkpoint["tree_size"], state.checkpoint
    if old is not None:
        if size < old["tree_size"]:
            raise Refused(
                HTTPStatus.CONFLICT,
                f"tree size {size} is older than the checkpoint of size {old['tree_size']} this witness cosigned",
                old["tree_size"],
            )
        if size == old["tree_size"]:
            if checkpoint["root_hash"] != old["root_hash"]:
                raise Refused(
                    HTTPStatus.CONFLICT,
                    f"this witness cosigned another root for tree size {size}: the log equivocates",
                    size,
                )
            assert state.cosignature is not None  # stored with every cosigned checkpoint
            return state, state.cosignature  # the same tree: the cosignature it gave
        if request.get("old_size") != old["tree_size"]:
            raise Refused(
                HTTPStatus.CONFLICT,
                f"the consistency proof must start from tree size {old['tree_size']}, not {request.get('old_size')}",
                old["tree_size"],
            )
        proof = _hashes(request.get("consistency"), "consistency")
        if not merkle.verify_consistency(
            old["tree_size"], size, bytes.fromhex(old["root_hash"]), bytes.fromhex(checkpoint["root_hash"]), proof
        ):
            raise Refused(
                HTTPStatus.CONFLICT,
                f"tree size {size} is not an extension of the checkpoint of size {old['tree_size']} this witness"
                " cosigned: the log's history was rewritten",
                old["tree_size"],
            )
    cosigned_at = format_time(now)
    cosignature = {
        "witness_id": key_id_of(raw_public(key.public_key())),
        "cosigned_at": cosigned_at,
        "signature": base64.b64encode(key.sign(cosigned_statement(checkpoint, cosigned_at))).decode("ascii"),
    }
    stored = {name: checkpoint[name] for name in (*CHECKPOINT_MEMBERS, "signature")}
    return LogState(state.log_id, keys, stored, cosignature), cosignature


def _checkpoint(value: Any, log_id: str) -> dict:
    if not isinstance(value, dict) or any(name not in value for name in (*CHECKPOINT_MEMBERS, "signature")):
        raise Refused(HTTPStatus.BAD_REQUEST, f"checkpoint must hold {', '.join(CHECKPOINT_MEMBERS)} and signature")
    size = value["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise Refused(HTTPStatus.BAD_REQUEST, "tree_size must be a positive integer")
    if not isinstance(value["root_hash"], str) or not _HEX64.match(value["root_hash"]):
        raise Refused(HTTPStatus.BAD_REQUEST, "root_hash must be 64 lowercase hex characters")
    if not all(isinstance(value[name], str) for name in ("log_id", "timestamp", "key_id", "signature")):
        raise Refused(HTTPStatus.BAD_REQUEST, "log_id, timestamp, key_id and signature must be strings")
    if value["log_id"] != log_id:
        raise Refused(HTTPStatus.BAD_REQUEST, f"the checkpoint is of log {value['log_id']}, not {log_id}")
    return value


def key_at(keys: list[dict], seq: int) -> dict:
    """The key that signs event `seq`: the last one valid from `seq` or before. A key is valid from
    its `valid_from_seq` until the next key takes over; a retired key signs nothing newer."""
    return [key for key in keys if key["valid_from_seq"] <= seq][-1]


def _learn_rotations(state: LogState, rotations: Any, checkpoint: dict) -> list[dict]:
    """The log's keys, with those its audit.KeyRotated events introduce, in seq order: each event
    signed by the key valid at its seq (not by a retired one), cross-signed by the new key, and
    included in the checkpoint's tree. A rotation that contradicts the key history the witness
    holds is refused."""
    if not isinstance(rotations, list):
        raise Refused(HTTPStatus.BAD_REQUEST, "rotations must be a list")
    keys = [dict(key) for key in state.keys]
    parsed = []
    for item in rotations:
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            raise Refused(
                HTTPStatus.BAD_REQUEST, 'each rotation must be {"event": canonical JSON, "signature", "proof"}'
            )
        try:
            data = item["event"].encode()
            event = json.loads(data)
        except (ValueError, UnicodeError, RecursionError):
            raise Refused(HTTPStatus.BAD_REQUEST, "a rotation's event is not JSON") from None
        if not isinstance(event, dict) or not is_canonical(data, event) or event.get("type") != KEY_ROTATED:
            raise Refused(HTTPStatus.BAD_REQUEST, f"a rotation's event must be a canonical {KEY_ROTATED}")
        seq, payload = event.get("seq"), event.get("payload")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not isinstance(payload, dict):
            raise Refused(
                HTTPStatus.BAD_REQUEST, f"a rotation's event must be a {KEY_ROTATED} with a seq and a payload"
            )
        parsed.append((seq, event, data, item))
    for seq, event, data, item in sorted(parsed, key=lambda p: p[0]):
        payload, where = event["payload"], f"the {KEY_ROTATED} at seq {seq}"
        known = [key for key in keys if key["valid_from_seq"] == seq + 1]
        if known:
            if known[0]["key_id"] != payload.get("new_key_id"):
                raise Refused(HTTPStatus.FORBIDDEN, f"{where} contradicts the rotation at that seq this witness holds")
            continue
        if seq + 1 <= keys[-1]["valid_from_seq"]:
            raise Refused(HTTPStatus.FORBIDDEN, f"{where} comes before the last rotation this witness holds")
        signer = key_at(keys, seq)
        if event.get("log_id") != state.log_id or event.get("key_id") != signer["key_id"]:
            raise Refused(
                HTTPStatus.FORBIDDEN,
                f"{where} is not of this log, or not signed by key {signer['key_id']}, the log's key at that seq",
            )
        if not valid(base64.b64decode(signer["public_key"]), _b64(item.get("signature"), "rotation signature"), data):
            raise Refused(HTTPStatus.FORBIDDEN, f"{where}: its signature does not verify")
        new_raw = _b64(payload.get("new_public_key"), "new_public_key")
        statement = rotation_statement(
            log_id=state.log_id, new_key_id=str(payload.get("new_key_id")), previous_key_id=signer["key_id"]
        )
        if (
            key_id_of(new_raw) != payload.get("new_key_id")
            or payload.get("previous_key_id") != signer["key_id"]
            or not valid(new_raw, _b64(payload.get("new_key_signature"), "new_key_signature"), statement)
        ):
            raise Refused(HTTPStatus.FORBIDDEN, f"{where}: the new key's cross-signature does not verify")
        proof = _hashes(item.get("proof"), "rotation proof")
        root = bytes.fromhex(checkpoint["root_hash"])
        if not seq <= checkpoint["tree_size"] or not merkle.verify_inclusion(
            seq - 1, checkpoint["tree_size"], merkle.leaf_hash(data), proof, root
        ):
            raise Refused(HTTPStatus.FORBIDDEN, f"{where} is not included in the checkpoint's tree")
        keys.append(
            {
                "key_id": payload["new_key_id"],
                "public_key": base64.b64encode(new_raw).decode(),
                "valid_from_seq": seq + 1,
            }
        )
    return keys


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise Refused(HTTPStatus.BAD_REQUEST, f"{what} is not base64") from None


def _hashes(value: Any, what: str) -> list[bytes]:
    if not isinstance(value, list) or not all(isinstance(v, str) and _HEX64.match(v) for v in value):
        raise Refused(HTTPStatus.BAD_REQUEST, f"{what} must be a list of 64-character hex hashes")
    return [bytes.fromhex(v) for v in value]


# ---- the state directory -------------------------------------------------------------------


class StateDir:
    """DIR/witness.pem (its private key, 0600), DIR/witness.json (its name), DIR/logs/<log_id>.json."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def init(self, name: str) -> Ed25519PrivateKey:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / "witness.pem"
        if target.exists():
            raise SystemExit(f"error: {target} exists: this directory already holds a witness")
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        self._write(self.path / "witness.json", {"name": name})
        (self.path / "logs").mkdir(exist_ok=True)
        return key

    def key(self) -> Ed25519PrivateKey:
        target = self.path / "witness.pem"
        try:
            key = serialization.load_pem_private_key(target.read_bytes(), password=None)
        except FileNotFoundError:
            raise SystemExit(
                f"error: {target} is missing: run `python -m audit.witness init --state {self.path}`"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SystemExit(f"error: {target} is not an Ed25519 private key")
        return key

    def name(self) -> str:
        return json.loads((self.path / "witness.json").read_bytes())["name"]

    def log(self, log_id: str) -> LogState | None:
        if not _UUID.match(log_id):
            return None
        try:
            data = json.loads((self.path / "logs" / f"{log_id}.json").read_bytes())
        except FileNotFoundError:
            return None
        return LogState(data["log_id"], data["keys"], data["checkpoint"], data["cosignature"])

    def logs(self) -> list[LogState]:
        return [state for file in sorted((self.path / "logs").glob("*.json")) if (state := self.log(file.stem))]

    def save(self, state: LogState) -> None:
        self._write(self.path / "logs" / f"{state.log_id}.json", state.as_dict())

    @staticmethod
    def _write(target: Path, data: dict) -> None:
        temporary = target.with_name(f".{target.name}.tmp")
        with temporary.open("wb") as handle:
            handle.write(canonicalize(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @contextlib.contextmanager
    def held(self):
        """One process per directory: a second would cosign from a state the first is changing."""
        self.key()  # a directory `init` made, with the witness's key: else a clear error, not a traceback
        with (self.path / ".lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SystemExit(f"error: another witness process holds {self.path}") from None
            yield


# ---- HTTP ------------------------------------------------------------------------------------


def _not_followed(log_id: str) -> str:
    return f"this witness does not follow log {log_id}: its operator adds it with `python -m audit.witness trust`"


class WitnessServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: StateDir) -> None:
        super().__init__(address, WitnessHandler)
        self.state, self.key, self.lock = state, state.key(), threading.Lock()
        self.identity = {
            "witness_id": key_id_of(raw_public(self.key.public_key())),
            "public_key": base64.b64encode(raw_public(self.key.public_key())).decode("ascii"),
            "name": state.name(),
        }


class WitnessHandler(BaseHTTPRequestHandler):
    server: WitnessServer
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may idle or trickle: a slow client holds no thread for ever

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"witness {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        if self.path == "/":
            return self._answer(HTTPStatus.OK, self.server.identity)
        found = re.fullmatch(r"/logs/([0-9a-f-]{36})", self.path)
        state = self.server.state.log(found.group(1)) if found else None
        if state is None:
            return self._answer(HTTPStatus.NOT_FOUND, {"error": _not_followed(self.path.rpartition("/")[2])})
        return self._answer(
            HTTPStatus.OK, {"log_id": state.log_id, "checkpoint": state.checkpoint, "cosignature": state.cosignature}
        )

    def do_POST(self) -> None:
        found = re.fullmatch(r"/logs/([0-9a-f-]{36})/cosign", self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if found is None:
            return self._answer(HTTPStatus.NOT_FOUND, {"error": "POST /logs/<log_id>/cosign"})
        if not 0 < length <= MAX_REQUEST_BYTES:
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": f"a request body of 1 to {MAX_REQUEST_BYTES} bytes"})
        body = self.rfile.read(length)
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):
            return self._answer(HTTPStatus.BAD_REQUEST, {"error": "the body is not JSON"})
        with self.server.lock:
            state = self.server.state.log(found.group(1))
            if state is None:
                return self._answer(HTTPStatus.NOT_FOUND, {"error": _not_followed(found.group(1))})
            try:
                new_state, cosignature = cosign(state, request, self.server.key, dt.datetime.now(dt.UTC))
            except Refused as refusal:
                return self._answer(refusal.status, {"error": refusal.message, "tree_size": refusal.tree_size})
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError, UnicodeError) as error:
                # A shape cosign() does not name precisely: still the request's fault, and nothing is signed.
                return self._answer(HTTPStatus.BAD_REQUEST, {"error": f"malformed request: {type(error).__name__}"})
            if new_state is not state:
                self.server.state.save(new_state)  # durable before it is answered
        return self._answer(HTTPStatus.OK, cosignature)

    def _answer(self, status: HTTPStatus, body: dict) -> None:
        try:
            data = canonicalize(body)
        except (ValueError, UnicodeError):  # an error quoting what the request sent (a lone surrogate)
            data = json.dumps(body, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode()
        if status != HTTPStatus.OK:
            self.close_connection = True  # a refused request's unread body must not be read as the next one
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# ---- command line ----------------------------------------------------------------------------


def _public_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    try:
        return public_raw_from_pem(data)
    except ValueError as exc:
        raise SystemExit(f"error: {path} is not an Ed25519 public key in PEM ({exc})") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit.witness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("init", "trust", "serve", "show"):
        sub = commands.add_parser(name)
        sub.add_argument("--state", type=Path, required=True, help="the witness's own directory")
        if name == "init":
            sub.add_argument("--name", default="witness", help="a name people read in bundles")
        if name == "trust":
            sub.add_argument("--log-id", required=True, help="the log's id (LogInfo, every event's log_id)")
            sub.add_argument("--log-key", type=Path, required=True, help="the log's first public key, PEM")
        if name == "serve":
            sub.add_argument("--host", default="127.0.0.1")
            sub.add_argument("--port", type=int, default=8700)
    options = parser.parse_args(argv)
    state = StateDir(options.state)
    if options.command == "init":
        key = state.init(options.name)
        print(
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode(),
            end="",
        )
        print(f"witness_id {key_id_of(raw_public(key.public_key()))}", file=sys.stderr)
    elif options.command == "trust":
        if not _UUID.match(options.log_id):
            raise SystemExit(f"error: {options.log_id!r} is not a log id (a lowercase UUID)")
        raw = _public_key_file(options.log_key)
        with state.held():
            if state.log(options.log_id) is not None:
                raise SystemExit(f"error: this witness already follows log {options.log_id}")
            state.key()
            first = {"key_id": key_id_of(raw), "public_key": base64.b64encode(raw).decode("ascii"), "valid_from_seq": 1}
            state.save(LogState(options.log_id, [first]))
        print(f"following log {options.log_id} from key {key_id_of(raw)}")
    elif options.command == "show":
        key = state.key()
        print(f"witness_id {key_id_of(raw_public(key.public_key()))} name {state.name()}")
        for log in state.logs():
            keys = ", ".join(f"{key['key_id']} from seq {key['valid_from_seq']}" for key in log.keys)
            print(f"log {log.log_id}: cosigned tree size {log.tree_size}, keys {keys}")
    else:
        with state.held():
            server = WitnessServer((options.host, options.port), state)
            print(
                f"witness {server.identity['witness_id']} listening on {options.host}:{server.server_port}", flush=True
            )
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
