"""Checking a batch against the model's schema and giving it one exact shape.

Every problem is collected before answering, each with its column, the reason, how many rows
and which (the first 20, counted from 0). Problems are schema errors only: a missing column,
a value of the wrong type, a number that is not finite or not exact, a text with a NUL or over
the length limit, too many distinct categories, a missing id or timestamp, a timestamp outside
the plausible range, an unknown model version, a binary label other than 0 or 1, a negative
ranking relevance. Nulls in
features, extreme values and new categories are production data: they are kept for the
monitoring checks to find.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitoring.ingestion.domain import BatchKind
from monitoring.ingestion.limits import EXACT_INTEGER, Limits
from monitoring.registry.data_schema import MODEL_VERSION, DataSchema

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
    categorical: bool = False  # a category or segment: its distinct values in a batch are limited


def columns_for(kind: str, schema: DataSchema, task: str) -> list[Column]:
    """What a batch of `kind` holds for this model, in the order it is stored."""
    prediction_type = "text" if task == "multiclass_classification" else "number"
    target_type = "text" if task == "multiclass_classification" else "number"
    features = [
        Column(name, "number", True) if kind_ == "numerical" else Column(name, "text", True, categorical=True)
        for name, kind_ in schema.features.items()
    ]
    segments = [
        Column(name, "text", False, categorical=True) for name in schema.segments if name not in schema.features
    ]
    optional_score = [Column(schema.score, "number", False)] if schema.score else []
    ranked = kind == BatchKind.PREDICTIONS  # a prediction without its list cannot be ranked
    lists = [Column(name, "text", ranked, nullable=not ranked) for name in (schema.query, schema.item) if name]
    if kind == BatchKind.PREDICTIONS:
        return [
            Column(schema.id, "text", True, nullable=False),
            Column(schema.timestamp, "time", True, nullable=False),
            *features,
            Column(schema.prediction, prediction_type, True),
            *optional_score,
            *lists,
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
            *lists,
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
    if kind == BatchKind.KPIS:  # a KPI per segment: any segment or categorical column may split it
        return [
            Column("timestamp", "time", True, nullable=False),
            Column("kpi", "text", True, nullable=False),
            Column("value", "number", True, nullable=False),
            Column("count", "count", False),
            *(Column(name, "text", False, categorical=True) for name in schema.kpi_segments),
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
    limits: Limits,
) -> pa.Table:
    """The batch with exactly the model's columns and types, or BatchRejected naming every
    problem (column, reason with the limit it breaks, rows)."""
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
    arrays, names, converted = [], [], []
    for column in expected:
        if column.name not in table.column_names:
            continue
        raw = table.column(column.name).combine_chunks()
        try:
            array, found = _CONVERTERS[column.type](raw, limits)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError) as error:  # what no rule foresaw
            array, found = raw, [(f"cannot be read as a {column.type} ({error})", _non_null_rows(raw))]
        problems += [Problem(column.name, reason, rows[:SHOWN_ROWS], len(rows)) for reason, rows in found]
        if not found:
            problems += _checked(column, array, limits, now)
            converted.append(column.name)
        arrays.append(array)
        names.append(column.name)
    result = pa.table(arrays, names=names) if arrays else table
    # Across columns, on the converted ones only: a column left as it came may not even compare.
    problems += _semantic_problems(result.select(converted), kind, schema, task, versions)
    if problems:
        raise BatchRejected(problems)
    return result


def _checked(column: Column, array: pa.Array, limits: Limits, now: dt.datetime) -> list[Problem]:
    """The rules a converted column still has to meet: required values, the time range, the
    number of distinct categories."""
    problems = []
    if not column.nullable:
        problems += _where(column.name, array.is_null(), "value is required (null or absent)")
    if column.type == "time":
        early, late = pa.scalar(limits.earliest, type=TIMESTAMP), pa.scalar(limits.latest(now), type=TIMESTAMP)
        problems += _where(column.name, pc.greater(array, late), f"timestamp is in the future (after {late})")
        problems += _where(
            column.name, pc.less(array, early), f"timestamp is before {early}, the earliest plausible time"
        )
    if column.categorical:
        distinct = pc.count_distinct(array).as_py()
        if distinct > limits.max_categories:
            reason = (
                f"{distinct:,} distinct values, over the limit of {limits.max_categories:,} (INGEST_MAX_CATEGORIES)"
            )
            problems.append(Problem(column.name, reason, [], distinct))
    return problems


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
    if task == "ranking" and schema.target and schema.target in table.column_names:  # a relevance grade
        negative = pc.fill_null(pc.less(table.column(schema.target), 0), False)
        problems += _where(schema.target, negative, "a ranking target (relevance) must be 0 or more")
    if kind == BatchKind.KPIS and "count" in table.column_names:
        negative = pc.fill_null(pc.less(table.column("count"), 0), False)
        problems += _where("count", negative, "count must be 0 or more")
    return problems


def _where(column: str, mask: pa.Array | pa.ChunkedArray, reason: str) -> list[Problem]:
    flags = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(flags)
    return [Problem(column, reason, rows[:SHOWN_ROWS].tolist(), int(rows.size))] if rows.size else []


def _rows_of(mask: pa.Array) -> list[int]:
    return np.flatnonzero(np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)).tolist()


Found = list[tuple[str, list[int]]]  # (reason, rows), one per kind of problem
Converted = tuple[pa.Array, Found]
# A number as JSON writes it (optionally with a plus sign): what a numeric column accepts as text.
NUMBER_TEXT = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
INTEGER_TEXT = r"^\s*[+-]?\d+\s*$"


def _number(array: pa.Array, limits: Limits) -> Converted:
    """Finite float64, null where missing. NaN and ±Infinity are refused whatever their form
    (a float, or the text "NaN" or "inf"); integers beyond ±2^53, which float64 cannot hold
    exactly, are refused rather than rounded."""
    kind = array.type
    if pa.types.is_null(kind):
        return pc.cast(array, pa.float64()), []
    if pa.types.is_integer(kind):
        found = _found(_beyond_exact(array), "integer beyond ±2^53 cannot be kept exactly (as float64)")
        return (array if found else pc.cast(array, pa.float64())), found
    if pa.types.is_decimal(kind) and kind.scale == 0:  # integers, as Parquet writes a NUMERIC(38, 0)
        found = _found(
            pc.greater(pc.abs(array), pa.scalar(Decimal(EXACT_INTEGER), pa.decimal256(76, 0))),
            "integer beyond ±2^53 cannot be kept exactly (as float64)",
        )
        if found:
            return array, found
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(array, pa.float64())
        return values, _found(pc.invert(pc.is_finite(values)), "must be a finite number (NaN and infinity are refused)")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.cast(array, pa.string())
        not_number = pc.invert(pc.match_substring_regex(text, NUMBER_TEXT))
        found = _found(not_number, "must be a number (NaN and infinity are refused)")
        if found:
            return array, found
        whole = pc.match_substring_regex(text, INTEGER_TEXT)
        values = pc.cast(pc.utf8_trim_whitespace(text), pa.float64())
        wide = pc.and_(whole, pc.greater(pc.abs(values), float(EXACT_INTEGER)))
        found = _found(wide, "integer beyond ±2^53 cannot be kept exactly (as float64)")
        found += _found(pc.invert(pc.is_finite(values)), "must be a finite number (it overflows float64)")
        return (array if found else values), found
    return array, [(f"must be a number, not {kind}", _non_null_rows(array))]


def _text(array: pa.Array, limits: Limits) -> Converted:
    """Text without NUL, at most max_text_length characters; integer codes become text."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = pc.cast(array, pa.string())
        kind = array.type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
        or pa.types.is_integer(kind)
    ):
        return array, [(f"must be text (or an integer code), not {kind}", _non_null_rows(array))]
    text = pc.cast(array, pa.string())
    found = _found(pc.match_substring(text, "\x00"), "text may not hold a NUL character")
    too_long = pc.greater(pc.utf8_length(text), limits.max_text_length)
    found += _found(too_long, f"text longer than {limits.max_text_length:,} characters (INGEST_MAX_TEXT_LENGTH)")
    return (array if found else text), found


