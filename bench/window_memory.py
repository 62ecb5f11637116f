"""Peak memory of reading a window: batch by batch against one table of every batch.

bench/run.py's window (25 features, an id, a time) of N rows in batches of 250,000 rows, read
as a run reads it: four features, as a part of a fanned-out run does, and every column, as a run
in one process does. Each read runs in a fresh process; its peak is the growth of the resident
memory (VmHWM) over what the process held before the read. The baseline, in the same run, is
the read as it was before 2026-12-07: all batch files read at once, concatenated into one table,
cut to the window, then each column made numpy (`one_table` below).

    python bench/window_memory.py [--rows 5000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _common import ACTOR, process_status_kb, scratch_database
from django.conf import settings
from run import NUMERICAL, SCHEMA, ingest, table

from audit.blobs import blob_path
from monitoring.ingestion import selectors
from monitoring.ingestion.files import batch_file_read
from monitoring.ingestion.selectors import window_digests, window_from_batches
from monitoring.registry import services as registry
from tests.workers import database_url

PART = NUMERICAL[:4]


def one_table(digests: list[str], columns: list[str] | None, start: dt.datetime, end: dt.datetime) -> dict:
    """The read before 2026-12-07: every batch at once, one table, then cut (the baseline)."""
    schema_texts = {*SCHEMA["categorical"], *SCHEMA["segments"], "model_version"}
    wanted = None if columns is None else [*columns, "timestamp"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        tables = list(pool.map(lambda d: batch_file_read(blob_path(d), wanted, dictionary=schema_texts), digests))
    whole = pa.concat_tables(tables, promote_options="default")
    del tables
    times = whole.column("timestamp")
    keep = pa.chunked_array([pa.array(np.ones(len(times), dtype=bool))])
    keep = pc.and_(keep, pc.greater_equal(times, pa.scalar(start, type=selectors.TIMESTAMP)))
    keep = pc.and_(keep, pc.less(times, pa.scalar(end, type=selectors.TIMESTAMP)))
    whole = whole.filter(pc.fill_null(keep, False))
    names = whole.column_names if columns is None else columns
    return {name: selectors._numpy(list(whole.column(name).chunks), whole.column(name).type) for name in names}


def measure(way: str, columns: list[str] | None, start: dt.datetime, end: dt.datetime) -> dict:
    """In this (fresh) process: one read, its seconds and its peak growth of resident memory."""
    digests = window_digests(model="bench-run")
    before = process_status_kb("VmRSS")
    started = time.perf_counter()
    if way == "one table":
        found = one_table(digests, columns, start, end)
    else:
        found = window_from_batches(
            model="bench-run", kind="predictions", digests=digests, start=start, end=end, columns=columns
        ).columns
    seconds = time.perf_counter() - started
    rows = len(next(iter(found.values())))
    return {
        "seconds": seconds,
        "peak_mb": (process_status_kb("VmHWM") - before) / 1024,
        "numpy_mb": sum(values.nbytes for values in found.values()) / 1e6,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: 'way|columns|start|end'
    options = parser.parse_args()
    if options.measure:
        way, columns, start, end = options.measure.split("|")
        picked = None if columns == "all" else columns.split(",")
        found = measure(way, picked, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))
        print(json.dumps(found))
        return
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=1)  # bench/run.py's window: every row but the last batch's tail
    with scratch_database("driftledger_bench_window") as scratch:
        settings.MEDIA_ROOT = str(scratch / "media")
        registry.model_register(
            name="bench-run", task="binary_classification", owner="bench", data_schema=SCHEMA, actor=ACTOR
        )
        ingest("predictions", table(options.rows, 2, start, shift=0.3))
        environment = {**os.environ, "DATABASE_URL": database_url(), "DRIFTLEDGER_DATA_DIR": str(scratch)}
        results = {}
        for columns, label in ((",".join(PART), "4 features (a part)"), ("all", "every column (one process)")):
            for way in ("one table", "batch by batch", "one table", "batch by batch"):
                child = subprocess.run(
                    [sys.executable, __file__, "--measure", f"{way}|{columns}|{start.isoformat()}|{end.isoformat()}"],
                    env=environment,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results.setdefault((label, way), []).append(json.loads(child.stdout.splitlines()[-1]))
    print(f"{options.rows:,} rows in batches of 250,000; each read in a fresh process, twice, alternating")
    print(f"{'read':30} {'way':16} {'rows':>11} {'numpy MB':>9} {'peak MB':>16} {'seconds':>13}")
    for (label, way), runs in results.items():
        peaks = " / ".join(f"{r['peak_mb']:,.0f}" for r in runs)
        times = " / ".join(f"{r['seconds']:.2f}" for r in runs)
        print(f"{label:30} {way:16} {runs[0]['rows']:>11,} {runs[0]['numpy_mb']:9,.0f} {peaks:>16} {times:>13}")
    for label in dict.fromkeys(label for label, _ in results):
        old = min(r["peak_mb"] for r in results[(label, "one table")])
        new = min(r["peak_mb"] for r in results[(label, "batch by batch")])
        print(f"{label}: batch by batch holds {new / old:.2f}x the peak of one table (best of two each)")


if __name__ == "__main__":
    main()
