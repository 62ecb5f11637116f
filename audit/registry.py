"""Registry of event types: dotted name, schema version, payload shape.

A released (name, schema) never changes meaning; a new meaning is a new schema version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

FieldTypes = type | tuple[type, ...]


class UnknownEventType(LookupError):
    pass


class DuplicateEventType(RuntimeError):
    pass


@dataclass(frozen=True)
class EventType:
    name: str
    schema: int
    required: Mapping[str, FieldTypes]
    optional: Mapping[str, FieldTypes] = field(default_factory=dict)
    description: str = ""

    def payload_problems(self, payload: Mapping[str, Any]) -> list[str]:
        """What is wrong with `payload` for this type; empty when it fits the shape."""
        problems = [f"missing field {name!r}" for name in self.required if name not in payload]
        for name, value in payload.items():
            expected = self.required.get(name) or self.optional.get(name)
            if expected is None:
                problems.append(f"unknown field {name!r}")
            elif not _fits(value, expected):
                problems.append(f"field {name!r} must be {_describe(expected)}, not {type(value).__name__}")
        return problems


_types: dict[tuple[str, int], EventType] = {}
_latest: dict[str, EventType] = {}


def register(
    name: str,
    *,
    schema: int,
    required: Mapping[str, FieldTypes],
    optional: Mapping[str, FieldTypes] | None = None,
    description: str = "",
) -> EventType:
    if "." not in name:
        raise ValueError(f"event type {name!r} must be dotted, e.g. 'monitoring.AlertRaised'")
    if (name, schema) in _types:
        raise DuplicateEventType(f"{name} schema {schema} is already registered")
    event_type = EventType(
        name, schema, MappingProxyType(dict(required)), MappingProxyType(dict(optional or {})), description
    )
    _types[(name, schema)] = event_type
    if name not in _latest or _latest[name].schema < schema:
        _latest[name] = event_type
    return event_type


def lookup(name: str, schema: int | None = None) -> EventType:
    found = _latest.get(name) if schema is None else _types.get((name, schema))
    if found is None:
        version = "" if schema is None else f" schema {schema}"
        raise UnknownEventType(f"event type {name!r}{version} is not registered")
    return found


def all_types() -> list[EventType]:
    return sorted(_types.values(), key=lambda t: (t.name, t.schema))


def _fits(value: Any, expected: FieldTypes) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, kinds)


def _describe(expected: FieldTypes) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join("null" if kind is type(None) else kind.__name__ for kind in kinds)