def _time(array: pa.Array, limits: Limits) -> Converted:
    """Times in UTC. Numbers are seconds since the epoch and must lie in the plausible range
    before they are converted (an absurd one would overflow the conversion)."""
    kind = array.type
    if pa.types.is_null(kind):
        return pc.cast(array, TIMESTAMP), []
    if pa.types.is_timestamp(kind):
        if kind.tz is None:  # Parquet and CSV without offsets: taken as UTC, as documented
            return pc.assume_timezone(pc.cast(array, pa.timestamp("us")), "UTC"), []
        return pc.cast(array, TIMESTAMP), []
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        seconds = pc.cast(array, pa.float64(), safe=False)  # beyond 2^53 it is out of range anyway
        low, high = limits.earliest.timestamp(), limits.latest(dt.datetime.now(dt.UTC)).timestamp() + 86_400
        outside = pc.or_(pc.invert(pc.is_finite(seconds)), pc.or_(pc.less(seconds, low), pc.greater(seconds, high)))
        found = _found(outside, f"seconds since the epoch outside the plausible range (from {limits.earliest})")
        if found:
            return array, found
        micros = pc.cast(pc.round(pc.multiply(seconds, 1e6)), pa.int64())
        return pc.cast(micros, TIMESTAMP), []
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            return pc.cast(array, TIMESTAMP), []
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return array, [
                ("must be an ISO 8601 time with a zone offset, e.g. 2026-11-25T10:00:00Z", _bad_times(array))
            ]
    return array, [(f"must be a time, not {kind}", _non_null_rows(array))]


