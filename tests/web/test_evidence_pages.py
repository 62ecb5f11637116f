"""The evidence page: an export started from the page runs, is downloaded and verifies with the
offline verifier; each person sees their own exports, administrators everyone's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from audit.checkpoints import checkpoint_create
from audit.models import EvidenceExport, SigningKeyRecord
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(people, credit_model):
    checkpoint_create(publish=False)


def _start(client, django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/evidence/", {"model": "credit", "since": "", "until": "", "streams": "", **fields})


def test_an_export_from_the_page_downloads_and_verifies_offline(
    people, logged, tmp_path, django_capture_on_commit_callbacks
):
    client = signed_in(people["auditor"])
    answer = _start(client, django_capture_on_commit_callbacks, include_data="on")
    assert answer.status_code == 302
    export = EvidenceExport.objects.get()
    assert export.status == "done" and export.query["model"] == "credit" and export.query["include_data"] is True
    row = client.get(f"/evidence/{export.id}/")
    assert row.status_code == 286  # htmx stops polling a finished export
    page = client.get("/evidence/").content.decode()
    assert f"/evidence/{export.id}/download/" in page and "python -m audit.verifier" in page
    download = client.get(f"/evidence/{export.id}/download/")
    bundle = tmp_path / "evidence.zip"
    bundle.write_bytes(b"".join(download.streaming_content))
    first_key = SigningKeyRecord.objects.order_by("valid_from_seq").first()
    pem = client.get(f"/integrity/keys/{first_key.key_id}.pem").content
    serialization.load_pem_public_key(pem)
    (tmp_path / "key.pem").write_bytes(pem)
    verified = subprocess.run(
        [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(tmp_path / "key.pem")],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("VALID")


def test_a_running_export_is_polled_until_it_ends(people, logged):
    client = signed_in(people["auditor"])
    import uuid

    from audit.models import EvidenceExport as Export

    export = Export.objects.create(
        id=uuid.uuid4(),
        requested_by=people["auditor"],
        query={"model": "credit"},
        status="running",
        events_done=3,
        events_total=10,
    )
    row = client.get(f"/evidence/{export.id}/")
    assert row.status_code == 200
    assert 'hx-trigger="every 1s"' in row.content.decode() and 'value="3"' in row.content.decode()
    assert '<span class="nowrap">model=credit</span>' in row.content.decode()


def test_an_export_of_the_whole_log_says_so(people, logged, django_capture_on_commit_callbacks):
    client = signed_in(people["auditor"])
    assert _start(client, django_capture_on_commit_callbacks, model="").status_code == 302
    export = EvidenceExport.objects.get()
    assert export.status == "done" and not any(export.query.values())
    cells = re.findall(r"<td>(.*?)</td>", client.get(f"/evidence/{export.id}/").content.decode(), re.S)
    assert "whole log" in cells


def test_bad_scopes_are_refused_and_nothing_is_queued(people, logged, django_capture_on_commit_callbacks):
    client = signed_in(people["compliance_officer"])
    for fields, named in [
        ({"streams": "no-colon"}, "streams"),
        ({"since": "tomorrow"}, "since"),
        ({"since": "2026-02-01T00:00", "until": "2026-01-01T00:00"}, "until"),
    ]:
        answer = _start(client, django_capture_on_commit_callbacks, **fields)
        assert answer.status_code == 400 and f"<strong>{named}</strong>" in answer.content.decode()
    assert not EvidenceExport.objects.exists()


def test_each_person_sees_their_own_exports_and_admins_all(people, logged, django_capture_on_commit_callbacks):
    auditor, officer, admin = (signed_in(people[role]) for role in ("auditor", "compliance_officer", "admin"))
    _start(auditor, django_capture_on_commit_callbacks)
    export = EvidenceExport.objects.get()
    assert str(export.id) in auditor.get("/evidence/").content.decode()
    assert str(export.id) not in officer.get("/evidence/").content.decode()
    assert officer.get(f"/evidence/{export.id}/download/").status_code == 404
    assert admin.get(f"/evidence/{export.id}/download/").status_code == 200
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(people["compliance_officer"])
    assert api.get("/api/v1/evidence/").json() == []
    assert api.get(f"/api/v1/evidence/{export.id}/").status_code == 404


@pytest.mark.parametrize("role", ["ml_engineer", "risk_approver", "nobody"])
def test_the_evidence_page_is_not_for_other_roles(people, role):
    client = signed_in(people[role])
    assert client.get("/evidence/").status_code == 403
    assert "auditor" in client.get("/evidence/").content.decode()
