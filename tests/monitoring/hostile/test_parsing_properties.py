"""Property tests of the door (hypothesis): whatever the bytes, parsing and conforming either
refuse with one of the product's precise errors or give a table that holds only what the rules
allow: finite numbers, exact integers, text without NUL within the length limit, plausible
times. Never another exception (a 500)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitoring.ingestion.conform import BatchRejected, conform
from monitoring.ingestion.limits import EXACT_INTEGER, Limits
from monitoring.ingestion.parsing import TooLarge, UnreadableBody, parse_body
from monitoring.registry.data_schema import parse_schema
from tests.monitoring.conftest import SCHEMA

LIMITS = Limits(max_body_bytes=200_000, max_rows=500, max_columns=20, max_text_length=40, max_categories=50)
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SCHEMA_ = parse_schema(SCHEMA)
REFUSALS = (BatchRejected, UnreadableBody, TooLarge)
CONTENT_TYPES = ("application/json", "application/x-ndjson", "text/csv", "application/vnd.apache.parquet")
# Derandomized: CI explores the same 400 cases every time (a failure reproduces); raise max_examples
# locally to explore further.
PROPERTY = settings(
    max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["NaN", "Infinity", "-inf", "1e999", "12", " 3.5 ", "1e308", "0x10", ""]),
    st.none(),
)
texts = st.one_of(st.text(max_size=60), st.sampled_from(["north", "a\x00b", "x" * 41]), st.none(), st.integers())
times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from(["0001-01-01T00:00:00Z", "1900-06-01T00:00:00Z", "2026-11-30T10:00:00Z", "9999-12-31T23:59:59Z"]),
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.isoformat()),
)
row = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=12), st.integers()),
        "timestamp": times,
        "income": numbers,
        "debt_ratio": numbers,
        "region": texts,
        "channel": texts,
        "score": numbers,
    }
)


def _encode(rows: list[dict], content_type: str) -> bytes | None:
    """The rows in a body format; None when that format cannot hold them (JSON has no NaN)."""
    if content_type in ("application/json", "application/x-ndjson"):

        def literal(value):  # what a careless client writes: NaN and Infinity literals included
            if isinstance(value, float) and not math.isfinite(value):
                return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
            return json.dumps(value)  # integers of any size, as a careless client may write them

        lines = ["{" + ",".join(f"{json.dumps(k)}:{literal(v)}" for k, v in r.items()) + "}" for r in rows]
        text = "\n".join(lines) if content_type == "application/x-ndjson" else "[" + ",".join(lines) + "]"
        return text.encode()
    if content_type == "text/csv":
        header = list(rows[0])
        cells = [
            [("" if r[c] is None else str(r[c]).replace(",", ";").replace("\n", " ")) for c in header] for r in rows
        ]
        return ("\n".join([",".join(header)] + [",".join(line) for line in cells]) + "\n").encode()
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _allowed(table: pa.Table) -> None:
    """What an accepted batch may hold, checked column by column."""
    for name in ("income", "debt_ratio", "score"):
        values = table.column(name)
        assert pa.types.is_floating(values.type)
        assert pc.all(pc.is_finite(values.drop_null())).as_py() in (True, None)
    for name in ("region", "channel", "id"):
        for value in table.column(name).to_pylist():
            assert value is None or ("\x00" not in value and len(value) <= LIMITS.max_text_length)
    for moment in table.column("timestamp").to_pylist():
        assert LIMITS.earliest <= moment <= LIMITS.latest(NOW)


@PROPERTY
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(CONTENT_TYPES))
def test_any_bytes_are_refused_precisely_or_read(body, content_type):
    with contextlib.suppress(UnreadableBody, TooLarge):  # anything else fails the test
        parse_body(body, content_type, limits=LIMITS)


@PROPERTY
@given(rows=st.lists(row, min_size=1, max_size=8), content_type=st.sampled_from(CONTENT_TYPES))
def test_hostile_rows_are_refused_precisely_or_conform_to_every_rule(rows, content_type):
    body = _encode(rows, content_type)
    if body is None:
        return
    try:
        table = parse_body(body, content_type, text_columns=["id", "region", "channel", "model_version"], limits=LIMITS)
        accepted = conform(
            table, kind="predictions", schema=SCHEMA_, task="binary_classification", versions={"1.0"}, now=NOW,
            limits=LIMITS,
        )  # fmt: skip
    except REFUSALS as refusal:
        assert str(refusal)
        if isinstance(refusal, BatchRejected):
            assert all(problem.column and problem.reason for problem in refusal.problems)
        return
    _allowed(accepted)


@PROPERTY
@given(value=st.integers(min_value=-(2**64), max_value=2**64))
def test_an_integer_is_kept_exactly_or_refused(value):
    rows = [{"id": "a", "timestamp": "2026-11-30T10:00:00Z", "income": value, "debt_ratio": 0.5, "region": "north",
             "channel": "web", "score": 0.5}]  # fmt: skip
    try:
        table = parse_body(json.dumps(rows).encode(), "application/json", limits=LIMITS)
        accepted = conform(
            table, kind="predictions", schema=SCHEMA_, task="binary_classification", versions=set(), now=NOW,
            limits=LIMITS,
        )  # fmt: skip
    except (BatchRejected, UnreadableBody):
        assert abs(value) > EXACT_INTEGER
        return
    assert abs(value) <= EXACT_INTEGER
    assert accepted.column("income").to_pylist() == [float(value)] and int(float(value)) == value
