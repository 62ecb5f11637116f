"""The registry of event types: classes registered by decorator, one per (name, schema)."""

import pytest

from audit import events
from audit.events import Event, InvalidPayload, event_type


def test_duplicate_event_type_versions_are_refused_at_registration():
    with pytest.raises(events.DuplicateEventType):

        @event_type("audit.KeyRotated")
        class Again(Event):
            pass


def test_a_new_schema_version_becomes_the_default_while_the_old_stays_addressable():
    @event_type("test.Thing", schema=1)
    class ThingV1(Event):
        a: int

        def upcast(self) -> Event:
            return Thing(a=self.a, b="")

    @event_type("test.Thing", schema=2)
    class Thing(Event):
        a: int
        b: str

    assert events.lookup("test.Thing") is Thing
    assert events.lookup("test.Thing", 1) is ThingV1
    old = events.parse("test.Thing", 1, {"a": 3})
    assert isinstance(old, ThingV1) and old.upcast() == Thing(a=3, b="")
    with pytest.raises(InvalidPayload, match="missing field 'b'"):
        events.parse("test.Thing", 2, {"a": 3})


def test_payload_problems_are_listed_with_their_paths():
    @event_type("test.Shape")
    class Shape(Event):
        n: float
        flag: bool
        tags: list[str] = []
        s: str | None = None

    assert Shape.from_payload({"n": 1, "flag": True}).n == 1.0
    with pytest.raises(InvalidPayload) as caught:
        Shape.from_payload({"n": True, "s": 3, "tags": ["a", 2], "zzz": 1})
    assert caught.value.problems == [
        "field 'n': Input should be a valid number",
        "missing field 'flag'",
        "field 'tags.1': Input should be a valid string",
        "field 's': Input should be a valid string",
        "unknown field 'zzz'",
    ]


def test_undotted_names_are_refused():
    with pytest.raises(ValueError, match="dotted"):
        event_type("Thing")


def test_every_registered_type_has_a_sentence_of_its_own_or_the_plain_default():
    kinds = {cls.type_name for cls in events.all_types()}
    assert {"audit.KeyRotated", "monitoring.RemediationApproved", "monitoring.RunCompleted"} <= kinds


def test_a_field_may_not_hide_the_events_own_attributes():
    with pytest.raises(TypeError, match="type_schema"):

        @event_type("test.Hiding")
        class Hiding(Event):
            type_schema: int


def test_an_option_left_unset_is_left_out_at_every_level_and_a_nullable_required_field_stays():
    class Part(events.Shape):
        value: int
        note: str | None = None

    class Whole(events.Shape):
        parts: list[Part]
        maybe: str | None  # required, and may be null: always present
        comment: str | None = None

    dumped = Whole(parts=[Part(value=1), Part(value=2, note="n")], maybe=None).model_dump(mode="json")
    assert dumped == {"parts": [{"value": 1}, {"value": 2, "note": "n"}], "maybe": None}
    assert Whole(parts=[], maybe="m", comment="c").model_dump(mode="json") == {
        "parts": [],
        "maybe": "m",
        "comment": "c",
    }


def test_a_shape_that_refers_to_a_part_not_defined_yet_is_refused_with_a_clear_error():
    with pytest.raises(TypeError, match="Early refers to a type not defined yet"):

        class Early(events.Shape):
            later: "Later | None" = None

    class Later(events.Shape):
        value: int
