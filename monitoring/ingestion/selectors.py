"""Reads of the monitoring data: a time window of a model's batches as numpy columns."""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from audit.blobs import blob_path
from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.files import batch_file_read
from monitoring.ingestion.models import Batch
from monitoring.registry.data_schema import DataSchema, parse_schema
from monitoring.registry.models import RegisteredModel

TIMESTAMP = pa.timestamp("us", tz="UTC")
# Ids as numpy's variable-width strings: 16 bytes each (a short id inline), where a Python
# string takes some 60 more; at 10M rows the window's ids held 660 MB as Python strings.
IDS = np.dtypes.StringDType(na_object=None)


@dataclass(frozen=True)
class Window:
    """Columns of equal length: numbers as float64 (NaN where missing), text as object arrays
    (None where missing), times as datetime64[us] in UTC; text ids as `IDS` (None where missing)."""

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


READ_AHEAD = 4  # batch files being read at once: enough to keep the cores busy, few enough to hold


def window_from_batches(
    *,
    model: str,
    kind: str,
    digests: list[str],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    columns: list[str] | None = None,
    schema: DataSchema | None = None,
) -> Window:
    """The rows of exactly these batch files (in this order) with start ≤ time < end: how a
    run is reproduced from the digests it recorded. `columns`: only those of them the batches hold.

    Each batch is cut to the window as soon as it is read, and a column becomes numpy once every
    batch is in, one column at a time, its pieces let go as it is made: the process holds about
    the window's columns once, plus one column, where concatenating whole tables held them three
    times over (`bench/window_memory.py`)."""
    schema = schema or parse_schema(RegisteredModel.objects.get(name=model).data_schema)
    time_column, repeated_texts = _how_read(kind, schema)
    wanted = None if columns is None else list(dict.fromkeys([*columns, time_column]))
    # A time read only to cut the window is let go as soon as its batch is cut: at 100M rows
    # the times held until the end were 800 MB more at the read's peak.
    cut_only = columns is not None and time_column not in columns
    pieces: list[pa.Table] = []
    timed: list[bool] = []
    read_any_column = False
    schemas: list[pa.Schema] = []  # as read, times included: what must be reconciled is unchanged
    for table in _read_ahead(digests, wanted, repeated_texts):
        timed.append(time_column in table.column_names)
        read_any_column = read_any_column or table.num_columns > 0
        piece = _between(table, time_column, start, end)  # only the wanted columns were read
        schemas.append(piece.schema)
        if cut_only and len(piece.schema.get_all_field_indices(time_column)) == 1:
            piece = piece.drop_columns([time_column])
        pieces.append(piece)
    if not pieces:
        return Window({name: np.empty(0) for name in columns or []}, 0, [])
    if not read_any_column:  # as one table of them: no column, no row
        return Window({}, 0, list(digests))
    if (start is not None or end is not None) and any(timed):
        # As one table of all the batches would be cut: a batch without times has no row in the window.
        pieces = [piece if has_times else piece.slice(0, 0) for piece, has_times in zip(pieces, timed, strict=True)]
    # As concatenating the tables would: a column missing from a batch is null there, and types
    # that cannot be reconciled across batches are an error.
    unified = pa.unify_schemas(schemas, promote_options="default")
    names = unified.names if columns is None else [n for n in dict.fromkeys(columns) if n in unified.names]
    sizes = [piece.num_rows for piece in pieces]
    found: dict[str, np.ndarray] = {}
    for name in names:
        type_ = unified.field(name).type
        chunks = [
            chunk if chunk.type == type_ else chunk.cast(type_)
            for piece, size in zip(pieces, sizes, strict=True)
            for chunk in (piece.column(name).chunks if name in piece.column_names else [pa.nulls(size, type_)])
        ]
        pieces = [piece.drop_columns([name]) if name in piece.column_names else piece for piece in pieces]
        found[name] = _numpy(chunks, type_, ids=name == schema.id)  # its pieces let go as they are copied
        pa.default_memory_pool().release_unused()
    return Window(found, sum(sizes), list(digests))


class UnevenTimes(Exception):
    """A batch without times in a window cut by time: whether its rows are in the window is
    known only once every batch is read (`window_from_batches`)."""


