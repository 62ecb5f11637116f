"""Projections and subscribers: handlers keyed by event class, run in the append's transaction;
old schemas reach the handler of the class they upcast to; subscribers follow new events only."""

import pytest

from audit import projections
from audit.events import Event, event_type
from audit.store import append
from tests.audit.factories import ALICE, Noted, noted_event

pytestmark = pytest.mark.django_db


@event_type("test.Counted", schema=1)
class CountedV1(Event):
    n: int

    def upcast(self) -> Event:
        return Counted(n=self.n, unit="items")


@event_type("test.Counted", schema=2)
class Counted(Event):
    n: int
    unit: str


seen: list[tuple[str, object]] = []
reacted: list[int] = []
TALLY = projections.register(
    projections.Projection(
        name="test.tally",
        handlers={
            Noted: lambda event, recorded: seen.append(("noted", event.summary)),
            Counted: lambda event, recorded: seen.append(("counted", (event.n, event.unit))),
        },
        models=[],
    )
)
projections.subscribe(Noted, lambda event, recorded: reacted.append(recorded.seq))


@pytest.fixture(autouse=True)
def _clean():
    seen.clear()
    reacted.clear()


def test_handlers_and_subscribers_run_in_the_appending_transaction():
    first = noted_event(summary="first")
    (recorded,) = append([first], expected={first.stream: 0})
    assert seen == [("noted", "first")]
    assert reacted == [recorded.seq]


def test_an_old_schema_reaches_the_handler_of_the_class_it_upcasts_to():
    # An event written under schema 1 (as an older release did), read back by today's projection.
    from audit import store

    old = store.NewEvent("count", "c", CountedV1(n=3), ALICE)
    payloads = [{"n": 3}]
    store._append_locked([old], payloads, {("count", "c"): 0}, store.keyring.current_signing_key())
    assert seen == [("counted", (3, "items"))]
    seen.clear()
    counts = projections.rebuild(["test.tally"])
    assert counts == {"test.tally": 1} and seen == [("counted", (3, "items"))]


def test_a_rebuild_replays_projections_but_never_subscribers():
    for summary in ("a", "b", "c"):
        event = noted_event(summary=summary)
        append([event], expected={event.stream: 0})
    reacted.clear()
    seen.clear()
    assert projections.rebuild(["test.tally"]) == {"test.tally": 3}
    assert seen == [("noted", "a"), ("noted", "b"), ("noted", "c")]
    assert reacted == []


def test_unknown_projection_names_are_refused():
    with pytest.raises(LookupError, match="no projection named nope"):
        projections.rebuild(["nope"])
