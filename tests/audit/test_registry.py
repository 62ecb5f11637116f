import pytest

from audit import registry


def test_duplicate_event_type_versions_are_refused_at_registration():
    with pytest.raises(registry.DuplicateEventType):
        registry.register("monitoring.AlertRaised", schema=1, required={})


def test_a_new_schema_version_becomes_the_default_while_the_old_stays_addressable():
    registry.register("test.Thing", schema=1, required={"a": int})
    registry.register("test.Thing", schema=2, required={"a": int, "b": str})
    assert registry.lookup("test.Thing").schema == 2
    assert registry.lookup("test.Thing", 1).required.keys() == {"a"}


def test_payload_shape_problems_are_listed():
    thing = registry.register("test.Shape", schema=1, required={"n": float, "flag": bool}, optional={"s": str})
    assert thing.payload_problems({"n": 1, "flag": True}) == []
    assert thing.payload_problems({"n": True, "s": 3, "zzz": 1}) == [
        "missing field 'flag'",
        "field 'n' must be float, not bool",
        "field 's' must be str, not int",
        "unknown field 'zzz'",
    ]


def test_undotted_names_are_refused():
    with pytest.raises(ValueError, match="dotted"):
        registry.register("Thing", schema=1, required={})
