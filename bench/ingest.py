"""Ingestion through the API, and reading a window back.

1M prediction rows with 25 features (20 numerical, 5 categorical) posted to
/api/v1/models/{name}/predictions/ through the full Django stack in-process (authentication
with the model's API key, parsing, validation, Parquet storage, the signed BatchIngested
event), as JSON records in batches of 10,000 and as Parquet in batches of 250,000; then the
whole million loaded back as numpy columns.

Targets (issue 5): JSON >= 50,000 rows/s, Parquet >= 500,000 rows/s, 1M-row window < 1 s.

    python bench/ingest.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import time

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from _common import ACTOR, scratch_database
from django.conf import settings
from rest_framework.test import APIClient

from monitoring.ingestion.selectors import window_load
from monitoring.registry import services as registry

NUMERICAL = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
SCHEMA = {"numerical": NUMERICAL, "categorical": CATEGORICAL, "prediction": "score", "segments": ["cat_0"]}


def table(rows: int, offset: int, start: dt.datetime) -> pa.Table:
    rng = np.random.default_rng(offset)
    labels = np.array(["north", "south", "east", "west", "centre"])
    columns = {
        "id": pa.array([f"p-{offset + i}" for i in range(rows)]),
        "timestamp": pa.array(
            np.datetime64(start.replace(tzinfo=None), "us")
            + (np.arange(offset, offset + rows) * 1000).astype("timedelta64[us]"),
            pa.timestamp("us", tz="UTC"),
        ),
    }
    columns |= {name: rng.normal(size=rows) for name in NUMERICAL}
    columns |= {name: labels[rng.integers(0, 5, rows)] for name in CATEGORICAL}
    columns["score"] = rng.random(rows)
    return pa.table(columns)


def post_all(client: APIClient, name: str, bodies: list[bytes], content_type: str) -> float:
    started = time.perf_counter()
    for body in bodies:
        answer = client.post(f"/api/v1/models/{name}/predictions/", body, content_type=content_type)
        assert answer.status_code == 201, answer.content[:500]
    return time.perf_counter() - started


def as_json(part: pa.Table) -> bytes:
    rows = part.to_pylist()
    for row in rows:
        row["timestamp"] = row["timestamp"].isoformat()
    return orjson.dumps(rows)


def as_parquet(part: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(part, buffer)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with scratch_database("driftledger_bench_ingest") as scratch:
        settings.MEDIA_ROOT = str(scratch / "media")
        results = {}
        for form, batch, encode, content_type in (
            ("JSON records", 10_000, as_json, "application/json"),
            ("Parquet", 250_000, as_parquet, "application/vnd.apache.parquet"),
        ):
            name = "bench-json" if form == "JSON records" else "bench-parquet"
            registry.model_register(name=name, task="regression", owner="bench", data_schema=SCHEMA, actor=ACTOR)
            key = registry.api_key_issue(name=name, label="bench", expires_at=None, actor=ACTOR)[1]
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
            offset = 0 if form == "JSON records" else options.rows
            bodies = [
                encode(table(min(batch, options.rows - s), offset + s, start)) for s in range(0, options.rows, batch)
            ]
            seconds = post_all(client, name, bodies, content_type)
            results[form] = (seconds, sum(len(b) for b in bodies))
        started = time.perf_counter()
        window = window_load(model="bench-parquet")
        load_seconds = time.perf_counter() - started
        assert window.rows == options.rows
    print(f"{options.rows:,} prediction rows, 25 features, through /api/v1/models/NAME/predictions/")
    targets = {"JSON records": 50_000, "Parquet": 500_000}
    for form, (seconds, size) in results.items():
        rate = options.rows / seconds
        target = targets[form]
        print(
            f"  {form:13} {seconds:6.2f} s  {rate:>10,.0f} rows/s  ({size / 1e6:,.0f} MB sent)  "
            f"target {target:,}: {rate / target:.2f}x"
        )
    print(
        f"  window load   {load_seconds:6.2f} s  for {window.rows:,} rows as numpy  target < 1 s: "
        f"{1 / load_seconds:.2f}x"
    )


if __name__ == "__main__":
    main()
