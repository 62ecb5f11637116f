"""Witness cosigning (docs/evidence-format.md, version 2): a witness cosigns only extensions of
what it cosigned; two witness processes cosign the log's checkpoints; bundles carry their
cosignatures; the verifier's witness policy rejects a history rewritten with the stolen key."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zipfile
from http import HTTPStatus
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import connection

from audit import checkpoints, keyring, merkle
from audit.canonical import canonicalize
from audit.cosigning import cosign
from audit.envelope import checkpoint_body, cosigned_statement, key_id_of
from audit.evidence import EvidenceQuery, evidence_export
from audit.keys import SigningKey, public_key_from_raw, signature_valid
from audit.models import Checkpoint, Cosignature, Event, LogInfo, LogVerification, WitnessDelivery
from audit.rotation import signing_key_rotate
from audit.store import SYSTEM_ACTOR, Actor, NewEvent, append
from audit.verifier import BundleInvalid, verify_bundle
from audit.witness import LogState, Refused
from audit.witness import cosign as witness_cosign
from audit.witness_local import ROOT, WitnessProcess, witness_create
from tests.audit.factories import ALICE, Noted
from tests.audit.test_evidence import _rewrite
from tests.owner import as_owner

AUDITOR = Actor("user", "ada", "Ada Auditor")
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
LOG_ID = "0b7c3f7e-8f0e-4a4e-9d55-3f7a1f1f2a10"


# ---- the witness's rule, without processes -----------------------------------------------------


class Tree:
    """A log of arbitrary leaves and its checkpoints, signed with a log key."""

    def __init__(self, key: SigningKey) -> None:
        self.key, self.leaves = key, [merkle.leaf_hash(f"event {i}".encode()) for i in range(40)]

    def checkpoint(self, size: int, *, key: SigningKey | None = None) -> dict:
        signer = key or self.key
        body = {
            "log_id": LOG_ID,
            "tree_size": size,
            "root_hash": merkle.tree_hash(self.leaves[:size]).hex(),
            "timestamp": "2026-12-06T12:00:00.000000Z",
            "key_id": signer.key_id,
        }
        return {**body, "signature": base64.b64encode(signer.sign(checkpoint_body(body))).decode()}

    def request(self, old: int, size: int, **changes) -> dict:
        proof = merkle.consistency_proof(old, size, merkle.LeafNodes(self.leaves)) if 0 < old < size else []
        return {"checkpoint": self.checkpoint(size), "old_size": old, "consistency": [p.hex() for p in proof]} | changes


@pytest.fixture
def tree():
    return Tree(SigningKey.generate())


@pytest.fixture
def witness_key():
    return Ed25519PrivateKey.generate()


def _followed(tree: Tree) -> LogState:
    return LogState(LOG_ID, [{"key_id": tree.key.key_id, "public_key": tree.key.public_b64, "valid_from_seq": 1}])


def _refused(state, request, key) -> Refused:
    with pytest.raises(Refused) as caught:
        witness_cosign(state, request, key, NOW)
    return caught.value


def test_a_witness_cosigns_extensions_and_its_cosignature_verifies(tree, witness_key):
    state, _ = witness_cosign(_followed(tree), tree.request(0, 10), witness_key, NOW)
    state, second = witness_cosign(state, tree.request(10, 25), witness_key, NOW)
    raw = witness_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert second["witness_id"] == key_id_of(raw)
    statement = cosigned_statement(tree.checkpoint(25), second["cosigned_at"])
    assert signature_valid(public_key_from_raw(raw), base64.b64decode(second["signature"]), statement)
    assert state.tree_size == 25
    again, same = witness_cosign(state, tree.request(10, 25), witness_key, NOW + dt.timedelta(hours=1))
    assert same == second and again is state  # the same tree: the same cosignature, nothing new signed


def test_a_witness_refuses_what_is_not_an_extension_and_says_why(tree, witness_key):
    state, _ = witness_cosign(_followed(tree), tree.request(0, 20), witness_key, NOW)
    older = _refused(state, tree.request(0, 15), witness_key)
    assert (older.status, older.tree_size) == (HTTPStatus.CONFLICT, 20)
    assert "older than the checkpoint of size 20" in older.message
    stale = _refused(state, tree.request(10, 30), witness_key)
    assert "must start from tree size 20, not 10" in stale.message and stale.tree_size == 20
    rewritten = Tree(tree.key)
    rewritten.leaves[7] = merkle.leaf_hash(b"rewritten with the stolen key")
    fork = _refused(state, rewritten.request(20, 30), witness_key)
    assert fork.status == HTTPStatus.CONFLICT and "the log's history was rewritten" in fork.message
    equivocation = _refused(state, rewritten.request(0, 20), witness_key)
    assert "another root for tree size 20: the log equivocates" in equivocation.message
    thief_key = _refused(
        state, {**tree.request(20, 30), "checkpoint": tree.checkpoint(30, key=SigningKey.generate())}, witness_key
    )
    assert thief_key.status == HTTPStatus.FORBIDDEN and f"is not signed by key {tree.key.key_id}" in thief_key.message
    forged_proof = tree.request(20, 30)
    forged_proof["consistency"][0] = "00" * 32
    assert "rewritten" in _refused(state, forged_proof, witness_key).message


def _rotation(tree: Tree, seq: int, old: SigningKey, new: SigningKey) -> dict:
    """Leaf `seq` of the tree becomes an audit.KeyRotated signed by `old`, introducing `new`."""
    from audit.envelope import envelope, rotation_statement

    body = envelope(
        log_id=LOG_ID, seq=seq, event_id=str(uuid.uuid4()), stream={"type": "audit", "id": "keys", "version": seq},
        type="audit.KeyRotated", schema=1, occurred_at="2026-12-06T12:00:00.000000Z",
        actor={"kind": "system", "id": "driftledger", "name": "Driftledger"}, reason=None, correlation_id=None,
        causation_id=None, prev_hash="0" * 64, key_id=old.key_id,
        payload={
            "new_key_id": new.key_id, "new_public_key": new.public_b64, "previous_key_id": old.key_id,
            "new_key_signature": base64.b64encode(
                new.sign(rotation_statement(log_id=LOG_ID, new_key_id=new.key_id, previous_key_id=old.key_id))
            ).decode(),
        },
    )  # fmt: skip
    data = canonicalize(body)
    tree.leaves[seq - 1] = merkle.leaf_hash(data)
    return {"event": data.decode(), "signature": base64.b64encode(old.sign(data)).decode()}


def test_a_witness_follows_a_rotation_and_never_takes_a_retired_key_again(tree, witness_key):
    first, second, third = tree.key, SigningKey.generate(), SigningKey.generate()
    rotation = _rotation(tree, 12, first, second)
    state, _ = witness_cosign(_followed(tree), tree.request(0, 8), witness_key, NOW)

    def with_rotations(size: int, *rotations: dict, key: SigningKey = second, old: int = 8) -> dict:
        proofs = [merkle.inclusion_proof(json.loads(r["event"])["seq"] - 1, size, merkle.LeafNodes(tree.leaves))
                  for r in rotations]  # fmt: skip
        request = tree.request(old, size) | {"checkpoint": tree.checkpoint(size, key=key)}
        request["rotations"] = [
            r | {"proof": [p.hex() for p in proof]} for r, proof in zip(rotations, proofs, strict=True)
        ]
        return request

    assert "is not signed by key" in _refused(state, with_rotations(20), witness_key).message  # no rotation shown
    state, _ = witness_cosign(state, with_rotations(20, rotation), witness_key, NOW)
    assert [k["key_id"] for k in state.keys] == [first.key_id, second.key_id]
    assert state.keys[1]["valid_from_seq"] == 13
    # A thief holding the retired first key: a checkpoint of its own, a rotation of its own.
    retired = _refused(state, with_rotations(30, key=first, old=20), witness_key)
    assert f"is not signed by key {second.key_id}" in retired.message
    forked = Tree(first)
    forked.leaves = list(tree.leaves)
    smuggled = _rotation(forked, 25, first, third)
    tree.leaves = forked.leaves
    refused = _refused(state, with_rotations(30, rotation, smuggled, key=third, old=20), witness_key)
    assert f"not signed by key {second.key_id}, the log's key at that seq" in refused.message
    other = _rotation(Tree(first), 12, first, third)
    assert (
        "contradicts the rotation at that seq"
        in _refused(state, with_rotations(30, other, old=20), witness_key).message
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"checkpoint": None}, "checkpoint must hold"),
        ({"checkpoint": {"tree_size": 3}}, "checkpoint must hold"),
        ({"consistency": "ab"}, "consistency must be a list"),
        ({"rotations": {}}, "rotations must be a list"),
        ({"rotations": [{"event": "{}"}]}, "must be a canonical audit.KeyRotated"),
    ],
)
def test_a_malformed_request_is_refused_with_400(tree, witness_key, change, message):
    state, _ = witness_cosign(_followed(tree), tree.request(0, 5), witness_key, NOW)
    refusal = _refused(state, tree.request(5, 9) | change, witness_key)
    assert refusal.status == HTTPStatus.BAD_REQUEST and message in refusal.message


def test_a_checkpoint_of_another_log_or_a_bad_size_is_refused(tree, witness_key):
    other = tree.request(0, 5)
    other["checkpoint"]["log_id"] = str(uuid.uuid4())
    assert "not " + LOG_ID in _refused(_followed(tree), other, witness_key).message
    zero = tree.request(0, 5)
    zero["checkpoint"]["tree_size"] = 0
    assert "positive integer" in _refused(_followed(tree), zero, witness_key).message


# ---- two witness processes and the log -------------------------------------------------------


pytestmark_db = pytest.mark.django_db


def _record(count: int, model: str = "credit") -> None:
    for index in range(count):
        stream = str(uuid.uuid4())
        append(
            [NewEvent("run", stream, Noted(model=model, summary=f"run {index}"), ALICE)], expected={("run", stream): 0}
        )


@pytest.fixture
def log_with_witnesses(db, tmp_path, settings):
    """A log of 10 events followed by two witness processes, configured as the log's cosigners."""
    yield from _witnessed(tmp_path, settings)


