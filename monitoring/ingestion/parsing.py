"""Request bodies to Arrow tables: JSON records, NDJSON, CSV and Parquet.

Types are not decided here: a column whose JSON values mix kinds comes out as text, and
`conform` says which rows are wrong. Refused here: a body that cannot be read at all, one that
is not strict JSON (no NaN or Infinity literals, in JSON and NDJSON alike), and one over the
size limits (bytes, rows, columns), which answers 413.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Collection

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from monitoring.ingestion.limits import Limits

CONTENT_TYPES = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


class UnreadableBody(ValueError):
    pass


class UnsupportedContentType(UnreadableBody):
    pass


class TooLarge(UnreadableBody):
    """Over a size limit: the answer is 413, naming the limit and its setting."""


def body_format(content_type: str) -> str:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        accepted = ", ".join(CONTENT_TYPES)
        raise UnsupportedContentType(f"Content-Type {media_type or '(none)'!r} is not accepted; send one of {accepted}")
    return CONTENT_TYPES[media_type]


def parse_body(body: bytes, content_type: str, *, text_columns: Collection[str] = (), limits: Limits) -> pa.Table:
    """`text_columns` are read as text from CSV, where "1.0" would otherwise become a number."""
    kind = body_format(content_type)
    if not body:
        raise UnreadableBody("the request body is empty")
    if len(body) > limits.max_body_bytes:
        raise TooLarge(
            f"the body is {len(body):,} bytes, over the limit of {limits.max_body_bytes:,} (INGEST_MAX_BODY_BYTES)"
        )
    try:
        if kind in ("json", "ndjson"):
            table = _json_table(body if kind == "json" else _ndjson_as_array(body), limits)
        elif kind == "csv":
            table = _csv(body, text_columns)
        else:
            table = _parquet(body, limits)
    except orjson.JSONDecodeError as error:
        raise UnreadableBody(f"the {kind} body is not valid JSON (NaN and Infinity are not JSON): {error}") from error
    except (pa.ArrowMemoryError, pa.ArrowCapacityError) as error:
        raise TooLarge(f"the {kind} body does not fit in memory once decoded: {error}") from error
    except (pa.ArrowException, OSError) as error:
        raise UnreadableBody(f"the {kind} body cannot be read: {error}") from error
    _within(table.num_rows, table.num_columns, limits)
    try:
        names = table.column_names
    except UnicodeDecodeError as error:
        raise UnreadableBody(f"the {kind} body's column names are not UTF-8: {error}") from error
    _refuse_repeated(names, kind)
    return table


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _refuse_repeated(names: list[str], kind: str) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UnreadableBody(f"the {kind} body names a column more than once: {', '.join(repeated)}")


def _within(rows: int, columns: int, limits: Limits) -> None:
    if rows > limits.max_rows:
        raise TooLarge(f"the batch has {rows:,} rows, over the limit of {limits.max_rows:,} (INGEST_MAX_ROWS)")
    if columns > limits.max_columns:
        raise TooLarge(
            f"the batch has {columns:,} columns, over the limit of {limits.max_columns:,} (INGEST_MAX_COLUMNS)"
        )


def _ndjson_as_array(body: bytes) -> bytes:
    """One JSON value per line, as one JSON array: parsed as strictly as JSON itself."""
    lines = [line for line in body.splitlines() if line.strip()]
    return b"[" + b",".join(lines) + b"]"


def _csv(body: bytes, text_columns: Collection[str]) -> pa.Table:
    """Only an empty cell is missing: "NaN", "inf" or "null" are values, which conform refuses
    in a numeric column (the rule for non-finite numbers is the same in every format)."""
    options = pa_csv.ConvertOptions(
        column_types=dict.fromkeys(text_columns, pa.string()),
        null_values=[""],
        strings_can_be_null=True,
    )
    return pa_csv.read_csv(io.BytesIO(body), convert_options=options)


def _parquet(body: bytes, limits: Limits) -> pa.Table:
    """Sizes are checked before anything is decompressed: rows and columns, and the decoded
    size the metadata announces. Text columns are read dictionary-encoded and their distinct
    values checked before they are expanded: a few kilobytes of compressed file may not
    become a terabyte of repeated text."""
    source = pq.ParquetFile(io.BytesIO(body))
    metadata = source.metadata
    _within(metadata.num_rows, metadata.num_columns, limits)
    _refuse_repeated(source.schema_arrow.names, "Parquet")
    decoded = sum(
        metadata.row_group(group).column(column).total_uncompressed_size
        for group in range(metadata.num_row_groups)
        for column in range(metadata.num_columns)
    )
    if decoded > DECODED_FACTOR * limits.max_body_bytes:
        raise TooLarge(
            f"the Parquet body decodes to {decoded:,} bytes, over {DECODED_FACTOR} times the body limit "
            f"of {limits.max_body_bytes:,} (INGEST_MAX_BODY_BYTES)"
        )
    texts = [field.name for field in source.schema_arrow if _is_text(field.type)]
    table = pq.ParquetFile(io.BytesIO(body), read_dictionary=texts).read()
    longest = TEXT_BYTES_PER_CHARACTER * limits.max_text_length
    for name in texts:
        values = table.column(name).combine_chunks()
        if pa.types.is_dictionary(values.type) and len(values.dictionary):
            size = pc.max(pc.binary_length(values.dictionary)).as_py() or 0
            if size > longest:
                raise TooLarge(
                    f"column {name!r} holds a text value of {size:,} bytes, over the limit of "
                    f"{limits.max_text_length:,} characters (INGEST_MAX_TEXT_LENGTH)"
                )
        table = table.set_column(table.column_names.index(name), name, pc.cast(values, pa.string()))
    return table


DECODED_FACTOR = 4  # a Parquet body may decode to this many times the body limit
TEXT_BYTES_PER_CHARACTER = 4  # UTF-8: at most 4 bytes a character
ROUNDED = float(2**63)  # orjson reads an integer literal beyond 64 bits as a float at least this large


def _json_table(body: bytes, limits: Limits) -> pa.Table:
    """Strict JSON (no NaN or Infinity) as a table. orjson reads an integer beyond 64 bits as a
    rounded float; a body with a number that large is read again by the standard library, which
    keeps every integer exact for conform() to refuse."""
    try:
        table = _records(orjson.loads(body), limits, exact=False)
        if any(_at_least(table.column(name), ROUNDED) for name in table.column_names):
            raise _MaybeRounded
        return table
    except _MaybeRounded:
        try:
            data = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
        except (ValueError, RecursionError) as error:
            raise orjson.JSONDecodeError(str(error), "", 0) from error
        return _records(data, limits, exact=True)


class _MaybeRounded(Exception):
    """A number orjson may have rounded from an integer literal beyond 64 bits."""


def _at_least(column: pa.ChunkedArray, magnitude: float) -> bool:
    if not pa.types.is_floating(column.type):
        return False
    largest = pc.max(pc.abs(column)).as_py()
    return largest is not None and largest >= magnitude


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is infinity when parsed as double")
    return value


def _records(data: object, limits: Limits, *, exact: bool) -> pa.Table:
    """`[{...}, ...]` or `{"records": [{...}, ...]}`, one object per row."""
    if isinstance(data, dict) and set(data) == {"records"}:
        data = data["records"]
    if not isinstance(data, list) or not data:
        raise UnreadableBody('the JSON body must be a non-empty array of records, or {"records": [...]}')
    bad = [index for index, record in enumerate(data) if not isinstance(record, dict)]
    if bad:
        raise UnreadableBody(f"records must be JSON objects; rows {_rows(bad)} are not")
    names = list(dict.fromkeys(name for record in data for name in record))
    _within(len(data), len(names), limits)
    columns = {name: _column([record.get(name) for record in data], exact=exact) for name in names}
    return pa.table(columns)


def _column(values: list, *, exact: bool) -> pa.Array:
    """`exact`: the integers were read exactly (not by orjson, which rounds beyond 64 bits)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed kinds, or integers beyond 64 bits: keep every value as text; conform() names the
        # rows that do not fit the column's type.
        if not exact and any(isinstance(v, float) and abs(v) >= ROUNDED for v in values):
            raise _MaybeRounded from None
        try:
            return pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values])
        except RecursionError:  # a value nested deeper than Python writes back: orjson read it (1024 levels)
            raise UnreadableBody("the JSON body holds a value nested too deeply to be read as text") from None


def _rows(indices: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f" and {len(indices) - limit} more" if len(indices) > limit else "")
