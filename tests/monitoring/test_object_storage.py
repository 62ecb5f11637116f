"""Data files and evidence exports in an S3-compatible store: a real S3 API server on loopback
(moto in server mode, its own process), reached through a proxy that can take it away."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import socket
import subprocess
import sys
import zipfile

import boto3
import orjson
import pytest
from celery.exceptions import Retry
from django.test import Client

from audit.blobs import StorageUnavailable
from audit.models import Event, EvidenceExport
from audit.verifier import verify_bundle
from config.celery import app as celery_app
from config.storage import s3_storage
from monitoring.ingestion.files import batch_file_read
from monitoring.ingestion.models import Batch
from monitoring.runs.models import Run
from tests.monitoring.conftest import client_for, person
from tests.monitoring.runs.conftest import NOW, _rows
from tests.proxy import Cuttable
from tests.workers import launch_worker, send, stop_worker, use_test_broker, wait_for

BUCKET = "driftledger-data"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    assert wait_for(listening, seconds=30), log.read_text()
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def store(s3_server, settings, monkeypatch):
    """Django's default storage in a fresh bucket of the S3 server, reached through a proxy."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.resource("s3", endpoint_url=s3_server, region_name="eu-west-1")
    bucket = s3.Bucket(BUCKET)
    if bucket.creation_date is None:
        bucket.create(CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    bucket.objects.all().delete()
    port = int(s3_server.rsplit(":", 1)[1])
    proxy = Cuttable(("127.0.0.1", port))
    endpoint = f"http://127.0.0.1:{proxy.port}"
    # The options production builds from STORAGE_S3_*: timeouts and retries included.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(bucket=BUCKET, endpoint_url=endpoint, region="eu-west-1"),
    }
    proxy.bucket, proxy.endpoint = bucket, endpoint
    yield proxy
    proxy.open = True


def web_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _keys(bucket) -> set[str]:
    return {item.key for item in bucket.objects.all()}


@pytest.fixture
def reported_to_store(store, credit_key):
    service = client_for(key=credit_key)
    for kind, rows in (
        ("reference", _rows(2000, start=NOW, seed=1, reference=True)),
        ("predictions", _rows(1000, start=NOW - dt.timedelta(hours=3), shift=0.5, seed=2)),
    ):
        answer = service.post(f"/api/v1/models/credit/{kind}/", orjson.dumps(rows), content_type="application/json")
        assert answer.status_code == 201, answer.content
    return NOW - dt.timedelta(hours=3), NOW


