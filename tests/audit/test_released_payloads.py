"""Released event types keep their payloads. Every payload in data/released_payloads.jsonl was
dumped by the code of 2026-12-06 before the change to exclude_if (commit b831136): those the demo
and the audit, monitoring and web tests appended (a hook in the store's validation wrote them
out), and three written for it of the types those never appended; then one of each type released
since, added with it (audit.SegmentArchived, 2026-12-07; monitoring.RemediationApprovalLapsed,
2026-12-08). One per event type, schema and shape
(which keys, which of them null). Read back into its class and dumped again, each must give the
same payload and the same canonical bytes, so a change to how events are dumped cannot change what
an event of a released type says."""

from pathlib import Path

import orjson
import pytest

from audit import events
from audit.canonical import canonicalize

RELEASED = [orjson.loads(line) for line in (Path(__file__).parent / "data" / "released_payloads.jsonl").open("rb")]


def test_the_file_covers_every_type_new_events_take_and_nullable_fields():
    """Every type and schema new events are written in; superseded schemas, which no code path
    writes any more, only where the tests still made one."""
    kinds = {(name, schema) for name, schema, _ in RELEASED}
    current = {
        (kind.type_name, kind.type_schema)
        for kind in events.all_types()
        if events.lookup(kind.type_name) is kind and not kind.__module__.startswith("tests.")  # the product's
    }
    assert current <= kinds, sorted(current - kinds)
    assert any(None in payload.values() for _, _, payload in RELEASED)  # a required field that may be null


@pytest.mark.parametrize(("name", "schema", "payload"), RELEASED, ids=[f"{n}/{s}" for n, s, _ in RELEASED])
def test_a_released_payload_dumps_back_to_itself(name, schema, payload):
    event = events.lookup(name, schema).from_payload(payload)
    assert event.to_payload() == payload
    assert canonicalize(event.to_payload()) == canonicalize(payload)
