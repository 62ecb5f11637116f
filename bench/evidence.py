"""Evidence export of 100k events, and their standalone offline verification.

Targets (issue 3): export < 10 s; `python -m audit.verifier` >= 10,000 events/s on 2 cores.
The verifier runs as auditors run it: a separate process, with a trusted key PEM.

    python bench/evidence.py [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import ACTOR, fill, scratch_database, timed
from cryptography.hazmat.primitives import serialization

from audit import keyring
from audit.checkpoints import checkpoint_create
from audit.evidence import EvidenceQuery, evidence_export

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    options = parser.parse_args()
    with scratch_database("driftledger_bench_evidence") as scratch:
        started = time.perf_counter()
        fill(options.events)
        filled = time.perf_counter() - started
        # In service, beat has checkpointed a log this size long before anyone exports it.
        first_checkpoint, _ = timed(lambda: checkpoint_create(publish=False))
        out = scratch / "bundle.zip"
        started = time.perf_counter()
        summary = evidence_export(query=EvidenceQuery(), out=out, created_by=ACTOR)
        exported = time.perf_counter() - started
        pem = scratch / "trusted.pem"
        pem.write_bytes(
            keyring.current_signing_key()
            .private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        started = time.perf_counter()
        verified = subprocess.run(
            [sys.executable, "-m", "audit.verifier", str(out), "--trusted-key", str(pem)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        verifying = time.perf_counter() - started
        size_mb = out.stat().st_size / 1e6
    if verified.returncode != 0:
        raise SystemExit(f"verification failed: {verified.stderr}")
    events = int(re.match(r"VALID: (\d+) events", verified.stdout).group(1))
    print(f"filled {options.events:,} signed events in {filled:.1f} s (set-up, not measured)")
    print(f"first checkpoint of the fresh log (beat's job in service): {first_checkpoint:.2f} s")
    print(f"{'step':44} {'seconds':>8} {'events/s':>10} {'target':>14}")
    flag = "ok" if exported < 10 else "BELOW"
    print(
        f"{'export_evidence (checkpoint + bundle)':44} {exported:8.2f} {summary.events / exported:10,.0f} "
        f"{'< 10 s':>14} {flag}  ({size_mb:.1f} MB zip)"
    )
    rate = events / verifying
    flag = "ok" if rate >= 10_000 else "BELOW"
    print(
        f"{'python -m audit.verifier (process, 2 cores)':44} {verifying:8.2f} {rate:10,.0f} "
        f"{'>= 10,000/s':>14} {flag}  ({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
