"""Witness cosigning: what it adds to a checkpoint, and offline verification under a witness policy.

Two witness processes (`python -m audit.witness serve`, on this machine, over HTTP) cosign the
log's checkpoints. Measured in the same run:

  checkpoint        checkpoint_create over 1,000 new events (the baseline), then cosign() of
                    that checkpoint by both witnesses (what cosigning adds); median and max of
                    --rounds rounds. Target: cosigning adds < 20 ms.
  verify            python -m audit.verifier over a bundle of the whole log (--events, 100,000
                    by default) with its two cosignatures: with the witness policy (two
                    --witness-key, quorum 2) against the same bundle without it.
                    Target: >= 10,000 events/s with the policy.

    python bench/witness.py [--events 100000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import ACTOR, fill, scratch_database, timed
from django.conf import settings

from audit import keyring
from audit.checkpoints import checkpoint_create
from audit.cosigning import cosign
from audit.evidence import EvidenceQuery, evidence_export
from audit.models import LogInfo
from audit.witness_local import witness_create

ROOT = Path(__file__).resolve().parents[1]


def _verify(bundle: Path, *options: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "audit.verifier", str(bundle), *options], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"verification failed: {done.stderr}")
    return int(re.match(r"VALID: (\d+) events", done.stdout).group(1)) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    options = parser.parse_args()
    with scratch_database("driftledger_bench_witness") as scratch:
        fill(1, stream="genesis")  # each fill its own stream: fill numbers its stream's versions from 1
        log_pem = scratch / "log.pem"
        log_pem.write_bytes(keyring.current_signing_key().public_pem())
        log_id = str(LogInfo.objects.get().log_id)
        witnesses = [witness_create(scratch / name, name, log_id, log_pem).start() for name in ("bench-a", "bench-b")]
        try:
            settings.AUDIT_COSIGNING_WITNESSES = [w.setting() for w in witnesses]
            started = time.perf_counter()
            fill(options.events - 1 - 1000 * options.rounds, stream="bulk")
            cosign(checkpoint_create(publish=False))
            filled = time.perf_counter() - started
            print(f"filled {options.events - 1000 * options.rounds:,} signed events in {filled:.1f} s (set-up)")
            checkpointing, cosigning = [], []
            for round_ in range(options.rounds):
                fill(1000, stream=f"round-{round_}")
                seconds, checkpoint = timed(lambda: checkpoint_create(publish=False))
                checkpointing.append(seconds * 1000)
                seconds, failures = timed(cosign, checkpoint)
                if failures:
                    raise SystemExit(f"a witness refused: {failures}")
                cosigning.append(seconds * 1000)
            bundle = scratch / "bundle.zip"
            summary = evidence_export(query=EvidenceQuery(), out=bundle, created_by=ACTOR)
            pems = []
            for witness in witnesses:
                (scratch / f"{witness.name}.pem").write_bytes(witness.public_pem)
                pems += ["--witness-key", str(scratch / f"{witness.name}.pem")]
            without = _verify(bundle, "--trusted-key", str(log_pem))
            with_policy = _verify(bundle, "--trusted-key", str(log_pem), *pems)
        finally:
            for witness in witnesses:
                witness.kill()
    median_cp, median_co = statistics.median(checkpointing), statistics.median(cosigning)
    print(f"{'measure':52} {'median':>9} {'max':>9} {'target':>12}")
    print(f"{'checkpoint of 1,000 new events (baseline)':52} {median_cp:7.1f}ms {max(checkpointing):7.1f}ms")
    flag = "ok" if median_co < 20 else "ABOVE"
    print(
        f"{'cosigning by 2 witness processes (added)':52} {median_co:7.1f}ms {max(cosigning):7.1f}ms "
        f"{'< 20 ms':>12} {flag}  (x{(median_cp + median_co) / median_cp:.2f} the checkpoint)"
    )
    flag = "ok" if with_policy >= 10_000 else "BELOW"
    print(f"bundle: {summary.events:,} events, tree size {summary.tree_size:,}, 2 cosignatures")
    print(f"{'verify without a witness policy (baseline)':52} {without:9,.0f}/s")
    print(
        f"{'verify with --witness-key x2, quorum 2':52} {with_policy:9,.0f}/s {'':9} {'>= 10,000/s':>12} {flag}"
        f"  (x{with_policy / without:.2f} the baseline)"
    )


if __name__ == "__main__":
    main()
