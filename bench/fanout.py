"""A monitoring run over a large window, in one process and fanned out over Celery workers.

N predictions with 25 features (bench/run.py's: 20 numerical, 5 categorical, one of them the
segment), an N-row reference and N/10 delayed labels. The same run three ways, each with real
worker processes (`celery worker --pool solo`) on the Redis broker:

  one process   fan-out off: the run is computed by the worker that receives it (the baseline)
  fanned, 1     split by RUN_FANOUT_FEATURES features, every part on one worker
  fanned, 2     the same parts on two workers

Each way: seconds from the task sent to the committed RunCompleted, the peak resident memory
(VmHWM) of each worker process, and the memory budget's estimate for its largest process
(monitoring.runs.budget), with the ratio of the peak to it: the estimate is meant as an upper
bound. The fanned runs' results are checked to be the bytes of the one-process run. The memory
budget is raised to RUN_MEMORY_BUDGET_MB=30000 for all three, so that the one-process run is
measured instead of refused (its estimate at 10M rows is 13,146 MB);
BENCH_RUN_MEMORY_BUDGET_MB sets another, which also bounds each worker's data (RLIMIT_DATA): a
run past it fails with MemoryError instead of calling the kernel's OOM killer.

A window past 10M rows is made and reported 10M rows at a time (each a seed of its own), with
--reference-rows to size the reference apart from the window (a reference is most often a
training sample, much smaller than a window of production traffic), and --fanned-only to leave
out the one-process run where it cannot fit (at 100M rows its estimate is some 65 GB); the
fanned runs on two workers are then compared with the fanned run on one.

    python bench/fanout.py [--rows 1000000 10000000] [--features-per-part 4]
                           [--reference-rows N] [--fanned-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import ACTOR, scratch_database
from django.conf import settings
from run import SCHEMA, ingest, table

from audit.blobs import blob_read
from audit.envelope import format_time
from config.celery import app as celery_app
from monitoring.models import Run
from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.budget import ColumnsRead, megabytes_needed
from monitoring.runs.parts import feature_groups
from monitoring.runs.services import run_rows
from monitoring.runs.tasks import run_monitoring
from tests.workers import launch_worker, send, stop_worker, use_test_broker, wait_for

# The budget is an estimate; what each process really holds is measured here, beside it.
BUDGET = {"RUN_MEMORY_BUDGET_MB": "30000", "RUN_MEMORY_HEADROOM_MB": "0", "RUN_TIME_LIMIT_SECONDS": "3000"}
BUDGET["RUN_MEMORY_BUDGET_MB"] = os.environ.get("BENCH_RUN_MEMORY_BUDGET_MB", BUDGET["RUN_MEMORY_BUDGET_MB"])


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


CHUNK_ROWS = 10_000_000  # a window is made and reported this many rows at a time
ROW_SPACING = dt.timedelta(microseconds=50)


def report(rows: int, reference_rows: int, seed: int, start: dt.datetime) -> None:
    """The reference, the window and a tenth of its rows labelled. Up to CHUNK_ROWS, the window
    is the one table(rows, seed + 1) of the runs measured before; past it, chunks of new seeds."""
    ingest("reference", table(reference_rows, seed, None, reference=True))
    for number, first in enumerate(range(0, rows, CHUNK_ROWS)):
        size = min(CHUNK_ROWS, rows - first)
        chunk_seed = seed + 1 if number == 0 else seed + 100 + number  # ids are p-<seed>-<row>: distinct
        window = table(size, chunk_seed, start + first * ROW_SPACING, shift=0.3)
        ingest("predictions", window)
        sample = window.slice(0, size // 10)
        outcomes = (np.random.default_rng(seed + 2 + 100 * number).random(sample.num_rows) < 0.3).astype(float)
        ingest("labels", pa.table({"id": sample.column("id"), "label": outcomes}))
        del window, sample


def measure(
    scratch: Path, window: tuple[str, str], revision: int, workers: int, environment: dict[str, str]
) -> tuple[float, list[float], Run]:
    """(seconds, peak MB of each worker, the run) of one run on `workers` fresh worker processes."""
    processes = [
        launch_worker(scratch, settings.AUDIT_SIGNING_KEY_FILE, name=f"w{i}", **BUDGET, **environment)
        for i in range(workers)
    ]
    try:
        started = time.perf_counter()
        send(run_monitoring, "bench-run", *window, None, revision)
        finished = Run.objects.filter(revision=revision, status__in=["completed", "failed"])
        died = lambda: any(process.poll() is not None for process in processes)  # noqa: E731 - the OOM killer's
        assert wait_for(lambda: finished.exists() or died(), seconds=3600)
        seconds = time.perf_counter() - started
        peaks = [peak_mb(process.pid) if process.poll() is None else float("nan") for process in processes]
    finally:
        for process in processes:
            stop_worker(process)
    tasks = task_seconds("".join(process.log.read_text() for process in processes))
    print("    " + ", ".join(f"{name} {sum(times):.1f} s ({len(times)})" for name, times in tasks.items()))
    run = Run.objects.filter(revision=revision, status="completed").first()
    if run is None:  # the next way may still be measured: the window took long to report
        failed = Run.objects.filter(revision=revision).first()
        print(f"    FAILED after {seconds:.1f} s: {failed.error if failed else 'a worker died (dmesg)'}")
    return seconds, peaks, run


def estimates(start: dt.datetime, end: dt.datetime, features_per_part: int) -> dict[str, float]:
    """The budget's estimate (MB) for the largest process of each way: the one process; a fanned
    worker, which may measure parts and combine them."""
    registered = RegisteredModel.objects.get(name="bench-run")
    schema, policy = parse_schema(registered.data_schema), policy_load("bench-run").policy
    rows = run_rows("bench-run", start, end, policy)
    groups = feature_groups(schema, registered.task, policy, features_per_part)
    apart = {name for group in groups for name in group}
    largest = max(len(group) for group in groups)
    fanned = max(
        megabytes_needed(rows, ColumnsRead(largest, largest, labels=False)),
        megabytes_needed(rows, ColumnsRead.of(schema, [n for n in schema.columns if n not in apart])),
    )
    one = megabytes_needed(rows, ColumnsRead.of(schema, schema.columns))
    return {"one process": one, "fanned, 1 worker": fanned, "fanned, 2 workers": fanned}


def task_seconds(log: str) -> dict[str, list[float]]:
    """Each task's durations, as the workers logged them ("Task … succeeded in 1.2s")."""
    found: dict[str, list[float]] = {}
    for name, seconds in re.findall(r"Task monitoring\.runs\.tasks\.(\w+)\[[^]]+\] succeeded in ([0-9.]+)s", log):
        found.setdefault(name, []).append(float(seconds))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--features-per-part", type=int, default=4)
    parser.add_argument("--reference-rows", type=int, help="rows of the reference (default: the window's)")
    parser.add_argument("--fanned-only", action="store_true", help="leave out the run in one process")
    options = parser.parse_args()
    previous = use_test_broker()
    try:
        for rows in options.rows:
            with scratch_database("driftledger_bench_fanout") as scratch:
                settings.MEDIA_ROOT = str(scratch / "media")
                os.environ["DRIFTLEDGER_DATA_DIR"] = str(scratch)
                registry.model_register(
                    name="bench-run", task="binary_classification", owner="bench", data_schema=SCHEMA, actor=ACTOR
                )
                reference_rows = options.reference_rows or rows
                length = max(dt.timedelta(hours=1), rows * ROW_SPACING + dt.timedelta(minutes=1))
                start = dt.datetime.now(dt.UTC).replace(microsecond=0) - length - dt.timedelta(hours=1)
                started = time.perf_counter()
                report(rows, reference_rows, 1, start)
                pa.default_memory_pool().release_unused()  # the workers measured next need the machine
                print(f"{rows:,} rows × 25 features, reference {reference_rows:,}, labels {rows // 10:,}: "
                      f"reported in {time.perf_counter() - started:.0f} s")  # fmt: skip
                window = (format_time(start), format_time(start + length))
                estimated = estimates(start, start + length, options.features_per_part)
                fanned = {"RUN_FANOUT_ROWS": "1", "RUN_FANOUT_FEATURES": str(options.features_per_part)}
                ways = [
                    ("one process", 1, {"RUN_FANOUT_ROWS": str(10**12)}),
                    ("fanned, 1 worker", 1, fanned),
                    ("fanned, 2 workers", 2, fanned),
                ][1 if options.fanned_only else 0 :]
                baseline = None
                for revision, (name, workers, environment) in enumerate(ways):
                    # Each way is a new revision of the window, so that none finds the run recorded.
                    seconds, peaks, run = measure(scratch, window, revision, workers, environment)
                    if run is None:
                        continue
                    result = blob_read(run.result_digest)
                    same = "" if baseline is None else (
                        f", the bytes of the {ways[0][0]}" if _checks(result) == baseline[2] else ", DIFFERENT"
                    )  # fmt: skip
                    if baseline is None:
                        baseline = (seconds, max(peaks), _checks(result))
                        print(f"  rows the run read: {json.loads(result)['rows']}")
                    print(
                        f"  {name:18} {seconds:7.1f} s  peak {' + '.join(f'{p:,.0f}' for p in peaks)} MB"
                        f"  time {baseline[0] / seconds:.2f}x, largest process {baseline[1] / max(peaks):.2f}x"
                        f" of the {ways[0][0]}{same}"
                    )
                    print(
                        f"  {'':18} budget's estimate {estimated[name]:,.0f} MB for its largest process:"
                        f" peak / estimate {max(peaks) / estimated[name]:.2f}"
                    )
    finally:
        celery_app.conf.update(**previous)


def _checks(result: bytes) -> bytes:
    """The result without the run's own id (each way records its own revision)."""
    document = json.loads(result)
    document.pop("run_id")
    return json.dumps(document, sort_keys=True).encode()


if __name__ == "__main__":
    main()
