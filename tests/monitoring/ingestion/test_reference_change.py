"""The reference is what every run compares against: once a model has run, a reference batch
changes what alerts, so it is staged (stored, not recorded) and joins the reference only
through an approved `reference_change` request. No role and no key adds it directly."""

import datetime as dt

import orjson
import pytest

from audit.blobs import blob_exists
from audit.models import Event
from monitoring.ingestion.selectors import window_digests
from monitoring.models import Batch, Remediation, Run
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import approved, client_for
from tests.monitoring.ingestion.test_ingestion import NOW, post, records

pytestmark = pytest.mark.django_db


def _reference(count: int, start: int = 0) -> bytes:
    rows = [
        {k: v for k, v in r.items() if k not in ("id", "timestamp")} | {"defaulted": i % 2}
        for i, r in enumerate(records(count, start))
    ]
    return orjson.dumps(rows)


@pytest.fixture
def has_run(credit_key):
    """A model with a reference and a run over its predictions."""
    key = client_for(key=credit_key)
    assert post(key, "reference", _reference(60), "application/json").status_code == 201
    assert post(key, "reference", _reference(60, 100), "application/json").status_code == 201  # before any run: direct
    assert post(key, "predictions", orjson.dumps(records(60)), "application/json").status_code == 201
    run_execute(model="credit", start=NOW - dt.timedelta(hours=2), end=NOW + dt.timedelta(minutes=1))
    return key


def test_a_reference_batch_after_the_first_run_is_staged_and_needs_an_approved_request(has_run, people):
    before = (Event.objects.count(), Batch.objects.filter(kind="reference").count())
    for client in (has_run, client_for(people["ml_engineer"])):  # the model's key, and an engineer
        answer = post(client, "reference", _reference(60, 200), "application/json")
        assert answer.status_code == 409, answer.json()
        body = answer.json()
        assert body["approval"]["kind"] == "reference_change" and "staged as" in body["detail"]
        staged = body["approval"]["parameters"]["batch"]
        assert blob_exists(staged)
    assert (Event.objects.count(), Batch.objects.filter(kind="reference").count()) == before  # nothing recorded

    request_id = approved("credit", "reference_change", {"batch": staged}, reason="the October reference")
    assert Remediation.objects.get(request_id=request_id).state == "succeeded"
    adopted = Batch.objects.get(kind="reference", sha256=staged)
    event = Event.objects.get(event_type="monitoring.BatchIngested", payload__file_digest=staged)
    envelope = orjson.loads(bytes(event.canonical))
    assert envelope["actor"]["kind"] == "system" and request_id in envelope["reason"]  # the executor, citing it
    assert staged in window_digests(model="credit", kind="reference")  # the next run reads it
    assert adopted.rows == 60


def test_a_reference_change_names_a_staged_batch_not_yet_in_the_reference(has_run, people):
    engineer = client_for(people["ml_engineer"])

    def asked(batch: object):
        body = {"model": "credit", "kind": "reference_change", "parameters": {"batch": batch}, "reason": "r"}
        return engineer.post("/api/v1/remediations/", body, format="json")

    assert asked("0" * 64).status_code == 400  # no such staged file
    assert asked("not a digest").status_code == 400
    in_reference = Batch.objects.filter(kind="reference").first().sha256
    answer = asked(in_reference)
    assert answer.status_code == 400 and "already" in answer.json()["detail"]
    a_run_result = Run.objects.get().result_digest  # a stored file, but no batch of reference rows
    assert asked(a_run_result).status_code == 400
    assert not Remediation.objects.exists()  # nothing filed


def test_before_any_run_reference_batches_are_added_directly(credit_key):
    key = client_for(key=credit_key)
    for start in (0, 100, 200):  # a reference sent in several batches, as a large one is
        assert post(key, "reference", _reference(30, start), "application/json").status_code == 201
    assert Batch.objects.filter(kind="reference").count() == 3


def test_a_reference_batch_sent_again_is_the_one_the_reference_holds(has_run):
    again = post(has_run, "reference", _reference(60), "application/json")
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_a_staged_batch_changed_in_storage_after_the_request_never_joins_the_reference(has_run, people, settings):
    """The approvers sign a batch by its SHA-256; what is executed is those bytes or nothing."""
    from pathlib import Path

    from django.contrib.auth.models import User

    from audit.store import Actor
    from monitoring.remediation.services import (
        remediation_decide,
        remediation_load,
        remediation_request,
        remediation_run,
    )
    from tests.monitoring.conftest import PASSWORD, person

    staged = post(has_run, "reference", _reference(60, 200), "application/json").json()["approval"]["parameters"]
    engineer = User.objects.get(username=people["ml_engineer"].username)
    request_id = remediation_request(
        model="credit",
        kind="reference_change",
        parameters=staged,
        evidence=[],
        actor=Actor("user", engineer.username, engineer.get_full_name()),
        reason="the October reference",
    )
    stored = Path(settings.MEDIA_ROOT) / "blobs" / staged["batch"]
    other = post(has_run, "reference", _reference(60, 300), "application/json").json()["approval"]["parameters"]
    stored.write_bytes((Path(settings.MEDIA_ROOT) / "blobs" / other["batch"]).read_bytes())  # other rows, same name
    before = (
        Batch.objects.filter(kind="reference").count(),
        Event.objects.filter(event_type="monitoring.BatchIngested").count(),
    )
    for index in range(settings.REMEDIATION_APPROVALS.get("reference_change", 1)):
        approver = person(f"approver{index}", "risk_approver")
        remediation_decide(request_id=request_id, decision="approve", user=approver, password=PASSWORD, reason="ok")
    if remediation_load(request_id).state.value == "approved":
        remediation_run(request_id)
    request = Remediation.objects.get(request_id=request_id)
    assert request.state == "failed" and "was changed in storage" in request.error, request.error
    after = (
        Batch.objects.filter(kind="reference").count(),
        Event.objects.filter(event_type="monitoring.BatchIngested").count(),
    )
    assert after == before  # neither the signed batch nor the other joined