@pytest.fixture
def committed_log_with_witnesses(committed_log, tmp_path, settings):
    """The same, committed: for checks that read the log over connections of their own."""
    yield from _witnessed(tmp_path, settings)


def _witnessed(tmp_path, settings):
    _record(10)
    genesis = keyring.current_signing_key()
    pem = tmp_path / "log.pem"
    pem.write_bytes(genesis.public_pem())
    log_id = str(LogInfo.objects.get().log_id)
    witnesses = [witness_create(tmp_path / name, name, log_id, pem).start() for name in ("witness-a", "witness-b")]
    settings.AUDIT_COSIGNING_WITNESSES = [w.setting() for w in witnesses]
    yield genesis, witnesses
    for witness in witnesses:
        witness.kill()


def _checkpoint() -> Checkpoint:
    checkpoint = checkpoints.checkpoint_create(publish=False)
    assert cosign(checkpoint) == []
    return checkpoint


def _export(tmp_path: Path) -> Path:
    out = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}.zip"
    evidence_export(query=EvidenceQuery(scopes=(("model", "credit"),)), out=out, created_by=AUDITOR)
    return out


def _keys(witnesses: list[WitnessProcess]) -> list[bytes]:
    return [w.public_raw for w in witnesses]


@pytestmark_db
def test_two_witness_processes_cosign_each_checkpoint_and_follow_a_key_rotation(log_with_witnesses):
    genesis, witnesses = log_with_witnesses
    first = _checkpoint()
    _record(5)
    signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="yearly rotation")
    _record(5)
    second = _checkpoint()
    assert second.key_id != genesis.key_id  # signed by the new key, which the witnesses learned from the log
    for checkpoint in (first, second):
        found = {c.witness_id: c for c in Cosignature.objects.filter(checkpoint=checkpoint)}
        assert set(found) == {key_id_of(w.public_raw) for w in witnesses}
        for witness in witnesses:
            cosignature = found[key_id_of(witness.public_raw)]
            statement = cosigned_statement(checkpoint.as_dict(), cosignature.cosigned_at)
            key = public_key_from_raw(witness.public_raw)
            assert signature_valid(key, base64.b64decode(cosignature.signature), statement)
    held = json.loads(urllib.request.urlopen(f"{witnesses[0].url}/logs/{first.log_id}").read())
    assert held["checkpoint"]["tree_size"] == second.tree_size
    assert cosign(second) == []  # both have it: nothing is asked again
    assert {d.tree_size for d in WitnessDelivery.objects.filter(name__startswith="cosigning witness")} == {
        second.tree_size
    }


