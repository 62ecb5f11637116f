"""The log's large columns compressed with lz4 against pglz, in the same run (migration audit.0014).

A backlog of --events submissions (bench/sequencer.py's events: 1.9 kB of canonical JSON each) is
sealed by one sequencer in this process, its session's `default_toast_compression` set to pglz
(the server's own default) and to lz4 in turn, --rounds times, each round in the other order. For
each: events sealed per second, CPU per event of this process and of its server backend (read
from /proc: the server must run on this machine), and what each column takes on disk.

    python bench/compression.py [--events 16000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import cpu_seconds, scratch_database
from django.db import connection
from sequencer import built, submitter

from audit.sequencer import Sequencer
from audit.store import raw_connection

METHODS = ("pglz", "lz4")


def seal_backlog(method: str, first: int, events: int) -> dict[str, float]:
    with connection.cursor() as cursor:  # the sequencer's session: what 0014 sets for the database
        cursor.execute(f"SET default_toast_compression = {method}")
    submitter(built(first, events, f"{method}-{first}"), 1)
    sequencer = Sequencer(f"bench-{method}")
    assert sequencer.acquire()
    backend = raw_connection().info.backend_pid
    server, mine, started = cpu_seconds(backend), time.process_time(), time.perf_counter()
    sealed = 0
    while sealed < events:
        sealed += sequencer.seal_once()
    seconds = time.perf_counter() - started
    figures = {
        "rate": sealed / seconds,
        "sequencer_us": (time.process_time() - mine) / sealed * 1e6,
        "server_us": (cpu_seconds(backend) - server) / sealed * 1e6,
    }
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_sequencer_lease")
        cursor.execute(
            "SELECT avg(pg_column_size(canonical)), avg(pg_column_size(payload)), avg(octet_length(canonical)),"
            " count(DISTINCT pg_column_compression(canonical)), min(pg_column_compression(canonical))"
            " FROM audit_event WHERE stream_id = %s",
            [f"{method}-{first}"],
        )
        canonical, payload, raw, methods, used = cursor.fetchone()
    if methods != 1 or used != method:
        raise SystemExit(f"the events were compressed with {used} ({methods} methods), not {method}")
    return figures | {"canonical": float(canonical), "payload": float(payload), "raw": float(raw)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=16000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    with scratch_database("driftledger_bench_compression"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
            if not cursor.fetchone()[0]:  # the embedded server's build: the log keeps pglz there
                print("this PostgreSQL is built without lz4: nothing to compare (DATABASE_URL names another server)")
                return
        measured: dict[str, list[dict[str, float]]] = {method: [] for method in METHODS}
        first = 0
        for round_ in range(options.rounds):
            for method in METHODS if round_ % 2 == 0 else METHODS[::-1]:  # neither always on the larger log
                measured[method].append(seal_backlog(method, first, options.events))
                first += options.events
    print(f"{options.events:,} events sealed per round, {options.rounds} rounds, pglz and lz4 in turn (medians)")
    print(f"{'':6} {'sealed/s':>10} {'sequencer CPU':>14} {'server CPU':>11} {'canonical on disk':>18} {'payload':>8}")
    median = {m: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for m, runs in measured.items()}
    for method, row in median.items():
        print(
            f"{method:6} {row['rate']:10,.0f} {row['sequencer_us']:11.0f} µs {row['server_us']:8.0f} µs"
            f" {row['canonical']:8.0f} of {row['raw']:,.0f} B {row['payload']:6.0f} B"
        )
    print(
        f"lz4 / pglz: server CPU an event {median['lz4']['server_us'] / median['pglz']['server_us']:.2f}, "
        f"sealing rate {median['lz4']['rate'] / median['pglz']['rate']:.2f}, "
        f"canonical bytes on disk {median['lz4']['canonical'] / median['pglz']['canonical']:.2f}"
    )


if __name__ == "__main__":
    main()
