"""Starting real Celery workers on the real Redis broker, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def database_url(host: str | None = None, port: int | None = None) -> str:
    params = connection.settings_dict
    host = quote(host or params["HOST"] or "", safe="")
    port = port or params.get("PORT")
    password = f":{quote(params['PASSWORD'])}" if params.get("PASSWORD") else ""
    return f"postgres://{params['USER']}{password}@{host}{f':{port}' if port else ''}/{params['NAME']}"


def launch_worker(
    tmp_path: Path, signing_key_file: Path, *, name: str = "worker", pool: str = "solo", **environment: str
):
    """A `celery worker` subprocess (one process: `--pool solo`; or one prefork child, which
    time limits and memory limits need), ready to consume; its log is `process.log`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))},
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": BROKER,
        "DRIFTLEDGER_DATA_DIR": str(tmp_path),  # its media root is the test's: tmp_path / "media"
        "AUDIT_SIGNING_KEY_FILE": str(signing_key_file),
        "AUDIT_WITNESS_DIR": str(tmp_path / "witness"),
        **environment,
    }
    log = tmp_path / f"{name}.log"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool",
        pool,
        "--concurrency",
        "1",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{name}@%h",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    process.log = log
    # Redis drops messages published before the worker has bound its queue: wait until it is ready.
    assert wait_for(lambda: " ready." in log.read_text() or process.poll() is not None), log.read_text()
    assert process.poll() is None, log.read_text()
    return process


def use_test_broker() -> dict:
    """Point this process's Celery app at the test broker (emptied); returns what to restore."""
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    celery_app.conf.update(broker_url=BROKER, task_always_eager=False)
    with celery_app.connection_for_write() as broker:
        broker.default_channel.client.flushdb()
    return previous


def send(task, *args, **options) -> None:
    """Publish on a fresh connection to the test broker (the app's pool may predate it)."""
    with celery_app.connection_for_write(BROKER) as broker:
        task.apply_async(args, connection=broker, **options)


def wait_for(condition, seconds: float = 60.0, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def stop_worker(process) -> None:
    """A warm shutdown, or a kill when it does not come."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
