"""Typed events: every event type is a class, registered under its dotted name and schema version.

An event class declares its whole payload, nested parts included; constructing one validates
it, and `append` refuses anything that does not validate against its class. A released
(name, schema) never changes meaning: a new shape is a new class with the next schema version,
and the old class stays registered so that old events still validate against their own schema
(`upcast` turns an old event into the latest schema's, for the code that folds events).

Payload rules (what `to_payload` writes, canonicalised into the signed envelope), for events
and their nested parts (`Shape`) alike:
- a field declared with a default of None is left out while it is None;
- a field declared without a default is always present, `null` where its type allows it.

Each class renders itself as one sentence for people (`describe`): the evidence report and
the web pages show those, so that a reader never has to decode a payload.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar, cast

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Strict

from audit.envelope import KEY_ROTATED, parse_time

E = TypeVar("E")

# A member of a closed set (an enum), given as the enum or as its text: payloads are JSON.
Choice = Annotated[E, Strict(False)]


class Closed(enum.StrEnum):
    """A closed set of names (states, kinds, levels, roles), defined once and used by events,
    aggregates, read models and the API alike."""

    @classmethod
    def choices(cls) -> dict[str, str]:
        """{value: label} for a Django field or a DRF ChoiceField: the names themselves, as the
        API takes them (OpenAPI then names each set once)."""
        return {member.value: member.value for member in cls}


def _rfc3339(text: str) -> str:
    parse_time(text)
    return text


def _canonical_uuid(text: str) -> str:
    if str(uuid.UUID(text)) != text:
        raise ValueError("must be a lowercase UUID")
    return text


# RFC 3339 UTC with microseconds and Z, as every time in the log (docs/evidence-format.md).
Timestamp = Annotated[str, AfterValidator(_rfc3339)]
UuidText = Annotated[str, AfterValidator(_canonical_uuid)]


class UnknownEventType(LookupError):
    pass


class DuplicateEventType(RuntimeError):
    pass


class InvalidPayload(ValueError):
    """The payload does not fit its type's schema; `problems` names each field and why."""

    def __init__(self, type_name: str, problems: list[str]) -> None:
        super().__init__(f"payload of {type_name}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Context:
    """What a sentence may draw on besides its payload: the envelope's actor, reason and time,
    and the other events of a stream it refers to (as far as the reader knows them)."""

    actor: Mapping[str, str]
    reason: str | None = None
    occurred_at: str = ""
    stream: Callable[[str, str], Sequence[Event]] = field(default=lambda kind, ident: ())

    @property
    def who(self) -> str:
        return self.actor.get("name") or self.actor.get("id", "someone")

    @property
    def because(self) -> str:
        """The reason as the end of a sentence (": <reason>"), or nothing."""
        return f": {self.reason}" if self.reason else ""

    def first(self, stream_type: str, stream_id: str) -> Event | None:
        events = self.stream(stream_type, stream_id)
        return events[0].upcast() if events else None


class Shape(BaseModel):
    """Base of event payloads and of their nested parts: strict, closed, immutable. When dumped,
    a field that defaults to None is left out while it is None."""

    # NaN and infinities stay what they are when dumped, so that canonicalisation refuses them
    # (pydantic would otherwise turn them into null without a word).
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, ser_json_inf_nan="constants")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        # Declared on each field rather than by a Python serializer wrapped around every model:
        # pydantic's core then dumps a payload without calling back into Python.
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.__pydantic_complete__:  # model_rebuild below would fail with a vaguer error
            problem = "refers to a type not defined yet: define the parts a shape holds before it"
            raise TypeError(f"{cls.__name__} {problem}")
        options = [
            info
            for info in cls.model_fields.values()
            if not info.is_required() and info.default is None and info.exclude_if is None
        ]
        for info in options:
            info.exclude_if = _is_none
        if options:
            cls.model_rebuild(force=True)


def _is_none(value: object) -> bool:
    return value is None


class Event(Shape):
    """Base of every event type. Subclasses declare fields and are registered with @event_type."""

    type_name: ClassVar[str]
    type_schema: ClassVar[int]  # the payload schema's version (the envelope's `schema`)
    routine: ClassVar[bool] = False  # high-volume bookkeeping: large reports count it rather than list it
    tone: ClassVar[str] = ""  # how pages and reports mark it: alert, signature, key, decision or ""

    def to_payload(self) -> dict[str, Any]:
        # Unchecked here: append validates the payload against its class right after.
        return self.model_dump(mode="json", warnings=False)

    @classmethod
    def from_payload(cls: type[E], payload: Mapping[str, Any]) -> E:
        try:
            return cls.model_validate(payload)  # type: ignore[attr-defined]
        except pydantic.ValidationError as error:
            raise InvalidPayload(cls.type_name, _problems(error)) from None  # type: ignore[attr-defined]

    def upcast(self) -> Event:
        """The same fact in the latest schema of its type (older schema classes override this)."""
        return self

    def describe(self, about: Context) -> str:
        """One sentence for people, ending with the reason when there is one; types override it."""
        return f"{about.who} recorded {self.type_name}{about.because}"


_types: dict[tuple[str, int], type[Event]] = {}
_latest: dict[str, type[Event]] = {}

T = TypeVar("T", bound=type[Event])


