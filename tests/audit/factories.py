"""Small builders of events for the event store's tests: event types of their own, so that the
store is tested as the generic thing it is (it names no domain type)."""

from __future__ import annotations

import uuid
from typing import Any

from audit.events import Event, event_type
from audit.store import Actor, NewEvent

ALICE = Actor("user", "alice", "Alice Martin")


@event_type("test.Noted")
class Noted(Event):
    """Something happened to a model: the test's all-purpose event."""

    model: str
    summary: str
    severity: str | None = None
    detail: dict[str, Any] | None = None
    data_digest: str | None = None


@event_type("test.Signed")
class Signed(Event):
    """A decision signed by a person."""

    tone = "signature"
    signer_name: str
    meaning: str

    def describe(self, about) -> str:
        return f"{self.signer_name} signed: {self.meaning}{about.because}"


def noted_event(stream_id: str | None = None, *, summary: str = "PSI 0.31 on income", **extra) -> NewEvent:
    ident = stream_id or str(uuid.uuid4())
    return NewEvent("note", ident, Noted(model="credit", summary=summary, **extra), ALICE)


def policy_event(model: str = "credit", new: float = 0.2) -> NewEvent:
    return NewEvent("policy", model, Noted(model=model, summary=f"floor {new}"), ALICE, reason="tighten")
