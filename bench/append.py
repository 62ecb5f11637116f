"""Signed append vs raw INSERT+COMMIT of the same row, and audit_verify throughput.

Runs on the configured server (embedded PostgreSQL by default, or DATABASE_URL) in a scratch
database `driftledger_bench` that it creates, migrates and drops. The raw baseline inserts
pre-built rows of the same size into a copy of audit_event (same columns and indexes, no
triggers), one event a transaction as a single statement in autocommit (its fastest form); the
signed path does everything append does: lock, head read, canonical JSON, SHA-256, Ed25519,
insert, projections, on events also built before the clock starts.

    python bench/append.py [--events 4000] [--verify-events 100000]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing
import os
import time
import uuid

from _common import ACTOR, MEASURED, built, fill, run_payload, scratch_database, timed
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from audit.canonical import canonicalize
from audit.envelope import envelope, format_time
from audit.keys import SigningKey
from audit.store import NewEvent, RecordedEvent, _row, append
from audit.verify import verify_log


def raw_rows(first_seq: int, count: int, stream: str) -> list[tuple]:
    """Rows exactly as append would store them, built beforehand so the raw path only inserts."""
    key = SigningKey.generate()
    now = timezone.now()
    rows = []
    for offset in range(count):
        seq = first_seq + offset
        body = envelope(
            log_id=str(uuid.uuid4()),
            seq=seq,
            event_id=str(uuid.uuid4()),
            stream={"type": "bench", "id": stream, "version": offset + 1},
            type=MEASURED,
            schema=1,
            occurred_at=format_time(now),
            actor=ACTOR.as_dict(),
            reason=None,
            correlation_id=None,
            causation_id=None,
            payload=run_payload(seq),
            prev_hash="0" * 64,
            key_id=key.key_id,
        )
        canonical = canonicalize(body)
        event = RecordedEvent(
            body, canonical, hashlib.sha256(canonical).hexdigest(), base64.b64encode(key.sign(canonical)).decode()
        )
        rows.append(_row(event, now))
    return rows


RAW_INSERT = """
INSERT INTO bench_raw (seq, event_id, stream_type, stream_id, stream_version, event_type, schema,
    occurred_at, actor_kind, actor_id, correlation_id, causation_id, payload, canonical, hash,
    leaf_hash, signature, key_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)
"""


def raw_writer(rows: list[tuple], per_transaction: int) -> None:
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    if per_transaction == 1:  # in autocommit, the INSERT is its own transaction: one round trip
        with psycopg.Cursor(raw) as cursor:
            for row in rows:
                cursor.execute(RAW_INSERT, row, prepare=True)
        return
    for start in range(0, len(rows), per_transaction):
        with transaction.atomic(), psycopg.Cursor(raw) as cursor:
            cursor.executemany(RAW_INSERT, rows[start : start + per_transaction])


def signed_writer(events: list[NewEvent], per_transaction: int) -> None:
    """Like a command: each append states the version it expects its stream to be at."""
    version = 0
    for start in range(0, len(events), per_transaction):
        append(events[start : start + per_transaction], expected={events[0].stream: version})
        version += per_transaction


def run_in_processes(target, jobs: list[tuple]) -> float:
    connections.close_all()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_child, args=(target, job)) for job in jobs]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a writer process failed with exit code {process.exitcode}")
    return time.perf_counter() - started


def _child(target, job) -> None:
    try:
        target(*job)
    finally:
        connections.close_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="events per append scenario")
    parser.add_argument("--verify-events", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=8)
    options = parser.parse_args()
    with scratch_database("driftledger_bench"):
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_raw (LIKE audit_event INCLUDING ALL)")
        results = run_scenarios(options)
        verify_figures = bench_verify(options.verify_events)
    print_table(results, verify_figures, options)


def run_scenarios(options) -> list[tuple[str, float, float]]:
    n, writers = options.events, options.writers
    results = []
    seq = 1

    def raw_rate(count: int, per_txn: int, processes: int) -> float:
        nonlocal seq
        share = count // processes
        jobs = []
        for p in range(processes):
            jobs.append((raw_rows(seq, share, f"raw-{seq}-{p}"), per_txn))
            seq += share
        if processes == 1:
            return count / timed(raw_writer, *jobs[0])[0]
        return count / run_in_processes(raw_writer, jobs)

    def signed_rate(count: int, per_txn: int, processes: int, label: str) -> float:
        share = count // processes
        jobs = [(built(p * share, share, f"{label}-{p}"), per_txn) for p in range(processes)]
        if processes == 1:
            return count / timed(signed_writer, *jobs[0])[0]
        return count / run_in_processes(signed_writer, jobs)

    signed_writer(built(0, 20, "warm-up"), 1)
    raw_writer(raw_rows(10**9, 20, "warm-up"), 1)
    for label, per_txn, processes in (
        ("(a) 1 event/txn, 1 writer", 1, 1),
        (f"(b) 1 event/txn, {writers} writers", 1, writers),
        ("(c) 100 events/txn, 1 writer", 100, 1),
    ):
        count = n if per_txn == 1 else n * 5
        raw = raw_rate(count, per_txn, processes)
        signed = signed_rate(count, per_txn, processes, label[:3])
        results.append((label, raw, signed))
    return results


def bench_verify(count: int) -> tuple[int, float, float]:
    from audit.models import Event

    fill(max(count - Event.objects.count(), 0), stream="verify")
    report = verify_log()
    if not report.ok:
        raise SystemExit(f"verification failed: {report.failure}")
    return report.events, report.seconds, report.events / report.seconds


def print_table(results, verify_figures, options) -> None:
    print(f"PostgreSQL via {settings.DATABASES['default'].get('HOST') or 'the default host'}")
    print(f"{'scenario':36} {'raw ev/s':>10} {'signed ev/s':>12} {'ratio':>7} {'target':>7}")
    targets = {"(a)": 0.8, "(b)": 0.5, "(c)": 0.5}
    for label, raw, signed in results:
        target = targets[label[:3]]
        ratio = signed / raw
        flag = "ok" if ratio >= target else "BELOW"
        print(f"{label:36} {raw:10,.0f} {signed:12,.0f} {ratio:7.2f} {target:>5.0%} {flag}")
    events, seconds, rate = verify_figures
    flag = "ok" if rate >= 12_000 else "BELOW"
    print(
        f"audit_verify: {events:,} events in {seconds:.2f} s = {rate:,.0f} events/s "
        f"(target 12,000, {os.cpu_count()} cores) {flag}"
    )


if __name__ == "__main__":
    main()
