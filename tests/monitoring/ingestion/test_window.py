"""A window read batch by batch (each cut to the window as it is read, columns made one at a
time) is the window that one table of all its batches gives: the same rows, values and types.
The reference computation here is that table: `pa.concat_tables` of the stored files, cut to
the window, then each column as numpy."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from audit.blobs import blob_path, blob_store
from monitoring.ingestion import selectors
from monitoring.ingestion.files import batch_file_read
from monitoring.ingestion.selectors import window_digests, window_from_batches
from tests.monitoring.conftest import client_for
from tests.monitoring.ingestion.test_ingestion import NOW, post, records

pytestmark = pytest.mark.django_db
REPEATED = {"region", "channel", "model_version"}
WINDOWS = [
    (None, None),
    (NOW - dt.timedelta(hours=5, minutes=30), NOW - dt.timedelta(hours=1, minutes=50)),
    (NOW - dt.timedelta(hours=4), None),
    (None, NOW - dt.timedelta(hours=3)),
    (NOW + dt.timedelta(days=1), None),  # no row at all
]


def _one_table(digests: list[str], columns, start, end) -> tuple[dict[str, np.ndarray], int]:
    """The window as one table of all its batches, cut once."""
    wanted = None if columns is None else list(dict.fromkeys([*columns, "timestamp"]))
    table = pa.concat_tables(
        [batch_file_read(blob_path(d), wanted, dictionary=REPEATED) for d in digests], promote_options="default"
    )
    if "timestamp" in table.column_names and (start is not None or end is not None):
        times = table.column("timestamp")
        keep = pa.chunked_array([pa.array(np.ones(len(times), dtype=bool))])
        if start is not None:
            keep = pc.and_(keep, pc.greater_equal(times, pa.scalar(start, type=selectors.TIMESTAMP)))
        if end is not None:
            keep = pc.and_(keep, pc.less(times, pa.scalar(end, type=selectors.TIMESTAMP)))
        table = table.filter(pc.fill_null(keep, False))
    names = table.column_names if columns is None else [n for n in dict.fromkeys(columns) if n in table.column_names]
    return {name: _as_numpy(table.column(name), name) for name in names}, table.num_rows


def _as_numpy(column: pa.ChunkedArray, name: str) -> np.ndarray:
    if name == "id" and pa.types.is_string(column.type):  # the schema's ids: compact strings
        return np.array(column.to_pylist(), dtype=selectors.IDS)
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return pc.cast(column, pa.float64()).to_numpy()
    if pa.types.is_dictionary(column.type):
        return np.array(column.cast(column.type.value_type).to_pylist(), dtype=object)
    if pa.types.is_timestamp(column.type):
        return column.to_numpy()
    return column.to_numpy(zero_copy_only=False)


def _same(found: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(found) == list(expected)
    for name, values in expected.items():
        assert found[name].dtype == values.dtype, name
        if values.dtype.kind == "f":
            np.testing.assert_array_equal(found[name], values)  # NaN where NaN
        else:
            assert found[name].tolist() == values.tolist(), name


@pytest.fixture
def batches(credit_key) -> list[str]:
    """Six batches of predictions, an hour apart, of 40 rows a minute apart; the third has no
    channel column at all, the fourth has null incomes and regions."""
    client = client_for(key=credit_key)
    for hour in range(6):
        rows = records(40, start=hour * 40)
        for index, row in enumerate(rows):
            row["timestamp"] = (NOW - dt.timedelta(hours=6 - hour, minutes=-index)).isoformat()
        if hour == 2:
            rows = [{k: v for k, v in row.items() if k != "channel"} for row in rows]
        if hour == 3:
            for row in rows[::3]:
                row["income"], row["region"] = None, None
        assert post(client, "predictions", orjson.dumps(rows), "application/json").status_code == 201
    return window_digests(model="credit")


@pytest.mark.parametrize("read_ahead", [1, 2, 4])
@pytest.mark.parametrize("columns", [None, ["income", "region", "channel", "id"], ["channel", "channel", "absent"]])
def test_a_window_read_batch_by_batch_is_the_window_of_one_table(batches, monkeypatch, read_ahead, columns):
    monkeypatch.setattr(selectors, "READ_AHEAD", read_ahead)
    assert len(batches) == 6
    for start, end in WINDOWS:
        window = window_from_batches(
            model="credit", kind="predictions", digests=batches, start=start, end=end, columns=columns
        )
        expected, rows = _one_table(batches, columns, start, end)
        assert window.rows == rows and window.batches == batches
        _same(window.columns, expected)
    assert window_from_batches(model="credit", kind="predictions", digests=batches, columns=columns).rows == 240


@pytest.mark.parametrize("column", ["id", "channel", "absent"])
def test_a_column_read_a_batch_at_a_time_holds_the_windows_rows_in_order(batches, column):
    """A pass over one column (the ids' join with the labels) reads it a batch at a time: the
    same rows as the whole window's column, in order; a batch without it gives nulls."""
    for start, end in WINDOWS:
        chunks = list(
            selectors.window_column_chunks(
                model="credit", kind="predictions", digests=batches, column=column, start=start, end=end
            )
        )
        window = window_from_batches(model="credit", kind="predictions", digests=batches, start=start, end=end)
        values = [value for chunk in chunks for value in chunk.to_pylist()]
        assert values == (window.columns[column].tolist() if column != "absent" else [None] * window.rows)


def test_the_channel_missing_from_a_batch_is_none_there_and_nulls_stay_missing(batches):
    window = window_from_batches(model="credit", kind="predictions", digests=batches, columns=["channel", "income"])
    channel, income = window.columns["channel"], window.columns["income"]
    assert channel[80:120].tolist() == [None] * 40 and set(channel[:80].tolist()) == {"web"}
    assert np.isnan(income[120:160:3]).all() and not np.isnan(income[121:160:3]).any()


def test_a_batch_without_times_has_no_row_in_a_window_of_time(credit_key, people):
    """Reference data may come without times: all of it is the reference, but none of it lies
    within a window of time, as when the batches were one table."""
    engineer = client_for(people["ml_engineer"])
    untimed = [{k: v for k, v in r.items() if k not in ("id", "timestamp")} | {"defaulted": 0} for r in records(10)]
    timed = [r | {"defaulted": 1} for r in records(10, start=10)]
    for body in (untimed, timed):
        assert post(engineer, "reference", orjson.dumps(body), "application/json").status_code == 201
    digests = window_digests(model="credit", kind="reference")
    for start in (None, NOW - dt.timedelta(days=1)):
        window = window_from_batches(model="credit", kind="reference", digests=digests, start=start)
        expected, rows = _one_table(digests, None, start, None)
        assert window.rows == rows == (20 if start is None else 10)
        _same(window.columns, expected)
    untimed_only = digests[:1]
    for columns in (["absent"], [], ["income"]):  # a table of no column has no row
        window = window_from_batches(model="credit", kind="reference", digests=untimed_only, columns=columns)
        expected, rows = _one_table(untimed_only, columns, None, None)
        assert window.rows == rows and list(window.columns) == list(expected)
    # Read a batch at a time, whether the untimed batch's rows are in a window of time is not
    # known before the last batch is read: the pass is refused, not guessed.
    chunks = selectors.window_column_chunks(
        model="credit", kind="reference", digests=digests, column="income", start=NOW - dt.timedelta(days=1)
    )
    with pytest.raises(selectors.UnevenTimes):
        list(chunks)


def test_batches_whose_types_cannot_be_reconciled_are_an_error(credit_key):
    """Two files whose one column is a number in one and text in the other cannot make one
    column: the read fails as one table of them would, instead of mixing the two."""

    def stored(table: pa.Table) -> str:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return blob_store(sink.getvalue().to_pybytes())[0]

    times = pa.array([NOW, NOW], type=selectors.TIMESTAMP)
    digests = [
        stored(pa.table({"income": [1.0, 2.0], "timestamp": times})),
        stored(pa.table({"income": ["a", "b"], "timestamp": times})),
    ]
    with pytest.raises(pa.ArrowTypeError):
        _one_table(digests, ["income"], None, None)
    with pytest.raises(pa.ArrowTypeError):
        window_from_batches(model="credit", kind="predictions", digests=digests, columns=["income"])
    # The time column is read to cut the window: its types must be reconciled too, asked for or not.
    clashing = [
        stored(pa.table({"income": [1.0], "timestamp": pa.array([NOW], type=selectors.TIMESTAMP)})),
        stored(pa.table({"income": [2.0], "timestamp": pa.array([NOW], type=pa.timestamp("ms", tz="UTC"))})),
    ]
    with pytest.raises(pa.ArrowTypeError):
        _one_table(clashing, ["income"], None, None)
    with pytest.raises(pa.ArrowTypeError):
        window_from_batches(model="credit", kind="predictions", digests=clashing, columns=["income"])
