"""Hostile and broken batches from a key holder: each refused with its status, a message naming
the column, the rows and the limit, and nothing stored (no file, no event, no batch)."""

from __future__ import annotations

import datetime as dt
import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.monitoring.conftest import client_for
from tests.monitoring.hostile.conftest import stored
from tests.monitoring.ingestion.test_ingestion import NOW, as_csv, post, records

pytestmark = pytest.mark.django_db


def _json(rows: list[dict]) -> bytes:
    return orjson.dumps(rows)


def _ndjson_with(literal: bytes) -> bytes:
    rows = [orjson.dumps(r) for r in records(3)]
    rows[1] = rows[1].replace(b'"income":', b'"income":' + literal + b',"was":', 1)
    return b"\n".join(rows)


def _parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def _with(row: int, **values) -> list[dict]:
    rows = records(5)
    rows[row] |= values
    return rows


def _epoch(seconds: float, *, whole: bool = False) -> list[dict]:
    rows = records(5)
    for i, row in enumerate(rows):
        moment = (NOW - dt.timedelta(minutes=5 - i)).timestamp()
        row["timestamp"] = int(moment) if whole else moment
    rows[2]["timestamp"] = seconds
    return rows


CASES = {
    "a category value of 1 MB": (
        _json(_with(2, region="x" * 1_000_000)),
        "application/json",
        "region",
        [2],
        "text longer than 1,000 characters",
    ),
    "a NUL inside a category": (_json(_with(1, region="north\u0000")), "application/json", "region", [1], "NUL"),
    "an integer of 2^63": (
        _json(_with(2, income=2**63 - 1)).replace(str(2**63 - 1).encode(), str(2**63).encode()),
        "application/json",
        "income",
        [2],
        "beyond ±2^53",
    ),
    "an integer of 2^70 (beyond 64 bits)": (
        _json(_with(1, income=2**62)).replace(str(2**62).encode(), str(2**70).encode()),
        "application/json",
        "income",
        [1],
        "beyond ±2^53",
    ),
    "an integer beyond 64 bits in a column that also holds text": (
        _json(_with(3, income="12")).replace(b'"income":', b'"income":' + str(2**70).encode() + b',"was":', 1),
        "application/json",
        "income",
        [0],
        "beyond ±2^53",
    ),
    "epoch seconds of -1e12": (
        _json(_epoch(-1e12)),
        "application/json",
        "timestamp",
        [2],
        "outside the plausible range",
    ),
    "epoch seconds of 2^53 + 1 (an integer float64 cannot hold)": (
        _json(_epoch(2**53 + 1, whole=True)),
        "application/json",
        "timestamp",
        [2],
        "outside the plausible range",
    ),
    "epoch seconds of 1e20": (_json(_epoch(1e20)), "application/json", "timestamp", [2], "outside the plausible range"),
    "the string NaN in a number column": (
        _json(_with(3, income="NaN")),
        "application/json",
        "income",
        [3],
        "NaN and infinity are refused",
    ),
    "the string Infinity in a number column": (
        _json(_with(0, debt_ratio="Infinity")),
        "application/json",
        "debt_ratio",
        [0],
        "NaN and infinity are refused",
    ),
    "NaN in a CSV number column": (
        as_csv(_with(4, income="NaN")),
        "text/csv",
        "income",
        [4],
        "NaN and infinity are refused",
    ),
    "inf in a CSV number column": (
        as_csv(_with(2, income="inf")),
        "text/csv",
        "income",
        [2],
        "NaN and infinity are refused",
    ),
    "NaN in a Parquet float column": (
        _parquet(_with(1, income=float("nan"))),
        "application/vnd.apache.parquet",
        "income",
        [1],
        "NaN and infinity are refused",
    ),
    "infinity in a Parquet float column": (
        _parquet(_with(2, score=float("inf"))),
        "application/vnd.apache.parquet",
        "score",
        [2],
        "NaN and infinity are refused",
    ),
    "1e999 in JSON overflows float64": (
        _json(records(3)).replace(b'"debt_ratio":', b'"debt_ratio":1e999,"was":', 1),
        "application/json",
        None,
        None,
        "not valid JSON",
    ),
    "a time in the 13th month": (
        _json(_with(2, timestamp="2026-13-01T00:00:00Z")),
        "application/json",
        "timestamp",
        [2],
        "must be an ISO 8601 time with a zone offset",
    ),
    "a time in year 0001": (
        _json(_with(2, timestamp="0001-01-01T00:00:00Z")),
        "application/json",
        "timestamp",
        [2],
        "earliest plausible time",
    ),
    "a time in 1900": (
        _json(_with(1, timestamp="1900-06-01T00:00:00Z")),
        "application/json",
        "timestamp",
        [1],
        "earliest plausible time",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_value_is_refused_naming_column_and_row_and_nothing_is_stored(credit_key, case):
    body, content_type, column, rows, message = CASES[case]
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", body, content_type)
    assert answer.status_code == 400, answer.content[:500]
    problem = answer.json()
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    if column is None:
        assert message in problem["detail"]
    else:
        found = {p["column"]: p for p in problem["problems"]}
        assert column in found, problem
        assert found[column]["rows"] == rows
        assert message in found[column]["reason"], found[column]
    assert stored() == before


def test_ndjson_refuses_the_nan_literal_json_refuses(credit_key):
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        before = stored()
        answer = post(client_for(key=credit_key), "predictions", _ndjson_with(literal), "application/x-ndjson")
        assert answer.status_code == 400, answer.content
        assert (
            "not valid JSON" in answer.json()["detail"] and "NaN and Infinity are not JSON" in answer.json()["detail"]
        )
        assert stored() == before


def test_a_body_over_the_limit_answers_413_with_a_json_problem_before_it_is_read(credit_key, settings):
    settings.INGEST_MAX_BODY_BYTES = 10_000
    body = _json(records(200))
    assert len(body) > 10_000
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", body, "application/json")
    assert answer.status_code == 413
    assert answer["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 413 and f"{len(body):,} bytes" in problem["detail"] and "10,000" in problem["detail"]
    assert "INGEST_MAX_BODY_BYTES" in problem["detail"]
    assert stored() == before


@pytest.mark.parametrize(
    ("setting", "value", "rows", "message"),
    [
        ("INGEST_MAX_ROWS", 50, 51, "51 rows, over the limit of 50 (INGEST_MAX_ROWS)"),
        ("INGEST_MAX_COLUMNS", 5, 3, "over the limit of 5 (INGEST_MAX_COLUMNS)"),
    ],
)
def test_rows_and_columns_over_their_limits_answer_413(credit_key, settings, setting, value, rows, message):
    setattr(settings, setting, value)
    for content_type, encode in (
        ("application/json", _json),
        ("text/csv", as_csv),
        ("application/vnd.apache.parquet", _parquet),
    ):
        before = stored()
        answer = post(client_for(key=credit_key), "predictions", encode(records(rows)), content_type)
        assert answer.status_code == 413, (content_type, answer.content)
        assert message in answer.json()["detail"], answer.json()
        assert stored() == before


def test_too_many_distinct_categories_in_one_batch_are_refused(credit_key, settings):
    settings.INGEST_MAX_CATEGORIES = 10
    rows = records(30)
    for i, row in enumerate(rows):
        row["region"] = f"region-{i}"
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", _json(rows), "application/json")
    assert answer.status_code == 400
    found = {p["column"]: p for p in answer.json()["problems"]}
    assert "30 distinct values, over the limit of 10 (INGEST_MAX_CATEGORIES)" in found["region"]["reason"]
    assert stored() == before


def test_a_models_own_earliest_time_moves_the_plausible_range(credit_key):
    rows = _with(2, timestamp="2005-06-01T00:00:00Z")
    answer = post(client_for(key=credit_key), "predictions", _json(rows), "application/json")
    assert answer.status_code == 201, answer.content  # after the default INGEST_EARLIEST_TIME of 2000


def test_parquet_types_no_rule_foresaw_are_refused_not_a_server_error(credit_key):
    """A millisecond timestamp near the end of int64 overflows the conversion to microseconds;
    a uint64 count beyond int64: each is a 400 naming the column."""
    rows = records(3)
    table = pa.Table.from_pylist(rows).drop(["timestamp"])
    moments = [2**62, 1_764_590_000_000, 1_764_590_001_000]
    table = table.append_column("timestamp", pa.array(moments, pa.timestamp("ms")))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", buffer.getvalue(), "application/vnd.apache.parquet")
    assert answer.status_code == 400, answer.content
    assert "timestamp" in {p["column"] for p in answer.json()["problems"]}
    kpis = pa.table(
        {
            "timestamp": pa.array([NOW.replace(tzinfo=None)], pa.timestamp("us")),
            "kpi": ["ctr"],
            "value": [0.1],
            "count": pa.array([2**64 - 1], pa.uint64()),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(kpis, buffer)
    answer = post(client_for(key=credit_key), "kpis", buffer.getvalue(), "application/vnd.apache.parquet")
    assert answer.status_code == 400, answer.content
    assert "a count beyond 2^53" in str(answer.json()["problems"])
    assert stored() == before


def test_a_column_named_twice_is_refused(credit_key):
    rows = records(3)
    csv = as_csv(rows).replace(b"income,", b"income,income,", 1).replace(b"\n", b"\n", 1)
    header, *lines = csv.decode().splitlines()
    body = "\n".join([header] + [line.replace(",", ",1.0,", 2).replace(",1.0,", ",", 1) for line in lines]) + "\n"
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", body.encode(), "text/csv")
    assert answer.status_code == 400, answer.content
    assert "names a column more than once: income" in answer.json()["detail"]
    table = pa.Table.from_pylist(rows)
    table = table.append_column("income", table.column("income"))  # Parquet allows it; the door does not
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    answer = post(client_for(key=credit_key), "predictions", buffer.getvalue(), "application/vnd.apache.parquet")
    assert answer.status_code == 400 and "names a column more than once: income" in answer.json()["detail"]
    assert stored() == before


def test_a_parquet_file_that_would_expand_to_gigabytes_is_refused_before_it_is_decoded(credit_key):
    rows = records(20_000)
    table = pa.Table.from_pylist(rows)
    huge = pa.DictionaryArray.from_arrays(pa.array([0] * table.num_rows, pa.int32()), pa.array(["x" * 1_000_000]))
    table = table.set_column(table.column_names.index("region"), "region", huge)  # 20 GB once decoded
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    assert len(buffer.getvalue()) < 2_000_000  # a small body
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", buffer.getvalue(), "application/vnd.apache.parquet")
    assert answer.status_code == 413, answer.content
    assert "'region' holds a text value of 1,000,000 bytes" in answer.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize("moment", ["1425-02-20T18:05:36+20:20", "0001-01-01T00:10:00+23:59"])
def test_a_time_filter_with_an_offset_postgresql_refuses_is_read_in_utc_or_refused(credit_model, people, moment):
    """Schemathesis found it: an offset beyond ±15:59 reached PostgreSQL and answered 500."""
    from tests.monitoring.conftest import client_for

    answer = client_for(people["auditor"]).get("/api/v1/models/credit/batches/", {"since": moment})
    assert answer.status_code in (200, 400), answer.content
