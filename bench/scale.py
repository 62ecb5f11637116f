"""The log at scale: a partitioned log of N signed events, measured as a billion-event log is used.

N signed events (default 2,000,000; each a run outcome of about 1.5 KB, from 200 models) are
appended through the store in batches of 500, into partitions of --partition events. Then,
on that log:

  disk per event     every table of the log (partitions, their indexes, the key table, the
                     Merkle nodes), divided by the events
  checkpoint         of the whole log, 1,000 events after the last one
  proofs             inclusion and consistency proofs against the N-event tree (median, p99)
  export             one model's evidence (N / 200 events, every proof), and the peak of Python
                     memory while it is written (tracemalloc)
  verify a day       incremental verification of N / 365 new events (a day of a year-long log)

Each figure comes with how it grows (per event, per log size) so that docs/performance.md can
extrapolate to 1,000,000,000 events.

    python bench/scale.py [--events 2000000] [--partition 1000000] [--sequencer] [--resume]
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from _common import ACTOR, _measured_type, resumed_database, run_payload, scratch_database, timed
from django.conf import settings
from django.db import connection

from audit import checkpoints
from audit.evidence import EvidenceQuery, evidence_export
from audit.selfcheck import log_verify_recorded
from audit.store import NewEvent, append

MODELS = 200
BATCH = 500
BACKLOG = 200  # submissions of BATCH events


def fill(count: int, versions: dict[str, int], start: int = 0) -> None:
    """`count` events, batch by batch, each batch one model's (a stream per model)."""
    measured = _measured_type()
    for offset in range(start, start + count, BATCH):
        model = f"model-{(offset // BATCH) % MODELS:03d}"
        size = min(BATCH, start + count - offset)
        events = [
            NewEvent("bench", model, measured.from_payload({**run_payload(offset + i), "model": model}), ACTOR)
            for i in range(size)
        ]
        append(events, expected={("bench", model): versions.get(model, 0)})
        versions[model] = versions.get(model, 0) + size


def fill_through_sequencer(count: int) -> None:
    """`count` events submitted as a fleet of writers would (AUDIT_SEQUENCER), sealed by a
    sequencer in a process of its own while this one submits; a backlog of at most BACKLOG
    submissions, as a sequencer that keeps up has."""
    from sequencer import start_sequencer, wait_sealed

    from audit.models import Event, PendingAppend
    from audit.sequencer import submit_validated
    from audit.store import validate

    measured = _measured_type()
    total = Event.objects.count() + count
    process, stop = start_sequencer()
    try:
        for offset in range(0, count, BATCH):
            model = f"model-{(offset // BATCH) % MODELS:03d}"
            events = [
                NewEvent("bench", model, measured.from_payload({**run_payload(offset + i), "model": model}), ACTOR)
                for i in range(min(BATCH, count - offset))
            ]
            expected = {("bench", model): None}
            submit_validated(events, validate(events, expected), expected)
            while offset % (BATCH * 20) == 0 and PendingAppend.objects.count() > BACKLOG:
                time.sleep(0.05)
        wait_sealed(total, timeout=3600)
    finally:
        stop.set()
        process.join()


def _peak_mb() -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def disk() -> tuple[int, int]:
    """(bytes of the log's tables and indexes, partitions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0), count(*) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_event'::regclass"
        )
        partitions_bytes, partitions = cursor.fetchone()
        cursor.execute("SELECT pg_total_relation_size('audit_event_key') + pg_total_relation_size('audit_merkle_node')")
        (others,) = cursor.fetchone()
    return int(partitions_bytes) + int(others), int(partitions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--partition", type=int, default=1_000_000)
    parser.add_argument(
        "--sequencer", action="store_true", help="fill through the sequencer write path (faster: for large logs)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="measure the log an earlier run filled and did not measure (killed)"
    )
    options = parser.parse_args()
    n = options.events
    settings.AUDIT_PARTITION_EVENTS = options.partition
    database = resumed_database if options.resume else scratch_database
    with database("driftledger_bench_scale") as scratch:
        versions: dict[str, int] = {}
        started = time.perf_counter()
        if options.sequencer and not options.resume:
            fill_through_sequencer(n)
        elif not options.resume:
            fill(n, versions)
        if options.resume or options.sequencer:
            with connection.cursor() as cursor:
                cursor.execute("SELECT stream_id, max(stream_version) FROM audit_event GROUP BY stream_id")
                versions = dict(cursor.fetchall())
                cursor.execute("SELECT max(seq) FROM audit_event")
                (held,) = cursor.fetchone()
            if held != n:
                raise SystemExit(f"the log holds {held:,} events, not {n:,}")
        filled = time.perf_counter() - started
        way = "through the sequencer" if options.sequencer else "directly, in batches of 500"
        if options.resume:
            print(f"{n:,} signed events appended {way} by an earlier run, measured now")
        else:
            print(f"appended {n:,} signed events {way} in {filled:.0f} s ({n / filled:,.0f}/s, set-up)")
        first, _ = timed(lambda: checkpoints.checkpoint_create(publish=False))  # the whole log unsigned yet
        print(
            f"first checkpoint, over all {n:,} events: {first:.0f} s; this process's peak memory so far"
            f" {_peak_mb():,.0f} MB"
        )
        fill(1000, versions, start=n)
        checkpoint_seconds, checkpoint = timed(lambda: checkpoints.checkpoint_create(publish=False))
        size = checkpoint.tree_size
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        total, partitions = disk()
        print(f"disk: {total / 1e9:.2f} GB in {partitions} partitions, {total / size:,.0f} bytes per event")
        print(f"checkpoint of the {size:,}-event log, 1,000 events after the last: {checkpoint_seconds * 1000:.0f} ms")
        step = max(size // 200, 1)
        inclusion = [timed(checkpoints.inclusion_proof, seq, size)[0] for seq in range(1, size, step)]
        consistency = [timed(checkpoints.consistency_proof, seq, size)[0] for seq in range(1, size, step)]
        for name, times in (("inclusion", inclusion), ("consistency", consistency)):
            ordered = sorted(times)
            print(
                f"{name} proof, {len(times)} across the log: median {statistics.median(times) * 1000:.2f} ms,"
                f" p99 {ordered[int(len(ordered) * 0.99) - 1] * 1000:.2f} ms"
            )
        tracemalloc.start()
        exported, summary = timed(
            lambda: evidence_export(
                query=EvidenceQuery(streams=(("bench", "model-007"),)), out=scratch / "model.zip", created_by=ACTOR
            )
        )
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"export of one model ({summary.events:,} events of {summary.tree_size:,}): {exported:.1f} s,"
            f" {summary.events / exported:,.0f} events/s, Python memory peak {peak / 2**20:.0f} MB"
        )
        log_verify_recorded()  # the full pass, recorded: the incremental one chains to it
        day = max(size // 365, 1)
        fill(day, versions, start=n + 1000)
        verify_seconds, verification = timed(lambda: log_verify_recorded(incremental=True))
        print(
            f"incremental verification of a day ({day:,} new events on {size:,}): {verify_seconds:.1f} s,"
            f" {day / verify_seconds:,.0f} events/s, {'ok' if verification.ok else 'FAILED'}"
        )


if __name__ == "__main__":
    main()
