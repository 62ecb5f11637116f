import base64
import hashlib
import itertools
import uuid

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import transaction

from audit import keyring
from audit.envelope import ENVELOPE_MEMBERS, GENESIS_PREV_HASH, key_id_of
from audit.events import Event as TypedEvent
from audit.events import event_type
from audit.models import Event, LogInfo, SigningKeyRecord
from audit.selectors import signing_keys
from audit.store import (
    Actor,
    AppendError,
    ConcurrencyConflict,
    InvalidEvent,
    NewEvent,
    SigningKeyMismatch,
    append,
)
from tests.audit.factories import Noted, noted_event, policy_event

pytestmark = pytest.mark.django_db


def test_first_append_creates_the_log_and_registers_the_signing_key():
    first = noted_event()
    (event,) = append([first], expected={first.stream: 0})
    assert LogInfo.objects.count() == 1
    assert event.seq == 1
    assert event.envelope["prev_hash"] == GENESIS_PREV_HASH
    assert event.envelope["log_id"] == str(LogInfo.objects.get().log_id)
    (key,) = signing_keys()
    assert (key.key_id, key.valid_from_seq, key.valid_to_seq) == (event.envelope["key_id"], 1, None)


def test_envelope_hash_and_signature_follow_the_evidence_format():
    event = noted_event()
    (recorded,) = append([event], expected={event.stream: 0})
    stored = Event.objects.get(seq=recorded.seq)
    body = recorded.envelope
    assert tuple(body) == ENVELOPE_MEMBERS
    assert bytes(stored.canonical) == rfc8785.dumps(body)
    assert bytes(stored.hash) == hashlib.sha256(rfc8785.dumps(body)).digest()
    assert bytes(stored.leaf_hash) == hashlib.sha256(b"\x00" + rfc8785.dumps(body)).digest()
    public = bytes(SigningKeyRecord.objects.get().public_key)
    assert body["key_id"] == hashlib.sha256(public).hexdigest()[:16] == key_id_of(public)
    Ed25519PublicKey.from_public_bytes(public).verify(bytes(stored.signature), rfc8785.dumps(body))
    assert recorded.signature == base64.b64encode(bytes(stored.signature)).decode()
    assert body["occurred_at"].endswith("Z") and len(body["occurred_at"]) == 27
    assert body["stream"] == {"type": "note", "id": event.stream_id, "version": 1}
    assert body["actor"] == {"kind": "user", "id": "alice", "name": "Alice Martin"}
    assert stored.payload == body["payload"]


def test_seq_is_gapless_and_each_event_chains_to_the_previous_hash():
    recorded = []
    for _ in range(5):
        event = noted_event()
        recorded += append([event], expected={event.stream: 0})
    batch = [policy_event(), policy_event(new=0.15)]
    recorded += append(batch, expected={("policy", "credit"): 0})
    assert [e.seq for e in recorded] == list(range(1, 8))
    for previous, current in itertools.pairwise(recorded):
        assert current.envelope["prev_hash"] == previous.hash
    assert [e.stream["version"] for e in recorded[-2:]] == [1, 2]


def test_one_append_spans_several_streams_atomically():
    first, second = noted_event(), noted_event()
    recorded = append(
        [first, second, policy_event()], expected={first.stream: 0, second.stream: 0, ("policy", "credit"): 0}
    )
    assert [e.seq for e in recorded] == [1, 2, 3]
    assert len({e.envelope["occurred_at"] for e in recorded}) == 1


def test_stale_expected_version_is_a_conflict_and_writes_nothing():
    append([policy_event()], expected={("policy", "credit"): 0})
    fresh = noted_event()
    with pytest.raises(ConcurrencyConflict) as caught:
        append([fresh, policy_event()], expected={fresh.stream: 0, ("policy", "credit"): 0})
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert "policy:credit is at version 1" in str(caught.value)
    assert Event.objects.count() == 1


def test_expected_version_ahead_of_the_stream_is_a_conflict_too():
    with pytest.raises(ConcurrencyConflict):
        append([policy_event()], expected={("policy", "credit"): 3})
    assert Event.objects.count() == 0


def test_none_expected_version_appends_at_the_streams_end():
    append([policy_event()], expected={("policy", "credit"): None})
    (second,) = append([policy_event()], expected={("policy", "credit"): None})
    assert second.stream["version"] == 2


class Unregistered(TypedEvent):
    model: str


@event_type("test.Versioned", schema=1)
class VersionedV1(TypedEvent):
    model: str


@event_type("test.Versioned", schema=2)
class Versioned(TypedEvent):
    model: str
    figure: float


