"""Archiving old partitions as segments: time, size, and verification from storage.

A scratch log of N signed events (default 300,000; run outcomes of about 1.5 KB from 200 models,
appended in batches of 500 as bench/scale.py does, but with every figure of every check drawn at
random, as real runs' figures differ: bench/scale.py's repeat, and compress twice as well)
in partitions of --partition events is
checkpointed; then every partition the checkpoint covers is archived (audit_archive's code path:
written, verified, stored, read back and verified again, recorded). Printed per partition and
in total:

  archive            seconds and events/s, against the baseline in the same run: the same rows
                     read from PostgreSQL and gzip-compressed (level 6) with no check at all
  size               segment bytes per event, against the partition's bytes per event in
                     PostgreSQL (its table, TOAST and indexes)
  verify             audit_archive --verify: every segment read back from storage and verified

    python bench/archive.py [--events 300000] [--partition 100000]
"""

from __future__ import annotations

import argparse
import gzip
import time

import numpy as np
from _common import ACTOR, _measured_type, run_payload, scratch_database
from django.conf import settings
from django.db import connection

from audit import checkpoints
from audit.archive import partition_archive, partition_states, segments_verify
from audit.store import SYSTEM_ACTOR, NewEvent, append

MODELS = 200
BATCH = 500


def fill(count: int) -> None:
    """`count` events, a model's batch at a time, each check's figures drawn at random."""
    measured = _measured_type()
    rng = np.random.default_rng(7)
    versions: dict[str, int] = {}
    for offset in range(0, count, BATCH):
        model = f"model-{(offset // BATCH) % MODELS:03d}"
        events = []
        for index in range(offset, min(offset + BATCH, count)):
            payload = {**run_payload(index), "model": model}
            for check in payload["checks"]:
                check["value"], check["p_value"] = float(rng.random()), float(rng.random())
            events.append(NewEvent("bench", model, measured.from_payload(payload), ACTOR))
        append(events, expected={("bench", model): versions.get(model, 0)})
        versions[model] = versions.get(model, 0) + len(events)


def partition_bytes(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", (name,))
        return int(cursor.fetchone()[0])


def raw_gzip_seconds(first: int, last: int) -> float:
    """The baseline: the partition's rows out of PostgreSQL and through gzip, nothing checked."""
    started = time.perf_counter()
    connection.ensure_connection()
    with connection.connection.transaction(), connection.connection.cursor(name="raw") as cursor:
        cursor.itersize = 2000
        cursor.execute(
            "SELECT canonical, hash, signature FROM audit_event WHERE seq BETWEEN %s AND %s ORDER BY seq",
            (first, last),
            binary=True,
        )
        compressor = gzip.GzipFile(fileobj=_Discard(), mode="wb", compresslevel=6, mtime=0)
        for canonical, digest, signature in cursor:
            compressor.write(bytes(canonical) + bytes(digest) + bytes(signature))
        compressor.close()
    return time.perf_counter() - started


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--partition", type=int, default=100_000)
    options = parser.parse_args()
    settings.AUDIT_PARTITION_EVENTS = options.partition
    with scratch_database("driftledger_bench_archive") as scratch:
        settings.MEDIA_ROOT = str(scratch / "media")
        started = time.perf_counter()
        fill(options.events)
        print(f"appended {options.events:,} signed events in {time.perf_counter() - started:.0f} s (set-up)")
        checkpoints.checkpoint_create(publish=False)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        totals = {"events": 0, "archive": 0.0, "raw": 0.0, "segment": 0, "postgres": 0}
        for state in [s for s in partition_states() if s.blocker is None]:
            events = state.last_seq - state.first_seq + 1
            in_postgres = partition_bytes(state.name)
            raw = raw_gzip_seconds(state.first_seq, state.last_seq)
            started = time.perf_counter()
            segment = partition_archive(state.name, actor=SYSTEM_ACTOR, reason="bench")
            seconds = time.perf_counter() - started
            print(
                f"{state.name}: {events:,} events archived in {seconds:.1f} s ({events / seconds:,.0f}/s; "
                f"read and gzip alone {raw:.1f} s, ratio {seconds / raw:.2f}); "
                f"{segment.file_bytes / events:,.0f} bytes an event in the segment against "
                f"{in_postgres / events:,.0f} in PostgreSQL ({segment.file_bytes / in_postgres:.3f})"
            )
            for key, value in (
                ("events", events),
                ("archive", seconds),
                ("raw", raw),
                ("segment", segment.file_bytes),
                ("postgres", in_postgres),
            ):
                totals[key] += value
        started = time.perf_counter()
        checks = segments_verify()
        verified = time.perf_counter() - started
        assert all(check.problem is None for check in checks), [c.problem for c in checks]
        n = totals["events"]
        print(
            f"total: {n:,} events archived at {n / totals['archive']:,.0f}/s (ratio to read and gzip alone "
            f"{totals['archive'] / totals['raw']:.2f}); {totals['segment'] / n:,.0f} bytes an event in segments, "
            f"{totals['postgres'] / n:,.0f} in PostgreSQL (ratio {totals['segment'] / totals['postgres']:.3f})"
        )
        print(f"verify from storage: {len(checks)} segments, {n:,} events in {verified:.1f} s ({n / verified:,.0f}/s)")


if __name__ == "__main__":
    main()
