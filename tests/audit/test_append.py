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
from tests.audit.factories import ALICE, alert_event, threshold_event

pytestmark = pytest.mark.django_db


def test_first_append_creates_the_log_and_registers_the_signing_key():
    first = alert_event()
    (event,) = append([first], expected={first.stream: 0})
    assert LogInfo.objects.count() == 1
    assert event.seq == 1
    assert event.envelope["prev_hash"] == GENESIS_PREV_HASH
    assert event.envelope["log_id"] == str(LogInfo.objects.get().log_id)
    (key,) = signing_keys()
    assert (key.key_id, key.valid_from_seq, key.valid_to_seq) == (event.envelope["key_id"], 1, None)


def test_envelope_hash_and_signature_follow_the_evidence_format():
    event = alert_event()
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
    assert body["stream"] == {"type": "alert", "id": event.stream_id, "version": 1}
    assert body["actor"] == {"kind": "user", "id": "alice", "name": "Alice Martin"}
    assert stored.payload == body["payload"]


def test_seq_is_gapless_and_each_event_chains_to_the_previous_hash():
    recorded = []
    for _ in range(5):
        event = alert_event()
        recorded += append([event], expected={event.stream: 0})
    batch = [threshold_event(), threshold_event(new=0.15)]
    recorded += append(batch, expected={("policy", "credit"): 0})
    assert [e.seq for e in recorded] == list(range(1, 8))
    for previous, current in itertools.pairwise(recorded):
        assert current.envelope["prev_hash"] == previous.hash
    assert [e.stream["version"] for e in recorded[-2:]] == [1, 2]


def test_one_append_spans_several_streams_atomically():
    first, second = alert_event(), alert_event()
    recorded = append(
        [first, second, threshold_event()], expected={first.stream: 0, second.stream: 0, ("policy", "credit"): 0}
    )
    assert [e.seq for e in recorded] == [1, 2, 3]
    assert len({e.envelope["occurred_at"] for e in recorded}) == 1


def test_stale_expected_version_is_a_conflict_and_writes_nothing():
    append([threshold_event()], expected={("policy", "credit"): 0})
    fresh = alert_event()
    with pytest.raises(ConcurrencyConflict) as caught:
        append([fresh, threshold_event()], expected={fresh.stream: 0, ("policy", "credit"): 0})
    assert (caught.value.expected, caught.value.actual) == (0, 1)
    assert "policy:credit is at version 1" in str(caught.value)
    assert Event.objects.count() == 1


def test_expected_version_ahead_of_the_stream_is_a_conflict_too():
    with pytest.raises(ConcurrencyConflict):
        append([threshold_event()], expected={("policy", "credit"): 3})
    assert Event.objects.count() == 0


def test_none_expected_version_appends_at_the_streams_end():
    append([threshold_event()], expected={("policy", "credit"): None})
    (second,) = append([threshold_event()], expected={("policy", "credit"): None})
    assert second.stream["version"] == 2


BAD_EVENTS = [
    (
        {"payload": {"alert_id": "a", "model": "m", "check": "c", "severity": "s", "summary": float("nan")}},
        "field 'summary' must be str",
    ),
    ({"type": "monitoring.NoSuchThing"}, "'monitoring.NoSuchThing' is not registered"),
    ({"schema": 9}, "schema 9 is not registered"),
    ({"payload": {"alert_id": "a"}}, "missing field 'model'"),
    (
        {"payload": {"alert_id": "a", "model": "m", "check": "c", "severity": "s", "summary": "x", "extra": 1}},
        "unknown field 'extra'",
    ),
    (
        {
            "payload": {
                "alert_id": "a",
                "model": "m",
                "check": "c",
                "severity": "s",
                "summary": "x",
                "feature": "f",
                "segment": "s",
                "run_id": "r",
            }
            | {"feature": 7}
        },
        "field 'feature' must be str",
    ),
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
    good = alert_event()
    fields = {
        "stream_type": good.stream_type,
        "stream_id": good.stream_id,
        "type": good.type,
        "payload": good.payload,
        "actor": good.actor,
    } | change
    bad = NewEvent(**fields)
    valid = alert_event()
    with pytest.raises(InvalidEvent) as caught:
        append([valid, bad], expected={valid.stream: 0, bad.stream: 0})
    assert str(caught.value).startswith("event 1: ")
    assert message in str(caught.value)
    assert Event.objects.count() == 0 and LogInfo.objects.count() == 0


@pytest.mark.parametrize(
    ("payload_value", "message"),
    [
        (float("nan"), "payload.window.threshold: nan is not a finite number"),
        (2**60, "outside ±(2^53−1)"),
        ({1: "x"}, "keys must be strings"),
    ],
)
def test_payloads_that_cannot_be_canonicalised_are_refused(payload_value, message):
    event = alert_event()
    bad = NewEvent(
        "policy",
        "m",
        "monitoring.RunStarted",
        {"run_id": "r", "model": "m", "policy_version": 1, "window": {"threshold": payload_value}},
        ALICE,
    )
    with pytest.raises(InvalidEvent) as caught:
        append([event, bad], expected={event.stream: 0, bad.stream: 0})
    assert message in str(caught.value)
    assert Event.objects.count() == 0


def test_empty_batches_missing_and_extra_expectations_are_refused():
    event = alert_event()
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

    event = alert_event()
    append([event], expected={event.stream: 0})
    SigningKey.generate().save(signing_key_file)  # replaced without rotate_signing_key
    keyring.current_signing_key(reload=True)  # as a freshly started process would read it
    later = alert_event()
    with pytest.raises(SigningKeyMismatch, match="rotate_signing_key"):
        append([later], expected={later.stream: 0})
    assert Event.objects.count() == 1


def test_a_writer_whose_last_known_head_is_stale_reads_the_head_and_chains_correctly():
    from audit import store

    first = alert_event()
    (mine,) = append([first], expected={first.stream: 0})
    other = alert_event()
    with transaction.atomic():  # another process's append: this process's tip is now stale
        schemas = store._validate([other], {other.stream: 0})
        (theirs,) = store._append_locked([other], schemas, {other.stream: 0}, keyring.current_signing_key())
    assert store._tips[store._database_key()].seq == mine.seq
    third = alert_event()
    (next_event,) = append([third], expected={third.stream: 0})
    assert next_event.seq == theirs.seq + 1
    assert next_event.envelope["prev_hash"] == theirs.hash