BAD_EVENTS = [
    # Instances built without validation (model_construct) stand for any payload that does not fit.
    (
        {"event": Noted.model_construct(model="m", summary=float("nan"))},
        "field 'summary': Input should be a valid string",
    ),
    ({"event": Noted.model_construct(summary="x")}, "missing field 'model'"),
    (
        {"event": Noted.model_construct(model="m", summary="x", detail={"x": float("nan")})},
        "nan is not a finite number",
    ),
    ({"event": Noted.model_construct(model="m", summary="x", detail={"x": 2**60})}, "outside ±(2^53−1)"),
    ({"event": Noted.model_construct(model="m", summary="x", detail={1: "x"})}, "does not read back as the same event"),
    ({"event": Noted.model_construct(model="m", summary="x\ud800")}, "lone surrogate"),
    ({"event": Unregistered(model="m")}, "is not registered"),
    ({"event": VersionedV1(model="m")}, "test.Versioned schema 1 is superseded: new events take schema 2"),
    ({"event": {"model": "m", "summary": "x"}}, "must be a registered event class, not dict"),
    ({"actor": Actor("robot", "r2", "R2")}, "actor kind 'robot'"),
    ({"actor": Actor("user", "", "nobody")}, "actor id and name must be non-empty"),
    ({"stream_id": ""}, "stream_id must be a non-empty string"),
    ({"stream_type": "x" * 101}, "stream_type must be a non-empty string of at most 100"),
    ({"correlation_id": "not-a-uuid"}, "correlation_id must be a lowercase UUID"),
    ({"causation_id": str(uuid.uuid4()).upper()}, "causation_id must be a lowercase UUID"),
    ({"reason": 42}, "reason must be a string"),
]


@pytest.mark.parametrize(("change", "message"), BAD_EVENTS)
def test_invalid_events_are_refused_with_a_clear_error_and_nothing_is_written(change, message):
    good = noted_event()
    fields = {
        "stream_type": good.stream_type,
        "stream_id": good.stream_id,
        "event": good.event,
        "actor": good.actor,
    } | change
    bad = NewEvent(**fields)
    valid = noted_event()
    with pytest.raises(InvalidEvent) as caught:
        append([valid, bad], expected={valid.stream: 0, bad.stream: 0})
    assert str(caught.value).startswith("event 1: ")
    assert message in str(caught.value)
    assert Event.objects.count() == 0 and LogInfo.objects.count() == 0


def test_a_stored_payload_reads_back_as_its_typed_event():
    event = noted_event(detail={"threshold": 0.25}, severity="critical")
    (recorded,) = append([event], expected={event.stream: 0})
    assert recorded.event == event.event
    stored = Event.objects.get(seq=recorded.seq)
    assert stored.payload == {
        "model": "credit",
        "summary": "PSI 0.31 on income",
        "severity": "critical",
        "detail": {"threshold": 0.25},
    }  # options left unset are absent, not null


def test_empty_batches_missing_and_extra_expectations_are_refused():
    event = noted_event()
    with pytest.raises(AppendError, match="empty"):
        append([], expected={})
    with pytest.raises(AppendError, match="no expected version given for stream"):
        append([event], expected={})
    with pytest.raises(AppendError, match="stream\\(s\\) with no event"):
        append([event], expected={event.stream: 0, ("other", "x"): 0})
    with pytest.raises(AppendError, match="integer >= 0"):
        append([event], expected={event.stream: -1})
    assert Event.objects.count() == 0


def test_a_key_that_is_not_the_logs_current_key_cannot_append(signing_key_file):
    from audit import keyring
    from audit.keys import SigningKey

    event = noted_event()
    append([event], expected={event.stream: 0})
    SigningKey.generate().save(signing_key_file)  # replaced without rotate_signing_key
    keyring.current_signing_key(reload=True)  # as a freshly started process would read it
    later = noted_event()
    with pytest.raises(SigningKeyMismatch, match="rotate_signing_key"):
        append([later], expected={later.stream: 0})
    assert Event.objects.count() == 1


def test_a_writer_whose_last_known_head_is_stale_reads_the_head_and_chains_correctly():
    from audit import store

    first = noted_event()
    (mine,) = append([first], expected={first.stream: 0})
    other = noted_event()
    with transaction.atomic():  # another process's append: this process's tip is now stale
        payloads = store._validate([other], {other.stream: 0})
        (theirs,) = store._append_locked([other], payloads, {other.stream: 0}, keyring.current_signing_key())
    assert store._tips[store._database_key()].seq == mine.seq
    third = noted_event()
    (next_event,) = append([third], expected={third.stream: 0})
    assert next_event.seq == theirs.seq + 1
    assert next_event.envelope["prev_hash"] == theirs.hash
