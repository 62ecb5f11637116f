"""Read models kept in step with the log, and reactions to new events.

A projection's handlers run in the append's transaction, keyed by event class; every projection
can be dropped and rebuilt by replaying the canonical bytes in seq order. An event of an older
schema reaches the handler of its own class if there is one, else the handler of the class it
upcasts to.

A subscriber also runs in the append's transaction, after the projections, but only for new
events, never on a rebuild: it is how an outbox row or a task after commit follows an event.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import transaction
from django.db.models import Model

from audit.events import Event
from audit.store import RecordedEvent

Handler = Callable[[Any, RecordedEvent], None]  # (the typed event, the recorded envelope)


@dataclass(frozen=True)
class Projection:
    name: str
    handlers: Mapping[type[Event], Handler]
    models: Sequence[type[Model]]  # the read-model tables it owns, wiped on rebuild
    # Tables it updates without owning them (rows the log does not make, such as accounts with
    # their password hashes), with the columns it sets: the read-model check compares those.
    touches: Sequence[tuple[type[Model], Sequence[str]]] = ()

    def handler_for(self, recorded: RecordedEvent) -> tuple[Handler, Event] | None:
        event = recorded.event
        handler = self.handlers.get(type(event))
        if handler is None:
            event = event.upcast()
            handler = self.handlers.get(type(event))
        return (handler, event) if handler is not None else None

    def type_names(self) -> set[str]:
        return {cls.type_name for cls in self.handlers}


_projections: dict[str, Projection] = {}
_subscribers: dict[type[Event], list[Handler]] = {}
_handled: set[str] = set()  # type names some projection or subscriber handles


def register(projection: Projection) -> Projection:
    if projection.name in _projections:
        raise RuntimeError(f"projection {projection.name!r} is already registered")
    _projections[projection.name] = projection
    _handled.update(projection.type_names())
    return projection


def subscribe(event_class: type[Event], handler: Handler) -> None:
    """Run `handler` in the transaction of every new event of `event_class` (not on rebuild)."""
    _subscribers.setdefault(event_class, []).append(handler)
    _handled.add(event_class.type_name)


def registered() -> list[Projection]:
    return list(_projections.values())


def handles(events: Iterable[RecordedEvent]) -> bool:
    """Whether any projection or subscriber has something to do for any of `events`."""
    return any(event.type in _handled for event in events)


def apply(events: Iterable[RecordedEvent], only: Sequence[Projection] | None = None) -> None:
    """Projections (all, or `only`) for each event; subscribers too when all projections run."""
    selected = _projections.values() if only is None else only
    for recorded in events:
        if recorded.type not in _handled:  # parsing the payload is most of a projection's cost
            continue
        for projection in selected:
            found = projection.handler_for(recorded)
            if found is not None:
                handler, event = found
                handler(event, recorded)
        if only is None:
            for handler in _subscribers.get(type(recorded.event.upcast()), ()):
                handler(recorded.event.upcast(), recorded)


def rebuild(names: Sequence[str] | None = None, *, batch: int = 2000) -> dict[str, int]:
    """Wipe the selected projections' tables and replay the log into them; one transaction."""
    from audit.models import Event as EventRow

    unknown = set(names or ()) - set(_projections)
    if unknown:
        raise LookupError(f"no projection named {', '.join(sorted(unknown))}")
    selected = [p for p in _projections.values() if names is None or p.name in names]
    counts = dict.fromkeys((p.name for p in selected), 0)
    handled = {p.name: p.type_names() for p in selected}
    types = sorted(set().union(*handled.values()))
    with transaction.atomic():
        for projection in selected:
            for model in reversed(projection.models):
                model.objects.all().delete()
        rows = (
            EventRow.objects.filter(event_type__in=types)
            .order_by("seq")
            .values_list("canonical", "hash", "signature")
            .iterator(chunk_size=batch)
        )
        for canonical, digest, signature in rows:
            recorded = RecordedEvent(
                orjson.loads(bytes(canonical)),
                bytes(canonical),
                bytes(digest).hex(),
                base64.b64encode(bytes(signature)).decode("ascii"),
            )
            for projection in selected:
                if recorded.type in handled[projection.name]:
                    counts[projection.name] += 1
            apply([recorded], selected)
    return counts
