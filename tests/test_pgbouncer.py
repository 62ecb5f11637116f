"""Behind PgBouncer in transaction pooling (Debian's pgbouncer, started here): 8 writers with 2
server connections between them append to the log at once; the chain is gapless and verifies.
Transaction-level advisory locks order the appends there, and with DATABASE_TRANSACTION_POOLING
no statement is prepared on a server connection that the next transaction may not get."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SERVER = {"host": "127.0.0.1", "port": "5432", "user": "postgres"}

WRITERS = textwrap.dedent(
    """
    import threading
    import django
    django.setup()
    from django.db import connection
    from audit.models import Event
    from audit.selectors import stream_version
    from audit.store import ConcurrencyConflict, append
    from audit.verify import verify_log
    from tests.audit.factories import policy_event

    errors = []

    def write(number):
        try:
            for _ in range(60):
                model = f"model-{number % 4}"  # two writers on each stream: conflicts, retried
                while True:
                    version = stream_version("policy", model)
                    try:
                        append([policy_event(model)], expected={("policy", model): version})
                        break
                    except ConcurrencyConflict:
                        continue
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 481)), (len(seqs), seqs[:5])
    report = verify_log()
    assert report.failure is None, report.failure
    print("VERIFIED", report.events)
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _psql(sql: str) -> None:
    subprocess.run(["psql", "-h", SERVER["host"], "-U", SERVER["user"], "-d", "postgres", "-qc", sql], check=True)


@pytest.fixture
def pooled(tmp_path):
    if not os.path.exists(PGBOUNCER):
        pytest.fail("Debian's pgbouncer is needed: apt-get install -y pgbouncer (.ci/run installs it)")
    database = f"driftledger_pgbouncer_{os.getpid()}"
    _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    _psql(f"CREATE DATABASE {database}")
    port = _free_port()
    config = Path(tempfile.mkdtemp(prefix="driftledger-pgbouncer-"))  # readable by the postgres user it runs as
    (config / "users.txt").write_text('"postgres" ""\n')
    (config / "pgbouncer.ini").write_text(
        textwrap.dedent(
            f"""
            [databases]
            driftledger = host={SERVER["host"]} port={SERVER["port"]} dbname={database} user={SERVER["user"]}
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port}
            unix_socket_dir =
            auth_type = trust
            auth_file = {config / "users.txt"}
            pool_mode = transaction
            server_round_robin = 1
            default_pool_size = 2
            max_client_conn = 100
            logfile = {config / "pgbouncer.log"}
            pidfile = {config / "pgbouncer.pid"}
            """
        )
    )
    for path in (config, *config.iterdir()):
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    command = [PGBOUNCER, str(config / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        command[1:1] = ["-u", "postgres"]
    bouncer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(50):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/driftledger",
        "DATABASE_TRANSACTION_POOLING": "true",
        "DRIFTLEDGER_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    log = (config / "pgbouncer.log").read_text() if (config / "pgbouncer.log").exists() else ""
    assert bouncer.poll() is None, (bouncer.stdout.read() if bouncer.stdout else b"").decode() + log
    try:
        yield environment, config / "pgbouncer.log"
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=10)
        shutil.rmtree(config, ignore_errors=True)
        _psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_concurrent_appends_through_pgbouncer_in_transaction_pooling(pooled):
    environment, log = pooled
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    written = subprocess.run(
        [sys.executable, "-c", WRITERS], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert written.returncode == 0, written.stderr[-3000:] + log.read_text()[-2000:]
    assert "VERIFIED 480" in written.stdout
