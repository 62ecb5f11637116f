"""Reads of the monitoring data: a time window of a model's batches as numpy columns."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.blobs import blob_path
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.files import batch_file_read
from monitoring.ingestion.models import Batch
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.models import RegisteredModel

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Window:
    """Columns of equal length: numbers as float64 (NaN where missing), text as object arrays
    (None where missing), times as datetime64[us] in UTC."""

    columns: dict[str, np.ndarray]
    rows: int
    batches: list[str]  # the SHA-256 of every batch read, for reproducing a run


def window_load(
    *,
    model: str,
    kind: str = BatchKind.PREDICTIONS,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    columns: list[str] | None = None,
) -> Window:
    """The model's rows of `kind` with start ≤ time < end (all of them when both are None)."""
    digests = window_digests(model=model, kind=kind, start=start, end=end)
    return window_from_batches(model=model, kind=kind, digests=digests, start=start, end=end, columns=columns)


def window_digests(
    *, model: str, kind: str = BatchKind.PREDICTIONS, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[str]:
    """The batches that may hold rows of `kind` with start ≤ time < end, in the order they came."""
    batches = Batch.objects.filter(model__name=model, kind=kind)
    if start is not None:
        batches = batches.filter(time_max__gte=start)
    if end is not None:
        batches = batches.filter(time_min__lt=end)
    return list(batches.order_by("seq").values_list("sha256", flat=True))


def window_from_batches(
    *,
    model: str,
    kind: str,
    digests: list[str],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    columns: list[str] | None = None,
) -> Window:
    """The rows of exactly these batch files (in this order) with start ≤ time < end: how a
    run is reproduced from the digests it recorded. `columns`: only those of them the batches hold."""
    schema = parse_schema(RegisteredModel.objects.get(name=model).data_schema)
    time_column = "timestamp" if kind == BatchKind.KPIS else schema.timestamp
    repeated_texts = {*schema.categorical, *schema.segments, "model_version", "kpi"}
    wanted = None if columns is None else list(dict.fromkeys([*columns, time_column]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        tables = list(pool.map(lambda digest: _read(blob_path(digest), wanted, repeated_texts), digests))
    if not tables:
        return Window({name: np.empty(0) for name in columns or []}, 0, [])
    table = pa.concat_tables(tables, promote_options="default")
    table = _between(table, time_column, start, end)
    names = table.column_names if columns is None else [name for name in columns if name in table.column_names]
    return Window({name: _numpy(table.column(name)) for name in names}, table.num_rows, list(digests))


def _read(path: str, columns: list[str] | None, repeated_texts: set[str]) -> pa.Table:
    return batch_file_read(path, columns, dictionary=repeated_texts)


def _between(table: pa.Table, column: str, start: dt.datetime | None, end: dt.datetime | None) -> pa.Table:
    if column not in table.column_names or (start is None and end is None):
        return table
    times = table.column(column)
    keep = pa.chunked_array([pa.array(np.ones(len(times), dtype=bool))])
    if start is not None:
        keep = pc.and_(keep, pc.greater_equal(times, pa.scalar(start, type=TIMESTAMP)))
    if end is not None:
        keep = pc.and_(keep, pc.less(times, pa.scalar(end, type=TIMESTAMP)))
    return table.filter(pc.fill_null(keep, False))


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    kind = column.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        return pc.cast(column, pa.float64()).to_numpy()  # nulls become NaN
    if pa.types.is_timestamp(kind):
        return column.to_numpy()
    if pa.types.is_dictionary(kind):  # categories: decoding through the dictionary is one take
        encoded = column.unify_dictionaries().combine_chunks()
        labels = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
        codes = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
        return labels[codes]
    return column.to_numpy(zero_copy_only=False)  # ids and other texts: object arrays, None where missing


def last_rows_start(*, model: str, end: dt.datetime, rows: int) -> dt.datetime | None:
    """The start of the shortest window ending at `end` that holds the model's last `rows`
    predictions (None: fewer rows than that exist)."""
    schema = parse_schema(RegisteredModel.objects.get(name=model).data_schema)
    times = window_load(model=model, end=end, columns=[schema.timestamp]).columns.get(schema.timestamp)
    if times is None or times.size < rows:
        return None
    earliest = np.partition(times, times.size - rows)[times.size - rows]
    return dt.datetime.fromisoformat(str(earliest.astype("datetime64[us]"))).replace(tzinfo=dt.UTC)
