"""Recompute a recorded run from the inputs it recorded and show the result is identical."""

from __future__ import annotations

import orjson
from django.core.management.base import BaseCommand, CommandError

from audit.blobs import BlobCorrupt, blob_exists, blob_read
from audit.canonical import canonicalize
from audit.envelope import parse_time
from monitoring.runs.domain import RunStatus
from monitoring.runs.services import ENGINE, computed_with, run_load, run_result


class Command(BaseCommand):
    help = "Recompute RUN_ID from its recorded inputs, policy and window; exit 0 when the result is identical."

    def add_arguments(self, parser):
        parser.add_argument("run_id")

    def handle(self, *args, run_id: str, **options):
        run = run_load(run_id)
        if run.status is not RunStatus.COMPLETED:
            raise CommandError(f"no completed run {run_id!r}")
        digest = run.result_digest
        if not digest or not blob_exists(digest):
            raise CommandError(f"run {run_id} has no stored result to compare with")
        try:
            recorded = blob_read(digest)  # storage is not the log: what it holds is checked
        except BlobCorrupt as exc:
            raise CommandError(
                f"the stored result of run {run_id} is not the one the log recorded (SHA-256 {digest}): "
                "it was changed or replaced in storage, so nothing can be reproduced from it"
            ) from exc
        stored = orjson.loads(recorded)
        if "inputs" not in stored:
            raise CommandError(f"run {run_id} predates reproducible results (no recorded inputs)")
        if stored.get("engine", 1) != ENGINE:
            raise CommandError(
                f"run {run_id} was computed by engine {stored.get('engine', 1)} and this code is engine {ENGINE}: "
                "its figures are recomputed byte for byte by the Driftledger version that recorded it "
                "(what each engine changed: docs/monitoring.md)"
            )
        again = run_result(
            stored["model"],
            parse_time(stored["window"]["start"]),
            parse_time(stored["window"]["end"]),
            stored["policy_version"],
            stored["policy"],
            run_id,
            inputs=stored["inputs"],
        )
        if canonicalize(again) != recorded:
            different = sorted(k for k in stored if stored.get(k) != again.get(k) and k != "versions")
            self.stderr.write(f"DIFFERENT: run {run_id} recomputed differs in {', '.join(different)}")
            then, now = stored.get("versions", {}), computed_with()
            moved = [f"{name} {then[name]} then, {now[name]} now" for name in then if then[name] != now.get(name)]
            if moved:
                self.stderr.write(f"  computed with other libraries: {'; '.join(moved)} (install the lock file's)")
            raise SystemExit(1)
        checks = len(stored["checks"])
        self.stdout.write(
            f"IDENTICAL: run {run_id} recomputed from {sum(map(len, stored['inputs'].values()))} "
            f"input file(s): {checks} checks, result {digest[:16]}… byte for byte"
        )
