"""Recompute a recorded run from the inputs it recorded and show the result is identical."""

from __future__ import annotations

import orjson
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from audit.canonical import canonicalize
from audit.envelope import parse_time
from audit.models import Event
from monitoring.services.runs import run_result


class Command(BaseCommand):
    help = "Recompute RUN_ID from its recorded inputs, policy and window; exit 0 when the result is identical."

    def add_arguments(self, parser):
        parser.add_argument("run_id")

    def handle(self, *args, run_id: str, **options):
        completed = Event.objects.filter(
            stream_type="run", stream_id=run_id, event_type="monitoring.RunCompleted"
        ).first()
        if completed is None:
            raise CommandError(f"no completed run {run_id!r}")
        digest = completed.payload.get("result_digest")
        if not digest or not default_storage.exists(f"blobs/{digest}"):
            raise CommandError(f"run {run_id} has no stored result to compare with")
        with default_storage.open(f"blobs/{digest}", "rb") as handle:
            recorded = handle.read()
        stored = orjson.loads(recorded)
        if "inputs" not in stored:
            raise CommandError(f"run {run_id} predates reproducible results (no recorded inputs)")
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
            different = sorted(k for k in stored if stored.get(k) != again.get(k))
            self.stderr.write(f"DIFFERENT: run {run_id} recomputed differs in {', '.join(different)}")
            raise SystemExit(1)
        checks = len(stored["checks"])
        self.stdout.write(
            f"IDENTICAL: run {run_id} recomputed from {sum(map(len, stored['inputs'].values()))} "
            f"input file(s): {checks} checks, result {digest[:16]}… byte for byte"
        )
