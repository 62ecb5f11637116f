"""Signed checkpoints from stored nodes, proofs for auditors, and witnesses outside the database."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit import checkpoints, keyring, merkle
from audit.canonical import canonicalize
from audit.checkpoints import CheckpointError
from audit.models import Checkpoint, Cosignature, Event, LogVerification
from audit.store import append
from audit.tasks import checkpoint_if_grown
from audit.verify import verify_log
from audit.witnesses import DirectoryWitness, WitnessConflict, read_witnessed
from tests.audit.factories import noted_event
from tests.owner import as_owner


@pytest.fixture
def witness_dir(tmp_path, settings):
    path = tmp_path / "witness"
    settings.AUDIT_WITNESSES = [{"class": "audit.witnesses.DirectoryWitness", "options": {"path": str(path)}}]
    return path


def _append(count: int) -> None:
    for _ in range(count):
        event = noted_event()
        append([event], expected={event.stream: 0})


def _reference_leaves() -> list[bytes]:
    return [merkle.leaf_hash(bytes(c)) for c in Event.objects.order_by("seq").values_list("canonical", flat=True)]


@pytest.mark.django_db
def test_checkpoint_root_is_the_rfc9162_root_of_the_events_and_is_signed(witness_dir):
    _append(37)
    checkpoint = checkpoints.checkpoint_create(publish=False)
    assert checkpoint.tree_size == 37
    assert checkpoint.root_hash == merkle.tree_hash(_reference_leaves()).hex()
    key = keyring.current_signing_key()
    assert checkpoint.key_id == key.key_id
    signed = canonicalize(
        {k: checkpoint.as_dict()[k] for k in ("log_id", "tree_size", "root_hash", "timestamp", "key_id")}
    )
    Ed25519PublicKey.from_public_bytes(key.public_raw).verify(base64.b64decode(checkpoint.signature), signed)
    assert checkpoints.checkpoint_create(publish=False).tree_size == 37  # not grown: no new checkpoint
    assert Checkpoint.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("at_once", [checkpoints.LEAVES_AT_ONCE, 3])  # slices that end inside subtrees too
def test_incremental_checkpoints_store_nodes_and_serve_every_proof(witness_dir, monkeypatch, at_once):
    monkeypatch.setattr(checkpoints, "LEAVES_AT_ONCE", at_once)
    sizes = []
    for batch in (5, 1, 26, 64):
        _append(batch)
        sizes.append(checkpoints.checkpoint_create(publish=False).tree_size)
    leaves = _reference_leaves()
    for size in sizes:
        root = bytes.fromhex(Checkpoint.objects.get(tree_size=size).root_hash)
        assert root == merkle.tree_hash(leaves[:size]) == checkpoints.root_at(size)
        for seq in range(1, size + 1):
            proof = checkpoints.inclusion_proof(seq, size)
            assert merkle.verify_inclusion(seq - 1, size, leaves[seq - 1], proof, root)
    for old in sizes:
        for new in sizes:
            if old <= new:
                proof = checkpoints.consistency_proof(old, new)
                old_root, new_root = checkpoints.root_at(old), checkpoints.root_at(new)
                assert merkle.verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.django_db
def test_proofs_beyond_the_latest_checkpoint_or_outside_the_tree_are_refused(witness_dir):
    _append(4)
    checkpoints.checkpoint_create(publish=False)
    with pytest.raises(checkpoints.CheckpointError, match="beyond the latest checkpoint"):
        checkpoints.inclusion_proof(1, 5)
    with pytest.raises(checkpoints.CheckpointError, match="not in a tree of size 4"):
        checkpoints.inclusion_proof(0, 4)
    with pytest.raises(checkpoints.CheckpointError, match="no consistency proof"):
        checkpoints.consistency_proof(3, 2)


@pytest.mark.django_db
@pytest.mark.parametrize("table", ["audit_checkpoint", "audit_merkle_node", "audit_cosignature"])
def test_checkpoints_and_nodes_are_append_only(witness_dir, table):
    _append(8)
    checkpoint = checkpoints.checkpoint_create(publish=False)
    Cosignature.objects.create(checkpoint=checkpoint, witness_id="0" * 16, cosigned_at="-", signature="-")
    with connection.cursor() as cursor:  # its deferred foreign-key check, done now
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for sql in (f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)


def test_directory_witness_never_overwrites_and_flags_equivocation(tmp_path):
    witness = DirectoryWitness(tmp_path)
    checkpoint = {"log_id": "l", "tree_size": 3, "root_hash": "aa", "timestamp": "t", "key_id": "k", "signature": "s"}
    witness.publish(checkpoint)
    witness.publish(checkpoint)  # the same checkpoint again is fine
    with pytest.raises(WitnessConflict):
        witness.publish(checkpoint | {"root_hash": "bb"})
    assert read_witnessed(tmp_path) == [checkpoint]


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append((self.headers["Content-Type"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_checkpoints_are_published_to_a_directory_and_an_http_witness(committed_log, witness_dir, settings):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received = []
    settings.AUDIT_WITNESSES = [
        *settings.AUDIT_WITNESSES,
        {"class": "audit.witnesses.HttpWitness", "options": {"url": f"http://127.0.0.1:{server.server_port}/cp"}},
    ]
    try:
        _append(6)
        stdout = io.StringIO()
        call_command("audit_checkpoint", stdout=stdout)
    finally:
        server.shutdown()
    assert "tree size 6" in stdout.getvalue()
    (held,) = read_witnessed(witness_dir)
    assert held == Checkpoint.objects.get().as_dict()
    ((content_type, body),) = _Receiver.received
    assert content_type == "application/json"
    assert json.loads(body) == held


# ---- what only witnesses can catch ------------------------------------------------------------


def _superuser(sql: str, params=()) -> None:
    as_owner(sql, params, ("audit_event", "audit_checkpoint", "audit_merkle_node"))


@pytest.fixture
def witnessed_log(committed_log, witness_dir):
    for batch in (10, 10, 10):
        _append(batch)
        call_command("audit_checkpoint", stdout=io.StringIO())
    assert [c["tree_size"] for c in read_witnessed(witness_dir)] == [10, 20, 30]
    return witness_dir


def _verify_with_witness(witness_dir) -> tuple[int, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", "--witness", str(witness_dir), stdout=stdout, stderr=stderr)
    except SystemExit as exited:
        return exited.code, stderr.getvalue()
    return 0, stdout.getvalue()


def test_intact_log_is_consistent_with_its_witnesses(witnessed_log):
    _append(3)
    code, output = _verify_with_witness(witnessed_log)
    assert code == 0, output
    assert "consistent with 3 checkpoint(s) stored or witnessed" in output


def test_truncated_tail_is_caught_only_with_the_witness(witnessed_log):
    _superuser("DELETE FROM audit_event WHERE seq > 25")
    assert verify_log().ok  # the chain alone cannot see a missing tail
    code, output = _verify_with_witness(witnessed_log)
    assert code == 1
    assert "covers 30 events but the log holds 25" in output


def test_restored_old_backup_that_grew_another_history_is_caught(witnessed_log):
    # The backup taken at 20 events is restored (its checkpoints stop at 20), then life goes on.
    _superuser("DELETE FROM audit_event WHERE seq > 20")
    _superuser("DELETE FROM audit_checkpoint WHERE tree_size > 20")
    _superuser("DELETE FROM audit_merkle_node")
    _append(15)
    assert verify_log().ok
    code, output = _verify_with_witness(witnessed_log)
    assert code == 1
    assert "witnessed checkpoint of size 30" in output
    assert "is not a prefix of the log" in output


def test_rewrite_re_signed_with_the_logs_own_key_is_caught(witnessed_log):
    key = keyring.current_signing_key()
    rows = list(Event.objects.filter(seq__gte=12).order_by("seq").values_list("seq", "canonical"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT hash FROM audit_event WHERE seq = 11")
        prev_hash = bytes(cursor.fetchone()[0]).hex()
    for seq, canonical in rows:  # rewrite seq 12 and re-chain, re-sign everything after it
        body = orjson.loads(bytes(canonical))
        if seq == 12:
            body["payload"]["severity"] = "info"
        body["prev_hash"] = prev_hash
        forged = canonicalize(body)
        digest = hashlib.sha256(forged).digest()
        _superuser(
            "UPDATE audit_event SET canonical = %s, hash = %s, leaf_hash = %s, signature = %s,"
            " payload = %s::jsonb WHERE seq = %s",
            (forged, digest, merkle.leaf_hash(forged), key.sign(forged), orjson.dumps(body["payload"]).decode(), seq),
        )
        prev_hash = digest.hex()
    assert verify_log().ok  # every hash, signature and link is valid again
    code, output = _verify_with_witness(witnessed_log)
    assert code == 1
    assert "witnessed checkpoint of size 20" in output
    assert "were rewritten" in output


def test_witness_directory_must_exist(committed_log, tmp_path):
    code, output = _verify_with_witness(tmp_path / "missing")
    assert code == 2
    assert "not a directory" in output


@pytest.mark.parametrize("content", [b"garbage", b"\xff\xfe", b"[1, 2]", b'{"root_hash": "00"}'])
def test_a_file_in_a_witness_directory_that_is_no_checkpoint_fails_the_verification_naming_it(witnessed_log, content):
    """The witness directory is storage another host holds: what is in it is evidence, and a
    damaged file fails the verification with its name, never a traceback."""
    (witnessed_log / "00000000000000000015.json").write_bytes(content)
    code, output = _verify_with_witness(witnessed_log)
    assert code == 1
    assert output.startswith("FAILED: ") and "00000000000000000015.json" in output
    assert "Traceback" not in output


@pytest.mark.django_db
def test_bulk_node_fetch_by_level_ranges_returns_the_same_nodes(witness_dir, monkeypatch):
    _append(70)
    checkpoints.checkpoint_create(publish=False)
    wanted = merkle.nodes_needed(r for i in range(70) for r in merkle.inclusion_ranges(i, 70))
    by_lookup = checkpoints.stored_nodes(wanted)
    monkeypatch.setattr(checkpoints, "_SCAN_THRESHOLD", 0)
    assert checkpoints.stored_nodes(wanted) == by_lookup


# ---- a checkpointer that cannot lie ------------------------------------------------------------


def test_the_checkpointer_signs_nothing_over_a_log_that_shrank_and_says_why(witnessed_log):
    _superuser("DELETE FROM audit_event WHERE seq > 25")
    for _ in range(2):  # beat tries again a minute later: refused again, reported once
        with pytest.raises(CheckpointError, match="the log shrank: it holds 25 events, and a checkpoint of 30"):
            checkpoint_if_grown()
    assert Checkpoint.objects.order_by("-tree_size").first().tree_size == 30
    (failure,) = LogVerification.objects.filter(ok=False)
    assert failure.problem.startswith("the checkpointer refused to sign: the log shrank")


@pytest.mark.parametrize("kept", [25, 29])  # the last checkpoint's last leaf inside a subtree, or alone
def test_the_checkpointer_signs_nothing_over_a_tail_grown_on_another_history(witnessed_log, kept):
    _superuser(f"DELETE FROM audit_event WHERE seq > {kept}")
    _append(8)  # the log grows past the checkpoint of 30 again, with other events
    with pytest.raises(CheckpointError, match="no longer gives the signed root of the checkpoint of 30 events"):
        checkpoint_if_grown()
    assert Checkpoint.objects.order_by("-tree_size").first().tree_size == 30


def test_the_checkpointer_signs_nothing_over_leaf_hashes_that_are_not_their_events(witnessed_log):
    _append(3)
    _superuser("UPDATE audit_event SET leaf_hash = %s WHERE seq = 32", (b"\x01" * 32,))
    with pytest.raises(CheckpointError, match="event 32: its hashes are not those of its signed bytes"):
        checkpoint_if_grown()
    assert Checkpoint.objects.order_by("-tree_size").first().tree_size == 30
