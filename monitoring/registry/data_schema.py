"""A model's data schema: its features and which columns carry the id, time, prediction, score,
target and segments. Pure: parsed from the dict stored in ModelRegistered's `data_schema`.

Stored form (the keys of ModelRegistered schema 1's `data_schema`; id and timestamp default to
the column names "id" and "timestamp"):

    {"numerical": ["income", ...], "categorical": ["region", ...], "id": "id",
     "timestamp": "timestamp", "prediction": "default_score", "score": "probability",
     "target": "defaulted", "segments": ["region"]}

A ranking model also names `query` (the column grouping rows into one ranked list: a user or a
request) and may name `item` (the recommended item, for catalogue coverage and popularity).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from audit.events import Closed


class Task(Closed):
    """What a model predicts, which decides its performance metric."""

    BINARY_CLASSIFICATION = "binary_classification"
    MULTICLASS_CLASSIFICATION = "multiclass_classification"
    REGRESSION = "regression"
    RANKING = "ranking"


NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$")
ROLE_KEYS = ("id", "timestamp", "prediction", "score", "target", "query", "item")
KNOWN_KEYS = frozenset({"numerical", "categorical", "segments", "earliest", *ROLE_KEYS})
MODEL_VERSION = "model_version"  # a column every batch may carry besides the schema's: ingestion's own
KPI_COLUMNS = ("timestamp", "kpi", "value", "count")  # the columns of every KPI batch, whatever the schema


class SchemaError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class DataSchema:
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]
    prediction: str
    id: str = "id"
    timestamp: str = "timestamp"
    score: str | None = None
    target: str | None = None
    segments: tuple[str, ...] = ()
    earliest: dt.datetime | None = None  # no time of the model's data is plausible before this
    query: str | None = None  # ranking: the column that groups rows into one ranked list (user, request)
    item: str | None = None  # ranking: the recommended item's id

    def score_column(self, present: Collection[str]) -> str:
        """Where the model's score is among the `present` columns: the score column when the
        schema names one and the data has it, else the prediction."""
        return self.score if self.score and self.score in present else self.prediction

    @property
    def features(self) -> dict[str, str]:
        return {**dict.fromkeys(self.numerical, "numerical"), **dict.fromkeys(self.categorical, "categorical")}

    @property
    def kpi_segments(self) -> tuple[str, ...]:
        """The columns that may split a KPI: the segments and the categorical features, but for
        those named as a KPI batch's own columns (a categorical `value` cannot also be the KPI's)."""
        return tuple(name for name in dict.fromkeys((*self.segments, *self.categorical)) if name not in KPI_COLUMNS)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the schema names, once."""
        roles = (self.id, self.timestamp, self.prediction, self.score, self.target, self.query, self.item)
        named = (*self.numerical, *self.categorical, *self.segments, *(r for r in roles if r))
        return tuple(dict.fromkeys(named))

    def as_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "numerical": list(self.numerical),
            "categorical": list(self.categorical),
            "id": self.id,
            "timestamp": self.timestamp,
            "prediction": self.prediction,
            "segments": list(self.segments),
        }
        if self.score is not None:
            stored["score"] = self.score
        for role in ("target", "query", "item"):
            if getattr(self, role) is not None:
                stored[role] = getattr(self, role)
        if self.earliest is not None:
            stored["earliest"] = self.earliest.isoformat().replace("+00:00", "Z")
        return stored


def parse_schema(raw: Any) -> DataSchema:
    """The schema in `raw`, or SchemaError listing every problem at once."""
    if not isinstance(raw, Mapping):
        raise SchemaError(["data_schema must be an object"])
    problems = [f"unknown key {key!r}" for key in raw if key not in KNOWN_KEYS]
    lists = {key: _names(raw.get(key, []), key, problems) for key in ("numerical", "categorical", "segments")}
    roles = {key: raw.get(key, key if key in ("id", "timestamp") else None) for key in ROLE_KEYS}
    for key, value in roles.items():
        if value is not None and not (isinstance(value, str) and NAME.match(value)):
            problems.append(f"{key} must be a column name, not {value!r}")
    if roles["prediction"] is None:
        problems.append("prediction: the column holding the model's output is required")
    if not lists["numerical"] and not lists["categorical"]:
        problems.append("at least one numerical or categorical feature is required")
    seen: dict[str, str] = {}
    for key in ("numerical", "categorical"):
        for name in lists[key]:
            if name in seen:
                problems.append(f"column {name!r} is listed as both {seen[name]} and {key}")
            seen[name] = key
    for key, value in roles.items():
        if isinstance(value, str) and value in seen:
            problems.append(f"column {value!r} is both a feature and the {key}")
    role_columns = [v for v in roles.values() if isinstance(v, str)]
    duplicates = sorted({v for v in role_columns if role_columns.count(v) > 1})
    problems += [f"column {name!r} plays more than one role" for name in duplicates]
    earliest = _earliest(raw.get("earliest"), problems)
    if problems:
        raise SchemaError(problems)
    return DataSchema(
        earliest=earliest,
        numerical=tuple(lists["numerical"]),
        categorical=tuple(lists["categorical"]),
        segments=tuple(lists["segments"]),
        **{key: value for key, value in roles.items() if value is not None},
    )


def column_clashes(schema: DataSchema) -> list[str]:
    """What a new schema may not say, though it parses: a column that batches would hold twice
    under two types, which no batch could then be stored with. A segment is an attribute of its
    own (or a categorical feature), never a role column, and `model_version` is ingestion's."""
    roles = {getattr(schema, key): key for key in ROLE_KEYS if getattr(schema, key)}
    problems = [f"segment {name!r} is also the {roles[name]}" for name in schema.segments if name in roles]
    if MODEL_VERSION in schema.columns:
        problems.append(f"{MODEL_VERSION!r} is the column every batch names its model version in: not a schema column")
    return problems


def _earliest(value: Any, problems: list[str]) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        problems.append(f"earliest must be an ISO 8601 date or time, not {value!r}")
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    try:  # times are compared in UTC: year 1 at +05:00 lies before the calendar there
        moment.astimezone(dt.UTC)
    except OverflowError:
        problems.append(f"earliest {value!r} lies outside the calendar once read in UTC")
        return None
    return moment


def _names(value: Any, key: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{key} must be a list of column names")
        return []
    bad = [v for v in value if not NAME.match(v)]
    problems += [f"{key}: {v!r} is not a valid column name" for v in bad]
    repeated = sorted({v for v in value if value.count(v) > 1})
    problems += [f"{key}: {v!r} is listed twice" for v in repeated]
    return [v for v in value if v not in bad]
