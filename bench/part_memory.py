"""Peak memory of one part of a fanned-out run: one feature's columns read and measured.

A window of N rows (a narrow table: one numerical feature, one categorical, a score, an id and a
time, in batches of 250,000 rows) and a reference of M rows are reported through ingestion. Each
part then runs in a fresh process as a worker runs it (`monitoring.runs.fanout._measured`: the
feature's columns of the window and the reference read batch by batch, then its drift measures
and data-quality findings): the growth of resident memory (VmHWM) over what the process held
before, after the read and after the whole part, the process's own peak, and the seconds. The baseline is the
target of issue 18: under 4 GB (4,096 MB) per worker at 100M rows.

    python bench/part_memory.py [--rows 10000000] [--reference-rows 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
from _common import ACTOR, process_status_kb, scratch_database
from django.conf import settings
from run import ingest

from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.registry.data_schema import parse_schema
from monitoring.runs import services
from monitoring.runs.parts import features_measure
from tests.workers import database_url

SCHEMA = {"numerical": ["num_0"], "categorical": ["cat_0"], "prediction": "score", "target": "label"}
TARGET_MB = 4096
CHUNK_ROWS = 10_000_000  # the window is made and reported this many rows at a time
ROW_SPACING_US = 50


def narrow(rows: int, seed: int, start: dt.datetime | None, first: int = 0, *, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, rows)
    columns = {
        "num_0": x,
        "cat_0": np.array(["north", "south", "east", "west", "centre"])[rng.integers(0, 5, rows)],
        "score": 1 / (1 + np.exp(-(1.2 * x - 0.4))),
    }
    if start is None:
        columns["label"] = (rng.random(rows) < columns["score"]).astype(float)
    else:
        columns["id"] = pa.array([f"p-{first + i}" for i in range(rows)])
        base = np.datetime64(start.replace(tzinfo=None), "us") + np.timedelta64(first * ROW_SPACING_US, "us")
        offsets = (np.arange(rows) * ROW_SPACING_US).astype("timedelta64[us]")
        columns["timestamp"] = pa.array(base + offsets, pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def measure(feature: str, start: dt.datetime, end: dt.datetime) -> dict:
    """In this (fresh) process: one part, as `fanout._measured` computes it."""
    policy = policy_load("bench-run").policy
    schema = parse_schema(SCHEMA)
    inputs = services.run_inputs("bench-run", start, end, policy)
    before = process_status_kb("VmRSS")
    started = time.perf_counter()
    windows = services.run_windows(
        "bench-run", start, end, inputs, policy, schema, [feature], only=("reference", "predictions")
    )
    read_seconds, read_peak = time.perf_counter() - started, process_status_kb("VmHWM")
    held = sum(values.nbytes for window in windows.values() for values in window.columns.values())
    kinds = {feature: schema.features[feature]}
    features_measure(windows["reference"].columns, windows["predictions"].columns, kinds, policy)
    return {
        "rows": windows["predictions"].rows,
        "numpy_mb": held / 2**20,
        "read_mb": (read_peak - before) / 1024,
        "read_seconds": read_seconds,
        "part_mb": (process_status_kb("VmHWM") - before) / 1024,
        "part_seconds": time.perf_counter() - started,
        "process_mb": process_status_kb("VmHWM") / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: 'feature|start|end'
    options = parser.parse_args()
    if options.measure:
        feature, start, end = options.measure.split("|")
        print(json.dumps(measure(feature, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))))
        return
    if options.rows < 1 or options.reference_rows < 1:
        raise SystemExit("--rows and --reference-rows must be at least 1")
    length = dt.timedelta(microseconds=options.rows * ROW_SPACING_US) + dt.timedelta(minutes=1)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - length - dt.timedelta(hours=1)
    end = start + length
    with scratch_database("driftledger_bench_part") as scratch:
        settings.MEDIA_ROOT = str(scratch / "media")
        registry.model_register(
            name="bench-run", task="binary_classification", owner="bench", data_schema=SCHEMA, actor=ACTOR
        )
        started = time.perf_counter()
        ingest("reference", narrow(options.reference_rows, 1, None))
        for first in range(0, options.rows, CHUNK_ROWS):
            size = min(CHUNK_ROWS, options.rows - first)
            ingest("predictions", narrow(size, 2 + first // CHUNK_ROWS, start, first, shift=0.3))
        print(f"{options.rows:,} rows, reference {options.reference_rows:,}: reported in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        environment = {**os.environ, "DATABASE_URL": database_url(), "DRIFTLEDGER_DATA_DIR": str(scratch)}
        results = {}
        for feature in ("num_0", "cat_0"):
            child = subprocess.run(
                [sys.executable, __file__, "--measure", f"{feature}|{start.isoformat()}|{end.isoformat()}"],
                env=environment,
                capture_output=True,
                text=True,
            )
            if child.returncode:
                print(f"  {feature}: the part failed\n{child.stderr[-2000:]}")
                continue
            results[feature] = json.loads(child.stdout.splitlines()[-1])
    print("one part of one feature, in a fresh process; memory is the growth of VmHWM over the start")
    print(f"{'feature':9} {'rows':>12} {'numpy MB':>9} {'read peak':>12} {'part peak':>12} {'process':>12} "
          f"{'seconds':>9}  against the target")  # fmt: skip
    for feature, r in results.items():
        print(f"{feature:9} {r['rows']:>12,} {r['numpy_mb']:9,.0f} {r['read_mb']:9,.0f} MB {r['part_mb']:9,.0f} MB "
              f"{r['process_mb']:9,.0f} MB {r['part_seconds']:9.1f}  process peak {r['process_mb'] / TARGET_MB:.2f}x "
              f"of {TARGET_MB:,} MB")  # fmt: skip


if __name__ == "__main__":
    main()