def window_column_chunks(
    *,
    model: str,
    kind: str,
    digests: list[str],
    column: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    schema: DataSchema | None = None,
) -> Generator[pa.Array]:
    """The window's `column` as Arrow, a batch at a time: each batch is cut to the window as it
    is read and let go once its chunks are taken, so that a pass over one column holds a batch
    or two of it where `window_from_batches` holds it whole (the ids: 1.6 GB at 100M rows). The
    rows are `window_from_batches`'s, in its order; a batch without the column gives nulls, as
    there. A batch without times in a window cut by time raises UnevenTimes."""
    schema = schema or parse_schema(RegisteredModel.objects.get(name=model).data_schema)
    time_column, repeated_texts = _how_read(kind, schema)
    cut = start is not None or end is not None
    for table in _read_ahead(digests, list(dict.fromkeys([column, time_column])), repeated_texts, ahead=1):
        if cut and time_column not in table.column_names:
            raise UnevenTimes(f"a batch of {model!r} has no {time_column!r} column")
        piece = _between(table, time_column, start, end)
        del table
        if column in piece.column_names:
            yield from piece.column(column).chunks
        else:
            yield pa.nulls(piece.num_rows)


def _how_read(kind: str, schema: DataSchema) -> tuple[str, set[str]]:
    """(the column a batch of this kind is cut by, the columns read dictionary-encoded)."""
    time_column = "timestamp" if kind == BatchKind.KPIS else schema.timestamp
    return time_column, {*schema.categorical, *schema.segments, "model_version", "kpi"}


def _read_ahead(
    digests: list[str], columns: list[str] | None, repeated_texts: set[str], *, ahead: int | None = None
) -> Iterator[pa.Table]:
    """The batch files' tables in order, at most `ahead` (default READ_AHEAD) of them read and
    not yet taken: reading all at once would hold every whole table before any is cut to the window."""
    ahead = ahead or READ_AHEAD
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending: deque[Future[pa.Table]] = deque()
        for digest in digests:
            if len(pending) == ahead:
                yield pending.popleft().result()
            pending.append(pool.submit(_read, blob_path(digest), columns, repeated_texts))
        while pending:
            yield pending.popleft().result()


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
    keep = pc.fill_null(keep, False)
    if pc.all(keep).as_py():  # a batch wholly in the window, as most are: no copy of it
        return table
    return table.filter(keep)


RELEASE_EVERY_ROWS = 8_000_000  # Arrow's freed memory is given back this often while a column is copied


def _numpy(chunks: list[pa.Array], kind: pa.DataType, *, ids: bool = False) -> np.ndarray:
    """One column of the window as numpy, from its pieces, which this takes (the list is emptied).
    Numbers, ids and categories are copied a piece at a time into one array, each piece let go
    once copied: the column is held about once, not as its pieces and a whole copy besides (at
    20M rows the ids' pieces and their concatenation held 640 MB more at the read's peak)."""
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        return _filled(chunks, np.float64, lambda chunk: pc.cast(chunk, pa.float64()).to_numpy(zero_copy_only=False))
    if ids and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        # Python strings for one piece at a time only, made compact as they are copied.
        return _filled(chunks, IDS, lambda chunk: chunk.to_numpy(zero_copy_only=False))
    if pa.types.is_dictionary(kind):  # categories: each piece decoded through its own dictionary
        return _filled(chunks, object, _decoded)
    column = pa.chunked_array(chunks, type=kind)
    chunks.clear()
    if pa.types.is_timestamp(kind):
        return column.to_numpy()
    return column.to_numpy(zero_copy_only=False)  # other texts: object arrays, None where missing


def _decoded(chunk: pa.DictionaryArray) -> np.ndarray:
    """A piece of categories as an object array (None where missing): one take through its
    dictionary, each distinct value one Python string."""
    labels = np.array([*chunk.dictionary.to_pylist(), None], dtype=object)
    return labels[pc.fill_null(chunk.indices, len(chunk.dictionary)).to_numpy(zero_copy_only=False)]


def _filled(chunks: list[pa.Array], dtype: Any, converted: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    found = np.empty(sum(len(chunk) for chunk in chunks), dtype=dtype)
    chunks.reverse()  # taken from the end: the first piece first
    position = since_release = 0
    while chunks:
        chunk = chunks.pop()
        found[position : position + len(chunk)] = converted(chunk)
        position += len(chunk)
        since_release += len(chunk)
        del chunk
        if since_release >= RELEASE_EVERY_ROWS:
            pa.default_memory_pool().release_unused()
            since_release = 0
    return found


def last_rows_start(*, model: str, end: dt.datetime, rows: int) -> dt.datetime | None:
    """The start of the shortest window ending at `end` that holds the model's last `rows`
    predictions (None: fewer rows than that exist)."""
    schema = parse_schema(RegisteredModel.objects.get(name=model).data_schema)
    times = window_load(model=model, end=end, columns=[schema.timestamp]).columns.get(schema.timestamp)
    if times is None or times.size < rows:
        return None
    earliest = np.partition(times, times.size - rows)[times.size - rows]
    return dt.datetime.fromisoformat(str(earliest.astype("datetime64[us]"))).replace(tzinfo=dt.UTC)
