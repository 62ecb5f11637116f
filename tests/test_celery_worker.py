"""A real Celery worker on the real Redis broker runs the evidence export and the checkpoint task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection

from audit.models import Checkpoint, EvidenceExport
from audit.store import append
from audit.verifier import verify_bundle
from config.celery import app as celery_app
from tests.audit.factories import alert_event

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def _database_url() -> str:
    params = connection.settings_dict
    host = quote(params["HOST"] or "", safe="")
    port = f":{params['PORT']}" if params.get("PORT") else ""
    password = f":{quote(params['PASSWORD'])}" if params.get("PASSWORD") else ""
    return f"postgres://{params['USER']}{password}@{host}{port}/{params['NAME']}"


@pytest.fixture
def worker(committed_log, tmp_path, signing_key_file, settings):
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))},
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": BROKER,
        "DRIFTLEDGER_DATA_DIR": str(tmp_path / "worker-data"),
        "AUDIT_SIGNING_KEY_FILE": str(signing_key_file),
        "AUDIT_WITNESS_DIR": str(tmp_path / "witness"),
    }
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    celery_app.conf.update(broker_url=BROKER, task_always_eager=False)
    with celery_app.connection_for_write() as broker:  # before the worker declares its queue bindings
        broker.default_channel.client.flushdb()
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    process.log = log
    # Redis drops messages published before the worker has bound its queue: wait until it is ready.
    assert _wait_for(lambda: " ready." in log.read_text() or process.poll() is not None), log.read_text()
    assert process.poll() is None, log.read_text()
    yield process
    celery_app.conf.update(**previous)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _send(task, *args) -> None:
    """Publish on a fresh connection to the test broker (the app's pool may predate it)."""
    with celery_app.connection_for_write(BROKER) as broker:
        task.apply_async(args, connection=broker)


def _wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_worker_runs_the_checkpoint_task_and_an_evidence_export(worker):
    from audit import keyring
    from audit.tasks import checkpoint_if_grown, export_evidence_task

    for _ in range(20):
        event = alert_event()
        append([event], expected={event.stream: 0})
    _send(checkpoint_if_grown)
    assert _wait_for(lambda: Checkpoint.objects.filter(tree_size=20).exists()), worker.log.read_text()

    user = User.objects.create_user("ada")
    export = EvidenceExport.objects.create(id="7f1d3c3a-0000-4000-8000-000000000001", requested_by=user, query={})
    _send(export_evidence_task, str(export.id))
    assert _wait_for(lambda: EvidenceExport.objects.get(id=export.id).status in ("done", "failed")), (
        worker.log.read_text()
    )
    export.refresh_from_db()
    assert export.status == "done", export.error
    assert verify_bundle(Path(export.file), [keyring.current_signing_key().public_raw]).events == 20
