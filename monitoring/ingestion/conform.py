"""Checking a batch against the model's schema and giving it one exact shape.

Every problem is collected before answering, each with its column, the reason, how many rows
and which (the first 20, counted from 0). Problems are schema errors only: a missing column,
a value of the wrong type, a missing id or timestamp, a timestamp in the future, an unknown
model version, a binary label other than 0 or 1. Nulls in features, out-of-range values and
new categories are production data: they are kept for the monitoring checks to find.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitoring.ingestion.domain import BatchKind
from monitoring.registry.data_schema import DataSchema

MODEL_VERSION = "model_version"
TIMESTAMP = pa.timestamp("us", tz="UTC")
SHOWN_ROWS = 20


@dataclass(frozen=True)
class Problem:
    column: str
    reason: str
    rows: list[int] = field(default_factory=list)
    count: int = 0

    def as_dict(self) -> dict:
        return {"column": self.column, "reason": self.reason, "rows": self.rows, "count": self.count}


class BatchRejected(ValueError):
    def __init__(self, problems: list[Problem]):
        super().__init__(f"the batch was rejected: {len(problems)} problem(s)")
        self.problems = problems


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "number", "text", "time" or "count"
    required: bool
    nullable: bool = True


def columns_for(kind: str, schema: DataSchema, task: str) -> list[Column]:
    """What a batch of `kind` holds for this model, in the order it is stored."""
    prediction_type = "text" if task == "multiclass_classification" else "number"
    target_type = "text" if task == "multiclass_classification" else "number"
    features = [
        Column(name, "number" if kind_ == "numerical" else "text", True) for name, kind_ in schema.features.items()
    ]
    segments = [Column(name, "text", False) for name in schema.segments if name not in schema.features]
    optional_score = [Column(schema.score, "number", False)] if schema.score else []
    if kind == BatchKind.PREDICTIONS:
        return [
            Column(schema.id, "text", True, nullable=False),
            Column(schema.timestamp, "time", True, nullable=False),
            *features,
            Column(schema.prediction, prediction_type, True),
            *optional_score,
            *segments,
            Column(MODEL_VERSION, "text", False),
        ]
    if kind == BatchKind.REFERENCE:
        target = [Column(schema.target, target_type, False)] if schema.target else []
        return [
            Column(schema.id, "text", False),
            Column(schema.timestamp, "time", False),
            *features,
            Column(schema.prediction, prediction_type, True),
            *optional_score,
            *target,
            *segments,
            Column(MODEL_VERSION, "text", False),
        ]
    if kind == BatchKind.LABELS:
        if not schema.target:
            raise BatchRejected([Problem("target", "the model's data schema names no target column")])
        return [
            Column(schema.id, "text", True, nullable=False),
            Column(schema.target, target_type, True, nullable=False),
            Column(schema.timestamp, "time", False),
        ]
    if kind == BatchKind.KPIS:
        return [
            Column("timestamp", "time", True, nullable=False),
            Column("kpi", "text", True, nullable=False),
            Column("value", "number", True, nullable=False),
            Column("count", "count", False),
            *segments,
        ]
    raise ValueError(f"kind must be one of {', '.join(BatchKind)}, not {kind!r}")


def text_columns(kind: str, schema: DataSchema, task: str) -> list[str]:
    return [column.name for column in columns_for(kind, schema, task) if column.type == "text"]


def conform(
    table: pa.Table,
    *,
    kind: str,
    schema: DataSchema,
    task: str,
    versions: Collection[str],
    now: dt.datetime,
    clock_skew: dt.timedelta = dt.timedelta(minutes=5),
) -> pa.Table:
    """The batch with exactly the model's columns and types, or BatchRejected."""
    expected = columns_for(kind, schema, task)
    known = {c.name for c in expected}
    problems = [
        Problem(name, "unknown column: not in the model's data schema")
        for name in table.column_names
        if name not in known
    ]
    problems += [Problem(c.name, "missing column") for c in expected if c.required and c.name not in table.column_names]
    if table.num_rows == 0:
        problems.append(Problem("*", "the batch has no rows"))
    arrays, names = [], []
    for column in expected:
        if column.name not in table.column_names:
            continue
        array, found = _CONVERTERS[column.type](table.column(column.name).combine_chunks())
        if found:
            problems.append(_problem(column.name, found))
        if not column.nullable and not found:
            problems += _where(column.name, array.is_null(), "value is required (null or absent)")
        if column.type == "time" and not found:
            limit = pa.scalar(now + clock_skew, type=TIMESTAMP)
            problems += _where(column.name, pc.greater(array, limit), f"timestamp is in the future (after {limit})")
        arrays.append(array)
        names.append(column.name)
    result = pa.table(arrays, names=names) if arrays else table
    problems += _semantic_problems(result, kind, schema, task, versions)
    if problems:
        raise BatchRejected(problems)
    return result


