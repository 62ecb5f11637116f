"""`manage.py serve` on the default set-up (no broker configured): the web server answers, a run
requested over HTTP goes through the broker in files to the local worker (never the web
process), and Ctrl-C stops the web server, the worker and beat."""

from __future__ import annotations

import base64
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from django.conf import global_settings

from monitoring.models import Run
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, PASSWORD, SCHEMA, person
from tests.monitoring.runs.conftest import NOW, _ingest, _rows
from tests.workers import database_url, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _up(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200
    except OSError:
        return False


@pytest.fixture
def served(committed_log, tmp_path, signing_key_file, settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the served processes' own
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    _ingest("predictions", _rows(1500, start=NOW - dt.timedelta(hours=2), shift=0.8, seed=2))
    person("ivy", "ml_engineer")
    port = _free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))},
        "DATABASE_URL": database_url(),
        "DRIFTLEDGER_DATA_DIR": str(tmp_path),
        "AUDIT_SIGNING_KEY_FILE": str(signing_key_file),
        "AUDIT_WITNESS_DIR": str(tmp_path / "witness"),
    }
    log = tmp_path / "serve.log"
    command = [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--web-workers", "1"]
    process = subprocess.Popen(
        [*command, "--concurrency", "1"], cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _up(url) or process.poll() is not None, seconds=90), log.read_text()
        assert process.poll() is None, log.read_text()
        yield process, url, log, port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_runs_requests_on_its_worker_and_stops_cleanly_on_ctrl_c(served, tmp_path):
    process, url, log, port = served
    credentials = base64.b64encode(f"ivy:{PASSWORD}".encode()).decode()
    start, end = NOW - dt.timedelta(hours=3), NOW
    answer = requests.post(
        f"{url}/api/v1/models/credit/runs/",
        json={"start": start.isoformat(), "end": end.isoformat()},
        headers={"Authorization": f"Basic {credentials}"},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["run_id"]
    assert list((tmp_path / "broker" / "control").iterdir())  # the web process published to the broker in files
    assert wait_for(lambda: Run.objects.filter(run_id=run_id, status="completed").exists(), seconds=90), log.read_text()
    assert wait_for(lambda: "run_monitoring" in log.read_text() and "succeeded" in log.read_text())
    assert requests.get(f"{url}/api/v1/docs/", timeout=10).status_code == 200  # static files served too

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0, log.read_text()
    assert "Stopped: web server, worker and beat." in log.read_text()
    time.sleep(1)
    left = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"127.0.0.1:{port}" not in left and str(tmp_path / "celerybeat-schedule") not in left


@pytest.mark.parametrize(
    ("option", "value"), [("--web-workers", "0"), ("--web-workers", "100000"), ("--concurrency", "257")]
)
def test_serve_refuses_a_number_of_processes_out_of_range(option, value):
    """Refused before anything starts: 100,000 would fork until the machine stops answering."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--web-workers and --concurrency must be 1 to 256"):
        call_command("serve", option, value)
