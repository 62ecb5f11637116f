"""Read models kept in step with the log: handlers run in the append's transaction.

Every projection can be dropped and rebuilt by replaying the canonical bytes in seq order.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson
from django.db import models, transaction

from audit.store import RecordedEvent

Handler = Callable[[RecordedEvent], None]


@dataclass(frozen=True)
class Projection:
    name: str
    handlers: Mapping[str, Handler]
    models: Sequence[type[models.Model]]  # the read-model tables it owns, wiped on rebuild


_projections: dict[str, Projection] = {}


def register(projection: Projection) -> Projection:
    if projection.name in _projections:
        raise RuntimeError(f"projection {projection.name!r} is already registered")
    _projections[projection.name] = projection
    return projection


def registered() -> list[Projection]:
    return list(_projections.values())


def handles(events: Iterable[RecordedEvent]) -> bool:
    """Whether any registered projection handles any of `events`."""
    return any(event.type in projection.handlers for event in events for projection in _projections.values())


def apply(events: Iterable[RecordedEvent], only: Sequence[Projection] | None = None) -> None:
    selected = _projections.values() if only is None else only
    for event in events:
        for projection in selected:
            handler = projection.handlers.get(event.type)
            if handler is not None:
                handler(event)


def rebuild(names: Sequence[str] | None = None, *, batch: int = 2000) -> dict[str, int]:
    """Wipe the selected projections' tables and replay the log into them; one transaction."""
    from audit.models import Event

    unknown = set(names or ()) - set(_projections)
    if unknown:
        raise LookupError(f"no projection named {', '.join(sorted(unknown))}")
    selected = [p for p in _projections.values() if names is None or p.name in names]
    types = sorted({t for p in selected for t in p.handlers})
    counts = dict.fromkeys((p.name for p in selected), 0)
    with transaction.atomic():
        for projection in selected:
            for model in reversed(projection.models):
                model.objects.all().delete()
        rows = (
            Event.objects.filter(event_type__in=types)
            .order_by("seq")
            .values_list("canonical", "hash", "signature")
            .iterator(chunk_size=batch)
        )
        for canonical, digest, signature in rows:
            event = RecordedEvent(
                orjson.loads(bytes(canonical)),
                bytes(canonical),
                bytes(digest).hex(),
                base64.b64encode(bytes(signature)).decode("ascii"),
            )
            for projection in selected:
                if event.type in projection.handlers:
                    counts[projection.name] += 1
            apply([event], selected)
    return counts