def _semantic_problems(
    table: pa.Table, kind: str, schema: DataSchema, task: str, versions: Collection[str]
) -> list[Problem]:
    problems = []
    if MODEL_VERSION in table.column_names:
        column = table.column(MODEL_VERSION)
        unknown = pc.invert(pc.or_kleene(pc.is_in(column, pa.array(sorted(versions), pa.string())), column.is_null()))
        problems += _where(
            MODEL_VERSION, unknown, f"unknown model version (registered: {', '.join(sorted(versions)) or 'none'})"
        )
    if task == "binary_classification" and schema.target and schema.target in table.column_names:
        column = table.column(schema.target)
        binary = pc.or_kleene(pc.is_in(column, pa.array([0.0, 1.0])), column.is_null())
        problems += _where(schema.target, pc.invert(binary), "a binary target must be 0 or 1")
    if kind == BatchKind.KPIS and "count" in table.column_names:
        negative = pc.fill_null(pc.less(table.column("count"), 0), False)
        problems += _where("count", negative, "count must be 0 or more")
    return problems


def _where(column: str, mask: pa.Array | pa.ChunkedArray, reason: str) -> list[Problem]:
    flags = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(flags)
    return [Problem(column, reason, rows[:SHOWN_ROWS].tolist(), int(rows.size))] if rows.size else []


def _problem(column: str, found: tuple[str, list[int]]) -> Problem:
    reason, rows = found
    return Problem(column, reason, rows[:SHOWN_ROWS], len(rows))


Converted = tuple[pa.Array, tuple[str, list[int]] | None]


def _number(array: pa.Array) -> Converted:
    kind = array.type
    if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_null(kind):
        return pc.cast(array, pa.float64()), None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return pc.cast(array, pa.float64()), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = [i for i, v in enumerate(array.to_pylist()) if v is not None and not _is_number(v)]
            return array, ("must be a number", bad)
    return array, (f"must be a number, not {kind}", _non_null_rows(array))


def _text(array: pa.Array) -> Converted:
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_null(kind):
        return pc.cast(array, pa.string()), None
    if pa.types.is_large_string(kind) or pa.types.is_dictionary(kind) or pa.types.is_integer(kind):
        return pc.cast(array, pa.string()), None
    return array, (f"must be text (or an integer code), not {kind}", _non_null_rows(array))


def _time(array: pa.Array) -> Converted:
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:  # Parquet and CSV without offsets: taken as UTC, as documented
            return pc.assume_timezone(pc.cast(array, pa.timestamp("us")), "UTC"), None
        return pc.cast(array, TIMESTAMP), None
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):  # seconds since the epoch
        micros = pc.cast(pc.round(pc.multiply(pc.cast(array, pa.float64()), 1e6)), pa.int64())
        return pc.cast(micros, TIMESTAMP), None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return pc.cast(array, TIMESTAMP), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = [i for i, v in enumerate(array.to_pylist()) if v is not None and not _is_time(v)]
            return array, ("must be an ISO 8601 time with a zone offset, e.g. 2026-11-25T10:00:00Z", bad)
    return array, (f"must be a time, not {kind}", _non_null_rows(array))


def _count(array: pa.Array) -> Converted:
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_null(kind):
        return pc.cast(array, pa.int64()), None
    if pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~np.isnan(values) & (values != np.round(values))).tolist()
        if bad:
            return array, ("must be a whole number", bad)
        return pc.cast(array, pa.int64(), safe=False), None
    return array, (f"must be a whole number, not {kind}", _non_null_rows(array))


_CONVERTERS: dict[str, Callable[[pa.Array], Converted]] = {
    "number": _number,
    "text": _text,
    "time": _time,
    "count": _count,
}


def _non_null_rows(array: pa.Array) -> list[int]:
    return np.flatnonzero(np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)).tolist()


def _is_number(value: str) -> bool:
    try:
        return not math.isnan(float(value)) or value.strip().lower() == "nan"
    except ValueError:
        return False


def _is_time(value: str) -> bool:
    try:
        pc.cast(pa.array([value]), TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
