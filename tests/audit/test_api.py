"""The audit API: public checkpoints and proofs; evidence exports for the roles that may take them."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from audit import checkpoints, merkle
from audit.models import Event, EvidenceExport
from audit.store import append
from audit.verifier import verify_bundle
from tests.audit.factories import noted_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_with_checkpoint():
    for _ in range(12):
        event = noted_event()
        append([event], expected={event.stream: 0})
    return checkpoints.checkpoint_create(publish=False)


def _user(name: str, *roles: str) -> User:
    user = User.objects.create_user(name, password="s3cret-pass")
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


def _client(user: User | None = None) -> APIClient:
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def test_anyone_reads_checkpoints_and_proofs_that_verify(log_with_checkpoint):
    client = _client()
    latest = client.get("/api/v1/audit/checkpoints/latest/").json()
    assert latest["tree_size"] == 12
    assert client.get("/api/v1/audit/checkpoints/12/").json() == latest
    root = bytes.fromhex(latest["root_hash"])
    proof = client.get("/api/v1/audit/proofs/inclusion/", {"seq": 5, "tree_size": 12}).json()
    leaf = bytes(Event.objects.get(seq=5).leaf_hash)
    assert proof["leaf_hash"] == leaf.hex()
    assert merkle.verify_inclusion(4, 12, leaf, [bytes.fromhex(p) for p in proof["path"]], root)
    for _ in range(3):
        event = noted_event()
        append([event], expected={event.stream: 0})
    newer = checkpoints.checkpoint_create(publish=False)
    consistency = client.get("/api/v1/audit/proofs/consistency/", {"first": 12, "second": 15}).json()
    assert merkle.verify_consistency(
        12, 15, root, bytes.fromhex(newer.root_hash), [bytes.fromhex(p) for p in consistency["path"]]
    )


@pytest.mark.parametrize(
    ("url", "params", "status", "message"),
    [
        ("/api/v1/audit/proofs/inclusion/", {"seq": "x", "tree_size": 3}, 400, "must be an integer"),
        ("/api/v1/audit/proofs/inclusion/", {"tree_size": 3}, 400, "required"),
        ("/api/v1/audit/proofs/inclusion/", {"seq": 0, "tree_size": 3}, 400, "at least 1"),
        ("/api/v1/audit/proofs/inclusion/", {"seq": 4, "tree_size": 3}, 400, "not in a tree of size 3"),
        ("/api/v1/audit/proofs/inclusion/", {"seq": 1, "tree_size": 99}, 400, "beyond the latest checkpoint"),
        ("/api/v1/audit/proofs/consistency/", {"first": 9, "second": 3}, 400, "no consistency proof"),
        ("/api/v1/audit/checkpoints/7/", {}, 404, "no checkpoint of tree size 7"),
    ],
)
def test_bad_proof_requests_get_precise_errors(log_with_checkpoint, url, params, status, message):
    response = _client().get(url, params)
    assert response.status_code == status
    assert message in response.content.decode()


def test_no_checkpoint_yet_is_a_404():
    assert _client().get("/api/v1/audit/checkpoints/latest/").status_code == 404


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        ((), False),
        (("ml_engineer",), False),
        (("risk_approver",), False),
        (("auditor",), True),
        (("compliance_officer",), True),
        (("admin",), True),
    ],
)
def test_only_auditors_compliance_and_admins_export_evidence(log_with_checkpoint, roles, allowed):
    client = _client(_user("someone", *roles))
    response = client.post("/api/v1/evidence/", {}, format="json")
    assert response.status_code == (202 if allowed else 403)
    assert _client().post("/api/v1/evidence/", {}, format="json").status_code in (401, 403)


def test_evidence_export_runs_as_a_task_and_is_downloaded(
    log_with_checkpoint, django_capture_on_commit_callbacks, signing_key_file
):
    from audit import keyring

    auditor = _user("ada", "auditor")
    client = _client(auditor)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/v1/evidence/", {"include_data": True}, format="json")
    assert created.status_code == 202
    export_id = created.json()["id"]
    detail = client.get(f"/api/v1/evidence/{export_id}/").json()
    assert detail["status"] == "done", detail
    assert detail["events_done"] == detail["events_total"] > 0
    download = client.get(detail["download"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    body = b"".join(download.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert "manifest.json" in archive.namelist()
    bundle = signing_key_file.parent / "downloaded.zip"
    bundle.write_bytes(body)
    assert verify_bundle(bundle, [keyring.current_signing_key().public_raw]).events == 12
    recorded = Event.objects.get(event_type="audit.EvidenceExported")
    assert recorded.payload["bundle_sha256"] == detail["sha256"]
    assert recorded.actor_id == "ada"


def test_evidence_requests_are_validated_and_unfinished_exports_not_downloadable(log_with_checkpoint):
    client = _client(_user("ada", "auditor"))
    bad = client.post(
        "/api/v1/evidence/",
        {"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z", "streams": ["x"]},
        format="json",
    )
    assert bad.status_code == 400
    assert "until" in bad.json()
    bad_stream = client.post("/api/v1/evidence/", {"streams": ["no-colon"]}, format="json")
    assert bad_stream.status_code == 400
    for nothing in ({"model": "no-such-model"}, {"streams": ["note:nobody"]}, {"since": "2999-01-01T00:00:00Z"}):
        empty = client.post("/api/v1/evidence/", nothing, format="json")  # refused now, not failed once queued
        assert empty.status_code == 400 and "no event of the log matches" in str(empty.json()), empty.json()
    assert EvidenceExport.objects.count() == 0
    queued = client.post("/api/v1/evidence/", {}, format="json").json()  # on_commit never runs here
    assert client.get(f"/api/v1/evidence/{queued['id']}/download/").status_code == 409
    assert client.get("/api/v1/evidence/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_openapi_schema_is_served():
    response = _client().get("/api/v1/schema/")
    assert response.status_code == 200
    assert b"/api/v1/audit/proofs/inclusion/" in response.content


def test_data_files_missing_from_storage_are_named_by_the_api_and_the_page(
    log_with_checkpoint, django_capture_on_commit_callbacks
):
    absent = "ab" * 32  # referenced by an event, never stored
    event = noted_event(data_digest=absent)
    append([event], expected={event.stream: 0})
    auditor = _user("ada", "auditor")
    with django_capture_on_commit_callbacks(execute=True):
        created = _client(auditor).post("/api/v1/evidence/", {"include_data": True}, format="json")
    detail = _client(auditor).get(f"/api/v1/evidence/{created.json()['id']}/").json()
    assert detail["status"] == "done" and detail["missing_data"] == [absent]
    page = Client()
    page.force_login(auditor)
    row = page.get(f"/evidence/{detail['id']}/").content.decode()
    assert "1 referenced data file not found in storage, not in the bundle" in row and absent[:40] in row


def test_a_redelivered_export_that_the_log_recorded_is_done_not_done_again(
    log_with_checkpoint, django_capture_on_commit_callbacks
):
    """Its worker died after the log recorded the bundle, before the export was marked done: the
    task, delivered again, finds the record and does not store another bundle under that name."""
    from django.core.files.storage import default_storage

    from audit.blobs import export_path
    from audit.tasks import export_evidence_task

    auditor = _user("ada", "auditor")
    with django_capture_on_commit_callbacks(execute=True):
        created = _client(auditor).post("/api/v1/evidence/", {}, format="json")
    export = EvidenceExport.objects.get(id=created.json()["id"])
    with default_storage.open(export_path(str(export.id)), "rb") as stored:
        delivered = stored.read()
    EvidenceExport.objects.filter(id=export.id).update(status="running", sha256="", file="", events_done=0)
    moved = noted_event()
    append([moved], expected={moved.stream: 0})  # the log moved on: an export made now would differ
    export_evidence_task.apply(args=[str(export.id)])
    again = EvidenceExport.objects.get(id=export.id)
    assert again.status == "done" and again.sha256 == export.sha256 and again.events_done == export.events_total
    with default_storage.open(export_path(str(export.id)), "rb") as stored:
        assert stored.read() == delivered
    assert Event.objects.filter(event_type="audit.EvidenceExported", stream_id=str(export.id)).count() == 1