def test_batch_files_live_in_the_bucket_once_each(store, credit_key):
    service = client_for(key=credit_key)
    rows = _rows(500, start=NOW, seed=1, reference=True)
    answer = service.post("/api/v1/models/credit/reference/", orjson.dumps(rows), content_type="application/json")
    assert answer.status_code == 201, answer.content
    batch = Batch.objects.get()
    stored = store.bucket.Object(f"blobs/{batch.sha256}").get()["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == batch.sha256  # content-addressed, byte for byte
    assert batch_file_read(f"blobs/{batch.sha256}").num_rows == 500  # read back through the storage
    again = service.post("/api/v1/models/credit/reference/", orjson.dumps(rows), content_type="application/json")
    assert again.status_code in (200, 201) and _keys(store.bucket) == {f"blobs/{batch.sha256}"}


def test_with_the_store_down_ingestion_answers_503_and_records_nothing(store, credit_key):
    service = client_for(key=credit_key)
    rows = orjson.dumps(_rows(200, start=NOW, seed=3, reference=True))
    events_before = Event.objects.count()
    store.cut()
    refused = service.post("/api/v1/models/credit/reference/", rows, content_type="application/json")
    assert refused.status_code == 503, refused.content
    assert refused["Retry-After"] == "30"
    assert "object store is unreachable" in refused.json()["detail"]
    assert "127.0.0.1" not in refused.content.decode() and BUCKET not in refused.content.decode()
    assert Event.objects.count() == events_before and not Batch.objects.exists()
    store.open = True
    accepted = service.post("/api/v1/models/credit/reference/", rows, content_type="application/json")
    assert accepted.status_code == 201, accepted.content
    assert Batch.objects.count() == 1


@pytest.fixture
def s3_worker(store, committed_log, tmp_path, signing_key_file):
    previous = use_test_broker()
    worker = launch_worker(
        tmp_path,
        signing_key_file,
        STORAGE_S3_BUCKET=BUCKET,
        STORAGE_S3_ENDPOINT_URL=store.endpoint,
        **CREDENTIALS,
    )
    yield worker
    celery_app.conf.update(**previous)
    stop_worker(worker)


def test_an_export_waits_out_the_store_going_down_and_lands_in_the_bucket(store, s3_worker, signing_key_file):
    from audit import keyring
    from audit.tasks import export_evidence_task
    from monitoring.registry import services as registry
    from tests.monitoring.conftest import ALICE, SCHEMA

    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    service_key = registry.api_key_issue(name="credit", label="svc", expires_at=None, actor=ALICE)[1]
    rows = orjson.dumps(_rows(300, start=NOW, seed=1, reference=True))
    assert (
        client_for(key=service_key)
        .post("/api/v1/models/credit/reference/", rows, content_type="application/json")
        .status_code
        == 201
    )

    auditor = person("ada", "auditor")
    export = EvidenceExport.objects.create(
        id="7f1d3c3a-0000-4000-8000-0000000000e1", requested_by=auditor, query={"include_data": True}
    )
    store.cut()  # down before the worker reads the batch file the bundle carries
    send(export_evidence_task, str(export.id))
    assert wait_for(lambda: "trying again" in EvidenceExport.objects.get(id=export.id).error, seconds=60), (
        s3_worker.log.read_text()
    )
    assert EvidenceExport.objects.get(id=export.id).status == "queued"
    store.open = True
    assert wait_for(lambda: EvidenceExport.objects.get(id=export.id).status in ("done", "failed"), seconds=90), (
        s3_worker.log.read_text()
    )
    export.refresh_from_db()
    assert export.status == "done" and export.error == "", export.error
    assert export.file == f"evidence/{export.id}.zip" and export.file in _keys(store.bucket)

    download = client_for(auditor).get(f"/api/v1/evidence/{export.id}/download/")
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert any(name.startswith("data/") for name in archive.namelist())
    bundle = signing_key_file.parent / "from-the-bucket.zip"
    bundle.write_bytes(body)
    exported = Event.objects.exclude(event_type="audit.EvidenceExported").count()
    assert verify_bundle(bundle, [keyring.current_signing_key().public_raw]).events == exported
    assert Event.objects.filter(event_type="audit.EvidenceExported").count() == 1


def test_a_download_while_the_store_is_down_is_a_503_and_works_after(db, store, django_capture_on_commit_callbacks):
    auditor = person("ada", "auditor")
    with django_capture_on_commit_callbacks(execute=True):  # the export runs here, into the bucket
        created = client_for(auditor).post("/api/v1/evidence/", {}, format="json")
    export = EvidenceExport.objects.get(id=created.json()["id"])
    assert export.status == "done" and export.file in _keys(store.bucket), export.error
    store.cut()
    refused = client_for(auditor).get(f"/api/v1/evidence/{export.id}/download/")
    assert refused.status_code == 503 and refused["Retry-After"] == "30", refused.content
    page = web_client(auditor).get(f"/evidence/{export.id}/download/")
    assert page.status_code == 503 and "unreachable" in page.content.decode()
    store.open = True
    download = client_for(auditor).get(f"/api/v1/evidence/{export.id}/download/")
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == export.sha256


def test_a_run_while_the_store_is_down_is_retried_not_failed(store, reported_to_store):
    from monitoring.runs.services import run_execute

    start, end = reported_to_store
    store.cut()
    with pytest.raises(StorageUnavailable):  # the task retries it (INFRASTRUCTURE_ERRORS)
        run_execute(model="credit", start=start, end=end)
    assert not Run.objects.filter(status="failed").exists()
    assert not Event.objects.filter(event_type="monitoring.RunFailed").exists()
    store.open = True
    outcome = run_execute(model="credit", start=start, end=end)
    assert Run.objects.get(run_id=outcome.run_id).status == "completed"
    assert Event.objects.filter(event_type="monitoring.RunStarted").count() == 1


def test_an_export_the_store_never_takes_fails_with_the_reason_and_records_nothing(db, store):
    """The bundle is written, its upload is refused every time: after its retries the export
    fails, saying why, and the log never names a bundle that was not delivered."""
    from audit.tasks import EXPORT_STORAGE_RETRIES, export_evidence_task

    auditor = person("ada", "auditor")
    export = EvidenceExport.objects.create(id="7f1d3c3a-0000-4000-8000-0000000000e2", requested_by=auditor, query={})
    store.cut()
    with pytest.raises(Retry):  # the first try: back in the queue, to try again in 5 s
        export_evidence_task.apply(args=[str(export.id)], throw=True)
    export.refresh_from_db()
    assert export.status == "queued" and "trying again" in export.error, export.error
    # The last retry the task allows: it gives up, with the reason.
    export_evidence_task.apply(args=[str(export.id)], retries=EXPORT_STORAGE_RETRIES, throw=True)
    export.refresh_from_db()
    assert export.status == "failed" and "object store is unreachable" in export.error, export.error
    assert not Event.objects.filter(event_type="audit.EvidenceExported").exists()
    assert export_evidence_task.max_retries == EXPORT_STORAGE_RETRIES  # Celery's own limit agrees
    store.open = True
    assert not _keys(store.bucket)


@pytest.fixture
def checkpointed_log(committed_log, settings):
    """20 events in partitions of 8, checkpointed: the first two partitions can be archived."""
    from audit import checkpoints
    from audit.store import append
    from tests.audit.factories import policy_event

    settings.AUDIT_PARTITION_EVENTS = 8
    for version in range(20):
        append([policy_event("credit")], expected={("policy", "credit"): version})
    checkpoints.checkpoint_create(publish=False)


def test_an_archived_segment_lives_in_the_bucket_and_verifies_from_there(checkpointed_log, store):
    from django.core.management import call_command

    from audit.archive import partition_archive, partition_states, segment_manifest_read
    from audit.canonical import canonicalize
    from tests.audit.factories import ALICE

    first = next(s for s in partition_states() if s.first_seq == 1)
    segment = partition_archive(first.name, actor=ALICE)
    stored = store.bucket.Object(f"blobs/{segment.file_sha256}").get()["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == segment.file_sha256 and len(stored) == segment.file_bytes
    manifest = store.bucket.Object(f"blobs/{segment.manifest_sha256}").get()["Body"].read()
    assert manifest == canonicalize(segment_manifest_read(segment))
    out = io.StringIO()
    call_command("audit_archive", "--verify", stdout=out)
    assert "segment 1 to 8: OK, 8 events verified" in out.getvalue()


def test_with_the_store_down_archiving_fails_and_records_nothing(checkpointed_log, store):
    from django.core.management import call_command

    from audit.models import LogSegment

    store.cut()
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--archive-all", stderr=err)
    assert exited.value.code == 1 and "object store is unreachable" in err.getvalue()
    assert "nothing was recorded" in err.getvalue()
    assert not LogSegment.objects.exists() and not Event.objects.filter(event_type="audit.SegmentArchived").exists()
    store.open = True
    call_command("audit_archive", "--archive-all", stdout=io.StringIO())
    assert LogSegment.objects.count() == 2