@pytestmark_db
def test_a_bundle_carries_the_cosignatures_and_the_offline_verifier_reports_who_vouches(log_with_witnesses, tmp_path):
    genesis, witnesses = log_with_witnesses
    bundle = _export(tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        listed = json.loads(archive.read("witnesses.json"))
    assert manifest["format"] == "driftledger-evidence/2"
    assert len(manifest["checkpoint"]["cosignatures"]) == 2
    assert sorted(w["name"] for w in listed) == ["witness-a", "witness-b"]
    report = verify_bundle(bundle, [genesis.public_raw], witness_keys=_keys(witnesses))
    assert sorted(report.witnesses.vouching) == sorted(f"{w.name} ({key_id_of(w.public_raw)})" for w in witnesses)
    unrelated = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    with pytest.raises(BundleInvalid, match="1 of the 2 witness cosignature"):
        verify_bundle(bundle, [genesis.public_raw], witness_keys=[witnesses[0].public_raw, unrelated])
    assert verify_bundle(bundle, [genesis.public_raw], witness_keys=[witnesses[0].public_raw, unrelated], quorum=1)

    pems = []
    for witness in witnesses:
        pems += ["--witness-key", str(tmp_path / f"{witness.name}.pem")]
        (tmp_path / f"{witness.name}.pem").write_bytes(witness.public_pem)
    command = [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(tmp_path / "log.pem")]
    done = subprocess.run([*command, *pems], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "witness-a (" in done.stdout and "witness-b (" in done.stdout and "(2 of 2, quorum 2)" in done.stdout
    bad_quorum = subprocess.run([*command, *pems, "--quorum", "3"], cwd=ROOT, capture_output=True, text=True)
    assert bad_quorum.returncode == 2 and "--quorum must lie between 1 and the 2" in bad_quorum.stderr
    no_policy = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert no_policy.returncode == 0
    assert (
        "2 witness cosignature(s) found, 2 verifying under the keys the bundle lists; not required" in no_policy.stdout
    )


def _steal_key_and_rewrite(seq: int) -> None:
    """What a thief holding the signing key and the database does: change event `seq`, re-chain and
    re-sign every event after it, and rebuild the checkpoints over the new history."""
    key = keyring.current_signing_key()
    found = Event.objects.filter(seq__gte=seq - 1).order_by("seq").values_list("seq", "canonical", "hash")
    rows = [(s, bytes(c), bytes(p)) for s, c, p in found]
    prev_hash = rows[0][2].hex()
    for current, canonical, _ in rows[1:]:
        body = orjson.loads(canonical)
        if current == seq:
            body["payload"]["summary"] = "no drift"
        body["prev_hash"] = prev_hash
        forged = canonicalize(body)
        digest = hashlib.sha256(forged).digest()
        as_owner(
            "UPDATE audit_event SET canonical = %s, hash = %s, leaf_hash = %s, signature = %s,"
            " payload = %s::jsonb WHERE seq = %s",
            (
                forged,
                digest,
                merkle.leaf_hash(forged),
                key.sign(forged),
                orjson.dumps(body["payload"]).decode(),
                current,
            ),
        )
        prev_hash = digest.hex()
    with connection.cursor() as cursor:  # a table with deferred foreign-key checks pending cannot be altered
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    as_owner(
        "DELETE FROM audit_cosignature; DELETE FROM audit_checkpoint; DELETE FROM audit_merkle_node",
        tables=("audit_cosignature", "audit_checkpoint", "audit_merkle_node"),
    )


@pytestmark_db
def test_a_history_rewritten_with_the_stolen_key_gets_no_cosignature_and_fails_the_witness_policy(
    log_with_witnesses, tmp_path
):
    genesis, witnesses = log_with_witnesses
    honest = _export(tmp_path)
    _steal_key_and_rewrite(4)
    _record(3)
    rebuilt = checkpoints.checkpoint_create(publish=False)
    failures = cosign(rebuilt)
    assert len(failures) == 2 and all("the log's history was rewritten" in f for f in failures)
    assert not Cosignature.objects.exists()
    refused = WitnessDelivery.objects.filter(name__startswith="cosigning witness", error__contains="rewritten")
    assert refused.count() == 2

    forged = _export(tmp_path)
    assert verify_bundle(forged, [genesis.public_raw]).witnesses.found == 0  # without a policy it looks VALID
    with pytest.raises(BundleInvalid, match="0 of the 2 witness cosignature"):
        verify_bundle(forged, [genesis.public_raw], witness_keys=_keys(witnesses))

    with zipfile.ZipFile(honest) as archive:  # the thief copies the honest cosignatures into the forged bundle
        stolen = json.loads(archive.read("manifest.json"))["checkpoint"]["cosignatures"]

    def graft(files):
        manifest = json.loads(files["manifest.json"])
        manifest["checkpoint"]["cosignatures"] = stolen
        files["manifest.json"] = canonicalize(manifest)

    grafted = _rewrite(forged, tmp_path / "grafted.zip", graft, resign_with=keyring.current_signing_key())
    with pytest.raises(BundleInvalid, match="its cosignature does not verify over this checkpoint"):
        verify_bundle(grafted, [genesis.public_raw], witness_keys=_keys(witnesses))


@pytestmark_db
def test_a_witness_down_leaves_the_checkpoint_signed_and_the_failure_shown(log_with_witnesses, tmp_path, settings):
    genesis, witnesses = log_with_witnesses
    witnesses[1].kill()
    checkpoint = checkpoints.checkpoint_create(publish=False)
    (failure,) = cosign(checkpoint)
    assert "witness-b" in failure
    assert Cosignature.objects.filter(checkpoint=checkpoint).count() == 1
    bundle = _export(tmp_path)
    with pytest.raises(BundleInvalid, match="1 of the 2"):
        verify_bundle(bundle, [genesis.public_raw], witness_keys=_keys(witnesses))
    assert verify_bundle(bundle, [genesis.public_raw], witness_keys=_keys(witnesses), quorum=1)
    witnesses[1].start()  # back on the same state directory: the next ask cosigns the missed checkpoint
    settings.AUDIT_COSIGNING_WITNESSES = [w.setting() for w in witnesses]  # its new port
    assert cosign(checkpoint) == []
    assert Cosignature.objects.filter(checkpoint=checkpoint).count() == 2


@pytestmark_db
def test_a_witness_keeps_its_state_across_a_kill_and_one_directory_serves_one_process(log_with_witnesses):
    _, witnesses = log_with_witnesses
    checkpoint = _checkpoint()
    witnesses[0].kill()
    witnesses[0].start()
    held = json.loads(urllib.request.urlopen(f"{witnesses[0].url}/logs/{checkpoint.log_id}").read())
    assert held["checkpoint"]["root_hash"] == checkpoint.root_hash
    second = subprocess.run(
        [sys.executable, "-m", "audit.witness", "serve", "--state", str(witnesses[0].state), "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert second.returncode != 0 and "another witness process holds" in second.stderr


@pytestmark_db
def test_the_witness_http_api_answers_bad_requests_precisely(log_with_witnesses):
    _, witnesses = log_with_witnesses
    url = witnesses[0].url

    def post(path: str, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(url + path, data=body, method="POST")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    log_id = str(LogInfo.objects.get().log_id)
    assert post(f"/logs/{log_id}/cosign", b"not json") == (400, {"error": "the body is not JSON"})
    other = str(uuid.uuid4())
    code, body = post(f"/logs/{other}/cosign", b"{}")
    assert code == 404 and f"does not follow log {other}" in body["error"]
    code, body = post(f"/logs/{log_id}/cosign", b"[]")
    assert code == 400 and "JSON object" in body["error"]
    code, body = post("/elsewhere", b"{}")
    assert code == 404
    identity = json.loads(urllib.request.urlopen(url + "/").read())
    assert identity["witness_id"] == key_id_of(witnesses[0].public_raw) and identity["name"] == "witness-a"


@pytestmark_db
def test_a_format_1_bundle_still_verifies_and_a_witness_policy_refuses_it(log_with_witnesses, tmp_path):
    genesis, witnesses = log_with_witnesses
    bundle = _export(tmp_path)

    def as_version_1(files):
        manifest = json.loads(files["manifest.json"])
        manifest["format"] = "driftledger-evidence/1"
        del manifest["checkpoint"]["cosignatures"]
        del files["witnesses.json"]
        files["manifest.json"] = canonicalize(manifest)

    old = _rewrite(bundle, tmp_path / "v1.zip", as_version_1, resign_with=keyring.current_signing_key())
    assert verify_bundle(old, [genesis.public_raw]).events > 0
    with pytest.raises(BundleInvalid, match="a format 1 bundle carries no cosignature; the policy requires 2"):
        verify_bundle(old, [genesis.public_raw], witness_keys=_keys(witnesses))


def test_audit_verify_asks_every_cosigning_witness_by_default(committed_log_with_witnesses):
    _, witnesses = committed_log_with_witnesses
    checkpoint = checkpoints.checkpoint_create(publish=False)
    assert cosign(checkpoint) == []
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "consistent with 1 checkpoint(s) stored or witnessed" in out.getvalue()  # one, stored and cosigned
    # A restored backup of 6 events: its checkpoints and the tail are gone from the database.
    as_owner("DELETE FROM audit_event WHERE seq > 6")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    as_owner(
        "DELETE FROM audit_cosignature; DELETE FROM audit_checkpoint; DELETE FROM audit_merkle_node",
        tables=("audit_cosignature", "audit_checkpoint", "audit_merkle_node"),
    )
    witnesses[1].kill()
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", stderr=err)
    assert exited.value.code == 1
    assert "the checkpoint witness witness-a cosigned of size 10" in err.getvalue()
    assert "covers 10 events but the log holds 6" in err.getvalue()
    assert "WARNING: witness not checked: cosigning witness witness-b" in err.getvalue()


@pytestmark_db
def test_a_witness_that_holds_more_than_this_database_knows_is_asked_again_from_its_size(log_with_witnesses):
    first = _checkpoint()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    as_owner("DELETE FROM audit_cosignature", tables=("audit_cosignature",))  # this database forgot them
    _record(4)
    second = checkpoints.checkpoint_create(publish=False)
    assert cosign(second) == []  # refused from size 0, then proved from the size each holds
    assert Cosignature.objects.filter(checkpoint=second).count() == 2
    assert not Cosignature.objects.filter(checkpoint=first).exists()


# ---- freshness: checkpoints every N events, the age of the newest cosigned one ------------------


def test_the_append_that_crosses_every_nth_event_queues_a_checkpoint(committed_log, settings):
    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 10
    _record(25)  # one event an append: the 10th and the 20th each cross a multiple
    stream = str(uuid.uuid4())
    batch = [NewEvent("run", stream, Noted(model="credit", summary=f"batch {i}"), ALICE) for i in range(7)]
    append(batch, expected={("run", stream): 0})  # 26..32 crosses 30 inside one append
    assert list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", flat=True)) == [10, 20, 32]


def _metrics(client) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(client.get("/metrics").content.decode())
        for sample in family.samples
    }


@pytestmark_db
def test_metrics_and_the_integrity_page_show_how_fresh_the_cosigned_checkpoint_is(log_with_witnesses, settings):
    from django.test import Client

    _, witnesses = log_with_witnesses
    settings.METRICS_PUBLIC = True
    samples = _metrics(Client())
    assert samples["driftledger_events_since_cosigned_checkpoint"] == 10  # none cosigned yet: since the log began
    _checkpoint()
    _record(3)
    samples = _metrics(Client())
    assert samples["driftledger_events_since_cosigned_checkpoint"] == 3
    assert 0 <= samples["driftledger_cosigned_checkpoint_age_seconds"] < 60
    witnesses[1].kill()
    settings.AUDIT_COSIGNING_WITNESSES = [w.setting() for w in witnesses]
    later = checkpoints.checkpoint_create(publish=False)
    assert len(cosign(later)) == 1  # one of two: no quorum, so the freshest cosigned stays the earlier one
    assert _metrics(Client())["driftledger_events_since_cosigned_checkpoint"] == 3
    settings.AUDIT_WITNESS_QUORUM = 1
    assert _metrics(Client())["driftledger_events_since_cosigned_checkpoint"] == 0


def test_the_witness_program_needs_neither_django_nor_a_database_driver(tmp_path):
    blocked = "import sys, runpy; sys.modules['django'] = None; sys.modules['psycopg'] = None; sys.argv = ['w', *sys.argv[1:]]; runpy.run_module('audit.witness', run_name='__main__')"  # noqa: E501
    made = subprocess.run(
        [sys.executable, "-c", blocked, "init", "--state", str(tmp_path / "w"), "--name", "alone"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    again = subprocess.run(
        [sys.executable, "-c", blocked, "init", "--state", str(tmp_path / "w")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode != 0 and "already holds a witness" in again.stderr
    shown = subprocess.run(
        [sys.executable, "-c", blocked, "show", "--state", str(tmp_path / "w")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0 and "name alone" in shown.stdout


@pytestmark_db
def test_a_cosignature_row_written_past_the_application_counts_for_nothing_and_is_named(log_with_witnesses, settings):
    from audit.cosigning import cosignatures_of, freshest_cosigned

    _, witnesses = log_with_witnesses
    checkpoint = checkpoints.checkpoint_create(publish=False)
    forged_id = key_id_of(witnesses[0].public_raw)
    # The attacker inserts rows first, so that the witnesses look like they had cosigned already.
    Cosignature.objects.create(
        checkpoint=checkpoint, witness_id=forged_id, cosigned_at="2026-12-06T12:00:00.000000Z",
        signature=base64.b64encode(bytes([1]) * 64).decode(),
    )  # fmt: skip
    failures = cosign(checkpoint)  # witness-a is asked all the same; its real cosignature cannot be kept
    assert failures == []
    assert [c["witness_id"] for c in cosignatures_of(checkpoint)] == [key_id_of(witnesses[1].public_raw)]
    (failure,) = LogVerification.objects.filter(ok=False)
    assert f"by witness(es) {forged_id} do not verify under their configured keys" in failure.problem
    assert freshest_cosigned().tree_size == 0  # not cosigned by both: the forged row does not count
    settings.AUDIT_WITNESS_QUORUM = 1
    assert freshest_cosigned().tree_size == checkpoint.tree_size


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--state", "{missing}"], "witness.pem is missing: run `python -m audit.witness init"),
        (["show", "--state", "{missing}"], "witness.pem is missing"),
        (["trust", "--state", "{made}", "--log-id", LOG_ID, "--log-key", "{missing}.pem"], "cannot read"),
        (["trust", "--state", "{made}", "--log-id", "not-a-uuid", "--log-key", "{missing}.pem"], "is not a log id"),
    ],
)
def test_the_witness_commands_answer_bad_usage_with_one_line(tmp_path, args, message):
    made = tmp_path / "made"
    assert subprocess.run([sys.executable, "-m", "audit.witness", "init", "--state", str(made)], cwd=ROOT,
                          capture_output=True, timeout=60).returncode == 0  # fmt: skip
    filled = [a.format(missing=tmp_path / "missing", made=made) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "audit.witness", *filled], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
