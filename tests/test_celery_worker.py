"""A real Celery worker on the real Redis broker runs the evidence export and the checkpoint task."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from audit.models import Checkpoint, EvidenceExport
from audit.store import append
from audit.verifier import verify_bundle
from config.celery import app as celery_app
from tests.audit.factories import noted_event
from tests.workers import launch_worker, send, stop_worker, use_test_broker, wait_for


@pytest.fixture
def worker(committed_log, tmp_path, signing_key_file, settings):
    previous = use_test_broker()
    process = launch_worker(tmp_path, signing_key_file)
    yield process
    celery_app.conf.update(**previous)
    stop_worker(process)


def test_worker_runs_the_checkpoint_task_and_an_evidence_export(worker, tmp_path):
    from audit import keyring
    from audit.tasks import checkpoint_if_grown, export_evidence_task

    for _ in range(20):
        event = noted_event()
        append([event], expected={event.stream: 0})
    send(checkpoint_if_grown)
    assert wait_for(lambda: Checkpoint.objects.filter(tree_size=20).exists()), worker.log.read_text()

    user = User.objects.create_user("ada")
    export = EvidenceExport.objects.create(id="7f1d3c3a-0000-4000-8000-000000000001", requested_by=user, query={})
    send(export_evidence_task, str(export.id))
    assert wait_for(lambda: EvidenceExport.objects.get(id=export.id).status in ("done", "failed")), (
        worker.log.read_text()
    )
    export.refresh_from_db()
    assert export.status == "done", export.error
    bundle = tmp_path / "media" / export.file  # the worker's storage: its data dir's media
    assert verify_bundle(bundle, [keyring.current_signing_key().public_raw]).events == 20
