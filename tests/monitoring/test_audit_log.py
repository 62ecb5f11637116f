"""The audit log over the API: newest first, each event in one sentence, filtered and paged by
cursor; one event in full, checked here independently: its hash (SHA-256), its Ed25519
signature, its inclusion proof (RFC 9162, recomputed here) and the checkpoint's signature."""

from __future__ import annotations

import base64
import hashlib

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.checkpoints import checkpoint_create
from audit.models import Event
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, approved, client_for

pytestmark = pytest.mark.django_db


def _root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2, written out here rather than imported."""
    fn, sn, digest = index, size - 1, leaf
    for step in path:
        if sn == 0:
            raise AssertionError("path longer than the tree")
        if fn & 1 or fn == sn:
            digest = hashlib.sha256(b"\x01" + step + digest).digest()
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = hashlib.sha256(b"\x01" + digest + step).digest()
        fn, sn = fn >> 1, sn >> 1
    assert sn == 0
    return digest


@pytest.fixture
def log(credit_model, people):
    registry.version_register(name="credit", version="1.2", artifact_uri="s3://1.2", actor=ALICE, notes="hotfix")
    checkpoint_create(publish=False)
    return client_for(people["compliance_officer"])


def test_the_log_reads_newest_first_in_sentences_a_page_at_a_time(log):
    total = Event.objects.count()
    seen, url = [], "/api/v1/audit/events/?limit=3"
    while url:
        page = log.get(url)
        assert page.status_code == 200, page.content
        body = page.json()
        seen += [item["seq"] for item in body["results"]]
        assert all(item["sentence"] and item["actor"] for item in body["results"])
        url = body["next"]
    assert seen == list(range(total, 0, -1))  # every event once, newest first


def test_the_log_filters_by_type_stream_model_actor_time_and_text(log, people):
    def seqs(**params) -> list[int]:
        answer = log.get("/api/v1/audit/events/", params)
        assert answer.status_code == 200, answer.content
        return [item["seq"] for item in answer.json()["results"]]

    registered = list(
        Event.objects.filter(event_type="monitoring.ModelVersionRegistered").values_list("seq", flat=True)
    )
    assert len(registered) == 3 and seqs(type="monitoring.ModelVersionRegistered") == sorted(registered, reverse=True)
    model_stream = list(Event.objects.filter(stream_type="model", stream_id="credit").values_list("seq", flat=True))
    assert model_stream
    assert seqs(stream="model:credit") == sorted(model_stream, reverse=True)
    assert set(model_stream) <= set(seqs(model="credit", limit=200))
    assert seqs(model="no-such-model") == []
    assert (
        seqs(actor="alice")
        and seqs(actor="alice") == sorted(Event.objects.filter(actor_id="alice").values_list("seq", flat=True))[::-1]
    )
    assert seqs(q="first release") and seqs(q="first release") == list(
        Event.objects.filter(event_type="monitoring.DeploymentChanged").values_list("seq", flat=True)
    )
    assert seqs(since="2100-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stream": "model"}, "stream"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"before": "-3"}, "before"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until"),
        ({"correlation": "not-a-uuid"}, "correlation"),
    ],
)
def test_bad_filters_are_refused_by_name(log, params, field):
    answer = log.get("/api/v1/audit/events/", params)
    assert answer.status_code == 400 and field in answer.json()


def test_one_event_in_full_verifies_independently(log):
    seq = Event.objects.filter(event_type="monitoring.ModelVersionRegistered").order_by("-seq").first().seq
    event = log.get(f"/api/v1/audit/events/{seq}/").json()
    canonical = event["canonical"].encode()
    assert hashlib.sha256(canonical).hexdigest() == event["hash"]
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(event["public_key"]))
    key.verify(base64.b64decode(event["signature"]), canonical)  # raises if it does not verify
    assert "1.2" in event["sentence"]
    proof = event["proof"]
    leaf = hashlib.sha256(b"\x00" + canonical).digest()
    root = _root_from_path(proof["leaf_index"], proof["tree_size"], leaf, [bytes.fromhex(h) for h in proof["path"]])
    checkpoint = proof["checkpoint"]
    assert root.hex() == checkpoint["root_hash"]
    signed = {k: checkpoint[k] for k in ("log_id", "tree_size", "root_hash", "timestamp", "key_id")}
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"])).verify(
        base64.b64decode(checkpoint["signature"]), rfc8785.dumps(signed)
    )
    tampered = list(proof["path"])
    tampered[0] = ("0" if tampered[0][0] != "0" else "1") + tampered[0][1:]
    assert _root_from_path(seq - 1, proof["tree_size"], leaf, [bytes.fromhex(h) for h in tampered]).hex() != root.hex()


def test_an_event_shows_what_caused_it_and_what_it_caused(log):
    request_id = approved("credit", "promote_challenger", {"version": "1.1"})
    promoted = Event.objects.filter(event_type="monitoring.DeploymentChanged").order_by("-seq").first()
    event = log.get(f"/api/v1/audit/events/{promoted.seq}/").json()
    causes = [item["type"] for item in event["causes"] if item["stream"]["id"] == request_id]
    assert causes == [  # nearest first, up to the request
        "monitoring.RemediationExecutionStarted",
        "monitoring.RemediationApproved",
        "monitoring.RemediationRequested",
    ], event["causes"]
    requested = Event.objects.get(event_type="monitoring.RemediationRequested", stream_id=request_id)
    thread = log.get(f"/api/v1/audit/events/{requested.seq}/").json()["consequences"]
    assert promoted.seq in [item["seq"] for item in thread]  # request -> approvals -> execution -> the change
    assert log.get("/api/v1/audit/events/999999/").status_code == 404


def test_only_compliance_officers_auditors_and_admins_read_the_log(people, credit_model):
    for role, status in (("auditor", 200), ("admin", 200), ("ml_engineer", 403), ("risk_approver", 403)):
        assert client_for(people[role]).get("/api/v1/audit/events/").status_code == status, role
