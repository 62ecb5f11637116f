"""The sequencer write path against raw INSERT+COMMIT of the same rows, in the same run.

Runs in a scratch database `driftledger_bench_sequencer` on the configured server. The raw
baseline inserts pre-built rows of the same size into a copy of audit_event (bench/append.py's;
one a transaction in autocommit, its fastest form). The writers' events are built before the
clock starts too; their submissions are what `append` commits when AUDIT_SEQUENCER is on, while
one sequencer process seals them (seq, chain, Ed25519, insert) as they come.

- (b) 8 writer processes, 1 event per transaction: submitted/s against raw/s (target >= 0.70)
- (c) 1 writer, 100 events per transaction (target >= 0.70)
- sealed: events sealed per second by the sequencer, from the first submission of (b) to its
  last seal, and draining a backlog (target >= 5,000/s)
- latency: `append` (submit and wait for the seal) at a steady 1,000 appends/s from 8 processes
  of 2 threads each for --seconds: p50/p99 (target p99 < 250 ms)

    python bench/sequencer.py [--events 8000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import threading
import time

from _common import _measured_type, built, cpu_seconds, machine_busy, run_event, scratch_database
from append import raw_rows, raw_writer, run_in_processes
from django.conf import settings
from django.db import connection, connections

from audit.models import Event, PendingAppend
from audit.sequencer import Sequencer, stop_listening, submit_validated
from audit.store import NewEvent, append, validate
from audit.verify import verify_log


def submitter(events: list[NewEvent], per_submission: int) -> None:
    """A writer that does not wait for its seal: each submission commits on its own."""
    expected = {events[0].stream: None}
    for start in range(0, len(events), per_submission):
        batch = events[start : start + per_submission]
        submit_validated(batch, validate(batch, expected), expected)


def sequencer_process(stop) -> None:
    connections.close_all()
    try:
        Sequencer("bench").run(lambda: not stop.is_set())
    finally:
        connections.close_all()


def start_sequencer():
    connections.close_all()
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    process = context.Process(target=sequencer_process, args=(stop,))
    process.start()
    return process, stop


def wait_sealed(total: int, timeout: float = 600) -> float:
    """The moment (perf_counter) the log holds `total` events and nothing is pending."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if not PendingAppend.objects.exists() and Event.objects.count() >= total:
            return time.perf_counter()
        time.sleep(0.02)  # a tighter poll takes CPU from the two cores it measures
    raise SystemExit(f"the sequencer did not seal {total} events in {timeout} s")


