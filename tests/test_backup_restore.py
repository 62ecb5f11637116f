"""The operator's backup and restore (deploy/README.md), with PostgreSQL's own tools: a pg_dump
of a live log restored elsewhere verifies against the witness; an older backup restored after
the witness saw more of the log is detected as a rollback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER = ["-h", "127.0.0.1", "-U", "postgres"]

APPEND = textwrap.dedent(
    """
    import sys
    import django
    django.setup()
    from audit.selectors import stream_version
    from audit.store import append
    from tests.audit.factories import policy_event
    for _ in range(int(sys.argv[1])):
        append([policy_event("credit")], expected={("policy", "credit"): stream_version("policy", "credit")})
    """
)


@pytest.fixture
def databases():
    names = [f"driftledger_{role}_{os.getpid()}" for role in ("live", "restored", "rolled_back")]
    for name in names:
        subprocess.run(["psql", *SERVER, "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       check=True)  # fmt: skip
    yield names
    for name in names:
        subprocess.run(["psql", *SERVER, "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       check=True)  # fmt: skip


def _manage(database: str, data: Path, *arguments: str, script: str | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
                   "DRIFTLEDGER_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "config.settings"}  # fmt: skip
    command = [sys.executable, "-c", script, *arguments] if script else [sys.executable, "manage.py", *arguments]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


def _restore(backup: Path, database: str) -> None:
    subprocess.run(["createdb", *SERVER, database], check=True)
    subprocess.run(["pg_restore", *SERVER, "--no-owner", "-d", database, str(backup)], check=True)


def test_a_backup_restored_elsewhere_verifies_and_an_older_one_is_a_rollback(databases, tmp_path):
    live, restored, rolled_back = databases
    data = tmp_path / "data"
    witness = data / "witness"
    subprocess.run(["createdb", *SERVER, live], check=True)
    assert _manage(live, data, "migrate", "--verbosity", "0").returncode == 0
    assert _manage(live, data, "30", script=APPEND).returncode == 0
    checkpoint = _manage(live, data, "audit_checkpoint")
    assert "tree size 30" in checkpoint.stdout, checkpoint.stderr
    backup = tmp_path / "driftledger.dump"
    subprocess.run(["pg_dump", *SERVER, "-Fc", "-f", str(backup), live], check=True)

    _restore(backup, restored)
    verified = _manage(restored, data, "audit_verify", "--witness", str(witness))
    assert verified.returncode == 0 and "OK: 30 events verified" in verified.stdout, verified.stderr

    # The live log goes on and the witness sees it; then the old backup comes back.
    assert _manage(live, data, "20", script=APPEND).returncode == 0
    assert "tree size 50" in _manage(live, data, "audit_checkpoint").stdout
    _restore(backup, rolled_back)
    refused = _manage(rolled_back, data, "audit_verify", "--witness", str(witness))
    assert refused.returncode == 1
    assert "covers 50 events but the log holds 30" in refused.stderr, refused.stderr
