"""A monitoring run end to end on a 1M-row window.

1,000,000 predictions with 25 features (20 numerical, 5 categorical), a 1,000,000-row
reference, 100,000 delayed labels, KPIs, and 5 segments; the run computes every check of the
default policy and commits RunStarted, RunCompleted, RunDiagnosed and its alerts. Timed from
the task's start to the committed events, as a worker runs it (the Celery task, eagerly, with
the statistics engine imported first, as the worker imports it before its first task).

Target (issue 6): < 10 s on 2 cores.

    python bench/run.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import ACTOR, scratch_database
from django.conf import settings

from audit.envelope import format_time
from monitoring.ingestion.services import batch_ingest
from monitoring.models import Run
from monitoring.registry import services as registry
from monitoring.runs.tasks import run_monitoring

NUMERICAL = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SCHEMA = {
    "numerical": NUMERICAL,
    "categorical": CATEGORICAL,
    "prediction": "score",
    "target": "label",
    "segments": ["cat_0"],
}


def table(rows: int, seed: int, start: dt.datetime | None, *, shift: float = 0.0, reference: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = np.array(["north", "south", "east", "west", "centre"])
    x = rng.normal(shift, 1, rows)
    columns = {name: rng.normal(shift if i < 3 else 0.0, 1, rows) for i, name in enumerate(NUMERICAL)}
    columns["num_0"] = x
    columns |= {name: labels[rng.integers(0, 5, rows)] for name in CATEGORICAL}
    columns["score"] = 1 / (1 + np.exp(-(1.2 * x - 0.4)))
    if reference:
        columns["label"] = (rng.random(rows) < columns["score"]).astype(float)
    else:
        columns["id"] = pa.array([f"p-{seed}-{i}" for i in range(rows)])
        base = np.datetime64(start.replace(tzinfo=None), "us")
        columns["timestamp"] = pa.array(
            base + (np.arange(rows) * 50).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")
        )
    return pa.table(columns)


def ingest(kind: str, rows: pa.Table, batch: int = 250_000) -> None:
    """In batches of 250,000 rows, as a service sends them (one request stays under the body limit)."""
    for offset in range(0, rows.num_rows, batch):
        buffer = io.BytesIO()
        pq.write_table(rows.slice(offset, batch), buffer)
        body = buffer.getvalue()
        batch_ingest(
            model="bench-run", kind=kind, body=body, content_type="application/vnd.apache.parquet", actor=ACTOR
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    with scratch_database("driftledger_bench_run") as scratch:
        settings.MEDIA_ROOT = str(scratch / "media")
        registry.model_register(
            name="bench-run", task="binary_classification", owner="bench", data_schema=SCHEMA, actor=ACTOR
        )
        ingest("reference", table(options.rows, 1, None, reference=True))
        window = table(options.rows, 2, start, shift=0.3)
        ingest("predictions", window)
        sample = window.slice(0, options.rows // 10)
        labels = pa.table(
            {"id": sample.column("id"), "label": (np.random.default_rng(3).random(sample.num_rows) < 0.3).astype(float)}
        )
        ingest("labels", labels)
        end = start + dt.timedelta(hours=1)
        import monitoring.runs.services  # noqa: F401 - as the worker does before its first task (config/celery.py)

        started = time.perf_counter()
        outcome = run_monitoring.apply(args=("bench-run", format_time(start), format_time(end))).get()
        seconds = time.perf_counter() - started
        run = Run.objects.get(run_id=outcome["run_id"])
        checks = {c["check"] for c in run.checks}
    print(f"run over {options.rows:,} rows × 25 features, {len(run.checks)} checks ({', '.join(sorted(checks))})")
    print(f"  status {run.status}, level {run.level}, cause {run.diagnosis['cause']}")
    print(f"  {seconds:.2f} s from task start to committed events; target < 10 s: {10 / seconds:.2f}x")


if __name__ == "__main__":
    main()
