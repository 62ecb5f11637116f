"""Request bodies to Arrow tables: JSON records, NDJSON, CSV and Parquet.

Types are not decided here: a column whose JSON values mix kinds comes out as strings, and
`conform` says which rows are wrong. Only a body that cannot be read at all is refused here.
"""

from __future__ import annotations

import io
from collections.abc import Collection

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

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


def body_format(content_type: str) -> str:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        accepted = ", ".join(CONTENT_TYPES)
        raise UnsupportedContentType(f"Content-Type {media_type or '(none)'!r} is not accepted; send one of {accepted}")
    return CONTENT_TYPES[media_type]


def parse_body(body: bytes, content_type: str, *, text_columns: Collection[str] = ()) -> pa.Table:
    """`text_columns` are read as text from CSV, where "1.0" would otherwise become a number."""
    kind = body_format(content_type)
    if not body:
        raise UnreadableBody("the request body is empty")
    try:
        if kind == "json":
            return _records(body)
        if kind == "ndjson":
            return pa_json.read_json(io.BytesIO(body))
        if kind == "csv":
            types = dict.fromkeys(text_columns, pa.string())
            return pa_csv.read_csv(io.BytesIO(body), convert_options=pa_csv.ConvertOptions(column_types=types))
        return pq.read_table(io.BytesIO(body))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        raise UnreadableBody(f"the {kind} body cannot be read: {error}") from error


def _records(body: bytes) -> pa.Table:
    """`[{...}, ...]` or `{"records": [{...}, ...]}`, one object per row."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UnreadableBody(f"the JSON body is not valid JSON: {error}") from error
    if isinstance(data, dict) and set(data) == {"records"}:
        data = data["records"]
    if not isinstance(data, list) or not data:
        raise UnreadableBody('the JSON body must be a non-empty array of records, or {"records": [...]}')
    bad = [index for index, record in enumerate(data) if not isinstance(record, dict)]
    if bad:
        raise UnreadableBody(f"records must be JSON objects; rows {_rows(bad)} are not")
    names = list(dict.fromkeys(name for record in data for name in record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in data]
        columns[name] = _column(values)
    return pa.table(columns)


def _column(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed kinds: keep every value as text; conform() names the rows that do not fit.
        return pa.array([v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values])


def _rows(indices: list[int], limit: int = 20) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f" and {len(indices) - limit} more" if len(indices) > limit else "")