def _count(array: pa.Array, limits: Limits) -> Converted:
    kind = array.type
    if pa.types.is_null(kind):
        return pc.cast(array, pa.int64()), []
    if pa.types.is_integer(kind):
        found = _found(_beyond_exact(array), "a count beyond 2^53 is not plausible")
        return (array if found else pc.cast(array, pa.int64())), found
    if pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        wrong = (values != np.round(values)) | ~np.isfinite(values) | (np.abs(values) > EXACT_INTEGER)
        bad = np.flatnonzero(~np.isnan(values) & wrong).tolist()
        if bad:
            return array, [("must be a whole number", bad)]
        return pc.cast(array, pa.int64(), safe=False), []
    return array, [(f"must be a whole number, not {kind}", _non_null_rows(array))]


def _beyond_exact(array: pa.Array) -> pa.Array:
    """Which integers lie beyond ±2^53, compared in the array's own type (a uint64 column holds
    values no int64 can)."""
    if array.type.bit_width <= 53:  # nothing can lie beyond
        return pa.array(np.zeros(len(array), dtype=bool))
    bound = pa.scalar(EXACT_INTEGER, array.type)
    above = pc.greater(array, bound)
    if pa.types.is_unsigned_integer(array.type):
        return above
    return pc.or_(above, pc.less(array, pa.scalar(-EXACT_INTEGER, array.type)))


_CONVERTERS: dict[str, Callable[[pa.Array, Limits], Converted]] = {
    "number": _number,
    "text": _text,
    "time": _time,
    "count": _count,
}


def _found(mask: pa.Array, reason: str) -> Found:
    rows = _rows_of(mask)
    return [(reason, rows)] if rows else []


def _non_null_rows(array: pa.Array) -> list[int]:
    return np.flatnonzero(np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)).tolist()


ISO_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"
CHUNK = 1024


def _bad_times(array: pa.Array) -> list[int]:
    """Rows that are not a time with a zone, by chunks: a chunk that casts has none; in one that
    does not, the rows of the wrong shape (one vectorized match), or, when every row has the
    right shape (a 13th month), each row checked. Never a Python loop over a million rows."""
    text = pc.cast(array, pa.string())
    bad: list[int] = []
    for offset in range(0, len(text), CHUNK):
        chunk = text.slice(offset, CHUNK)
        try:
            pc.cast(chunk, TIMESTAMP)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        shaped = pc.fill_null(pc.match_substring_regex(chunk, ISO_TIME), True)
        misshapen = _rows_of(pc.invert(shaped))
        if not misshapen:
            misshapen = [i for i, value in enumerate(chunk.to_pylist()) if value is not None and not _is_time(value)]
        bad += [offset + i for i in misshapen]
    return bad


def _is_time(value: str) -> bool:
    try:
        pc.cast(pa.array([value]), TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True