def paced_appender(index: int, rate: float, seconds: float, threads: int, queue) -> None:
    """`rate` appends/s from `threads` threads of this process, each append due at its own time
    (open loop: a latency counts from when it was due, so a backlog shows). Many callers at once,
    as web and worker processes are: one caller waiting ~10 ms per append could not make 1,000/s."""
    connections.close_all()
    os.nice(5)  # the load generator yields the two cores to what it measures: sequencer and server
    settings.AUDIT_SEQUENCER = True
    latencies: list[float] = []
    start = time.perf_counter() + 0.5

    def caller(number: int) -> None:
        stream = f"paced-{index}-{number}"
        every = threads / rate
        for n in range(int(rate * seconds / threads)):
            due = start + number / rate + n * every
            time.sleep(max(0.0, due - time.perf_counter()))
            append([run_event(n, stream)], expected={("bench", stream): None})
            latencies.append(time.perf_counter() - due)
        connections.close_all()

    workers = [threading.Thread(target=caller, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((latencies, time.process_time()))


def latency(rate: float, options, sequencer_pid: int) -> dict[str, float]:
    """p50 and p99 of `append` through the running sequencer at a steady `rate`, and the CPU an
    append took: in the callers' processes, the sequencer's, and the rest (the server's backends,
    the OS)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    connections.close_all()
    writers = options.writers
    appenders = [
        context.Process(target=paced_appender, args=(p, rate / writers, options.seconds, options.threads, queue))
        for p in range(writers)
    ]
    (busy, total), sequencer = machine_busy(), cpu_seconds(sequencer_pid)
    for process in appenders:
        process.start()
    reports = [queue.get(timeout=options.seconds * 10 + 120) for _ in appenders]
    for process in appenders:
        process.join()
    busy, total = (now - before for now, before in zip(machine_busy(), (busy, total), strict=True))
    sequencer = cpu_seconds(sequencer_pid) - sequencer
    latencies = sorted(value for values, _ in reports for value in values)
    callers = sum(cpu for _, cpu in reports)
    appends = len(latencies)
    return {
        "rate": rate,
        "p50": statistics.median(latencies),
        "p99": latencies[int(appends * 0.99) - 1],
        "cpu": busy / appends,
        "callers": callers / appends,
        "sequencer": sequencer / appends,
        "rest": (busy - callers - sequencer) / appends,
        "cores": busy / total * (os.cpu_count() or 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=8000, help="events per throughput scenario")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000, help="appends/s of the latency scenario")
    parser.add_argument("--seconds", type=float, default=10, help="length of the latency scenario")
    parser.add_argument("--threads", type=int, default=2, help="callers per writer process (latency scenario)")
    options = parser.parse_args()
    _measured_type()  # registered before any fork: the sequencer process parses these events
    with scratch_database("driftledger_bench_sequencer"):
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_raw (LIKE audit_event INCLUDING ALL)")
        figures = measure(options)
        stop_listening()  # its connection to the scratch database, which is dropped now
    report(figures, options)


def measure(options) -> dict:
    n, writers = options.events, options.writers
    figures: dict = {}
    raw_writer(raw_rows(10**9, 20, "warm-up"), 1)
    sequencer, stop = start_sequencer()
    try:
        append_one = run_event(0, "warm-up")
        expected = {("bench", "warm-up"): None}
        submit_validated([append_one], validate([append_one], expected), expected)
        wait_sealed(1)

        share = n // writers
        jobs = [(raw_rows(10**8 + p * share, share, f"raw-b-{p}"), 1) for p in range(writers)]
        figures["raw_b"] = n / run_in_processes(raw_writer, jobs)
        sealed_before = Event.objects.count()
        began = time.perf_counter()
        seconds = run_in_processes(submitter, [(built(p * share, share, f"b-{p}"), 1) for p in range(writers)])
        figures["submit_b"] = n / seconds
        figures["sealed_b"] = n / (wait_sealed(sealed_before + n) - began)

        rows = raw_rows(10**7, n * 5, "raw-c")
        started = time.perf_counter()
        raw_writer(rows, 100)
        figures["raw_c"] = n * 5 / (time.perf_counter() - started)
        sealed_before = Event.objects.count()
        events = built(0, n * 5, "c")
        began = time.perf_counter()
        submitter(events, 100)
        figures["submit_c"] = n * 5 / (time.perf_counter() - began)
        figures["sealed_c"] = n * 5 / (wait_sealed(sealed_before + n * 5) - began)
    finally:
        stop.set()
        sequencer.join(timeout=30)

    # A backlog with no sequencer running, then drained by one: its sealing rate alone.
    sealed_before = Event.objects.count()
    submitter(built(0, n * 2, "backlog"), 1)
    sequencer, stop = start_sequencer()
    began = time.perf_counter()
    try:
        figures["drain"] = n * 2 / (wait_sealed(sealed_before + n * 2) - began)

        figures["latency"] = [latency(rate, options, sequencer.pid) for rate in (options.rate / 2, options.rate)]
    finally:
        stop.set()
        sequencer.join(timeout=30)
    verified = verify_log(workers=2)
    if not verified.ok:
        raise SystemExit(f"the sealed log does not verify: {verified.failure}")
    figures["verified"] = verified.events
    return figures


def report(figures: dict, options) -> None:
    print(f"PostgreSQL via {settings.DATABASES['default'].get('HOST') or 'the default host'}")
    print(f"{'scenario':44} {'raw ev/s':>10} {'submitted/s':>12} {'ratio':>6} {'target':>7}")
    for label, raw, submitted in (
        (f"(b) 1 event/txn, {options.writers} writer processes", figures["raw_b"], figures["submit_b"]),
        ("(c) 100 events/txn, 1 writer", figures["raw_c"], figures["submit_c"]),
    ):
        ratio = submitted / raw
        print(f"{label:44} {raw:10,.0f} {submitted:12,.0f} {ratio:6.2f} {'>= 0.70':>7} {_flag(ratio >= 0.70)}")
    for label, rate in (
        ("sealed/s while (b) submits", figures["sealed_b"]),
        ("sealed/s while (c) submits", figures["sealed_c"]),
        ("sealed/s draining a backlog", figures["drain"]),
    ):
        print(f"{label:44} {rate:10,.0f} events/s (target >= 5,000) {_flag(rate >= 5000)}")
    for one in figures["latency"]:
        print(
            f"append (submit + wait for the seal) at {one['rate']:,.0f}/s: p50 {one['p50'] * 1000:.1f} ms, "
            f"p99 {one['p99'] * 1000:.1f} ms (target p99 < 250 ms at 1,000/s) {_flag(one['p99'] < 0.25)}\n"
            f"  CPU an append {one['cpu'] * 1000:.2f} ms: callers {one['callers'] * 1000:.2f}, sequencer "
            f"{one['sequencer'] * 1000:.2f}, unattributed (server backends, OS) {one['rest'] * 1000:.2f}; "
            f"{one['cores']:.2f} of {os.cpu_count()} cores busy"
        )
    print(f"the log verifies: {figures['verified']:,} events")


def _flag(ok: bool) -> str:
    return "ok" if ok else "BELOW"


if __name__ == "__main__":
    main()