def event_type(name: str, *, schema: int = 1) -> Callable[[T], T]:
    """Register the decorated class as event type `name`, schema version `schema`."""
    if "." not in name:
        raise ValueError(f"event type {name!r} must be dotted, e.g. 'billing.InvoiceSent'")

    def register(cls: T) -> T:
        shadowed = {"type_name", "type_schema", "routine", "tone"} & set(cast("type[Event]", cls).model_fields)
        if shadowed:
            raise TypeError(
                f"{cls.__name__}: field(s) {', '.join(sorted(shadowed))} would hide the event's own attributes"
            )
        if (name, schema) in _types:
            raise DuplicateEventType(f"{name} schema {schema} is already registered")
        cls.type_name, cls.type_schema = name, schema
        _types[(name, schema)] = cls
        if name not in _latest or _latest[name].type_schema < schema:
            _latest[name] = cls
        return cls

    return register


def lookup(name: str, schema: int | None = None) -> type[Event]:
    found = _latest.get(name) if schema is None else _types.get((name, schema))
    if found is None:
        version = "" if schema is None else f" schema {schema}"
        raise UnknownEventType(f"event type {name!r}{version} is not registered")
    return found


def all_types() -> list[type[Event]]:
    return sorted(_types.values(), key=lambda t: (t.type_name, t.type_schema))


def parse(name: str, schema: int, payload: Mapping[str, Any]) -> Event:
    """The typed event of a stored payload (validated against its own schema version)."""
    return lookup(name, schema).from_payload(payload)


def sentence(
    envelope: Mapping[str, Any],
    stream: Callable[[str, str], Sequence[Event]] | None = None,
    *,
    parsed: Event | None = None,
) -> str:
    """The sentence for a stored envelope; a type no longer registered is named plainly.
    `parsed`: its payload as `parse` gave it already (a report of many events parses each once)."""
    about = Context(
        actor=envelope["actor"],
        reason=envelope.get("reason"),
        occurred_at=envelope.get("occurred_at", ""),
        stream=stream or (lambda kind, ident: ()),
    )
    try:
        event = (parsed or parse(envelope["type"], envelope["schema"], envelope["payload"])).upcast()
    except (UnknownEventType, InvalidPayload):
        return f"{about.who} recorded {envelope['type']} (schema {envelope['schema']})"
    return event.describe(about)


def tone(type_name: str) -> str:
    found = _latest.get(type_name)
    return found.tone if found else ""


def is_routine(type_name: str) -> bool:
    found = _latest.get(type_name)
    return bool(found and found.routine)


def _problems(error: pydantic.ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        if item["type"] == "missing":
            problems.append(f"missing field {where!r}")
        elif item["type"] == "extra_forbidden":
            problems.append(f"unknown field {where!r}")
        else:
            problems.append(f"field {where!r}: {item['msg']}")
    return problems


# The store's own event types ------------------------------------------------------------------


@event_type(KEY_ROTATED)
class KeyRotated(Event):
    """A new signing key takes over after this event; signed by the previous key."""

    tone: ClassVar[str] = "key"

    new_key_id: str
    new_public_key: str
    previous_key_id: str
    new_key_signature: str

    def describe(self, about: Context) -> str:
        return (
            f"{about.who} rotated the log's signing key from {self.previous_key_id} to {self.new_key_id}{about.because}"
        )


@event_type("audit.EvidenceExported")
class EvidenceExported(Event):
    """Someone exported an evidence bundle; the bundle's hash makes the copy identifiable."""

    export_id: str
    query: dict[str, Any]
    tree_size: int
    events: int
    bundle_sha256: str

    def describe(self, about: Context) -> str:
        scope = ", ".join(f"{k}={v}" for k, v in self.query.items() if v not in (None, [], False)) or "the whole log"
        return (
            f"{about.who} exported an evidence bundle of {self.events} events ({scope}) at tree size "
            f"{self.tree_size}, SHA-256 {self.bundle_sha256[:12]}…"
        )


@event_type("audit.SegmentArchived")
class SegmentArchived(Event):
    """A partition of the log was written to object storage as a segment (docs/evidence-format.md,
    "Archived segments"), checked there as a verifier checks it, and tied to the checkpoint of
    `tree_size` events by its subtrees' paths; both files are named by their SHA-256."""

    tone: ClassVar[str] = "key"

    partition: str
    first_seq: int
    last_seq: int
    file_sha256: str
    file_bytes: int
    manifest_sha256: str
    tree_size: int

    def describe(self, about: Context) -> str:
        return (
            f"{about.who} archived events {self.first_seq:,} to {self.last_seq:,} ({self.partition}) as a segment of "
            f"{self.file_bytes:,} bytes, SHA-256 {self.file_sha256[:12]}…, tied to the checkpoint of "
            f"{self.tree_size:,} events{about.because}"
        )


@event_type("audit.ReadModelsDiverged")
class ReadModelsDiverged(Event):
    """The periodic replay found read-model rows that the log does not give, or rows it gives that
    the read models lack or hold otherwise (audit/read_model_check.py)."""

    tone: ClassVar[str] = "alert"

    # Each: {"table", "unexplained_count", "unexplained": [row keys], "missing_count", "missing": [row keys]}
    tables: list[dict[str, Any]]

    def describe(self, about: Context) -> str:
        named = "; ".join(
            f"{t['table']} ({t['unexplained_count']} row(s) the log does not give, "
            f"{t['missing_count']} missing or changed)"
            for t in self.tables
        )
        return f"{about.who} found read models that differ from the log: {named}"
