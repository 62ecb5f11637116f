"""One way to change an aggregate: load its stream, run the command, append what it decides with
the stream version it was loaded at, and on a concurrent writer's conflict run it again on the
fresh state. Written once, for every aggregate of every domain.

An aggregate is a small pure object (no Django) that folds the events of its stream
(`apply`) and whose commands check the rules and return the events they would add, never
mutating state themselves. Refusals are DomainError subclasses (audit.errors, pure), which
the API answers as 4xx.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from audit.errors import AlreadyExists, DomainError, InvalidCommand, NotFound
from audit.events import Event
from audit.store import Actor, ConcurrencyConflict, NewEvent, RecordedEvent, append

ATTEMPTS = 3
__all__ = ["AlreadyExists", "DomainError", "InvalidCommand", "NotFound", "aggregate_execute", "aggregate_load"]


class Aggregate(Protocol):
    stream_type: ClassVar[str]
    version: int  # how many events of its stream it has folded

    @property
    def stream_id(self) -> str: ...

    def apply(self, event: Event, actor_id: str) -> None:
        """Fold one event (already upcast to its latest schema) and count it in `version`."""


A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Executed(Generic[A]):
    recorded: list[RecordedEvent]
    aggregate: A  # the state after the recorded events


def aggregate_load(aggregate: A, *, until: dt.datetime | None = None) -> A:
    """Fold the aggregate's stream (up to the moment `until`, when given) into `aggregate`."""
    from audit.selectors import stream_events

    for event, actor_id in stream_events(aggregate.stream_type, aggregate.stream_id, until=until):
        aggregate.apply(event, actor_id)
    return aggregate


def aggregate_execute(
    new: Callable[[], A],
    command: Callable[[A], Sequence[Event]],
    *,
    actor: Actor,
    reason: str | None = None,
    causation: str | None = None,
    correlation: str | None = None,
) -> Executed[A]:
    """Run `command` on the current state of the aggregate `new()` starts, and record what it
    decides, atomically. A command that decides nothing records nothing."""
    # No transaction around load and append: the expected version makes the append refuse a
    # decision taken on a stale state, and an append outside a transaction may go through the
    # sequencer (audit.sequencer).
    for attempt in range(ATTEMPTS):
        aggregate = aggregate_load(new())
        decided = list(command(aggregate))
        if not decided:
            return Executed([], aggregate)
        events = [
            NewEvent(
                aggregate.stream_type,
                aggregate.stream_id,
                event,
                actor,
                reason=reason,
                causation_id=causation,
                correlation_id=correlation,
            )
            for event in decided
        ]
        try:
            recorded = append(events, expected={(aggregate.stream_type, aggregate.stream_id): aggregate.version})
        except ConcurrencyConflict:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        for event in decided:
            aggregate.apply(event, actor.id)
        return Executed(recorded, aggregate)
    raise AssertionError("unreachable")
