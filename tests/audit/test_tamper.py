"""Each way of tampering with stored events, done as a superuser with the triggers off, is caught
by audit_verify, which names the first bad seq and the reason."""

from __future__ import annotations

import base64
import hashlib
import io

import orjson
import pytest
from django.core.management import call_command
from django.db import connection

from audit.canonical import canonicalize
from audit.envelope import rotation_statement
from audit.keys import SigningKey
from audit.rotation import signing_key_rotate
from audit.store import SYSTEM_ACTOR, append
from audit.verification import Failure, KeyRange, key_chain_failures
from audit.verify import verify_log
from tests.audit.factories import noted_event
from tests.owner import as_owner

TARGET = 10


@pytest.fixture
def log_of_30(committed_log):
    for index in range(29):
        if index == 15:
            signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="scheduled")
            continue
        event = noted_event(summary=f"alert number {index}")
        append([event], expected={event.stream: 0})
    event = noted_event()
    append([event], expected={event.stream: 0})
    return 30


_superuser = as_owner


def _stored(seq: int) -> tuple[bytes, bytes]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical, hash FROM audit_event WHERE seq = %s", (seq,))
        canonical, digest = cursor.fetchone()
    return bytes(canonical), bytes(digest)


def modify_payload_byte():
    canonical, _ = _stored(TARGET)
    changed = canonical.replace(b"alert number", b"alert numbeR", 1)
    assert changed != canonical
    _superuser("UPDATE audit_event SET canonical = %s WHERE seq = %s", (changed, TARGET))


def modify_hash():
    _superuser("UPDATE audit_event SET hash = %s WHERE seq = %s", (hashlib.sha256(b"x").digest(), TARGET))


def modify_signature():
    _superuser(
        # one byte flipped (set to zero, it would be unchanged one time in 256)
        "UPDATE audit_event SET signature = set_byte(signature, 4, get_byte(signature, 4) # 255) WHERE seq = %s",
        (TARGET,),
    )


def modify_key_id():
    _superuser("UPDATE audit_event SET key_id = 'ffffffffffffffff' WHERE seq = %s", (TARGET,))


def delete_middle_row():
    _superuser("DELETE FROM audit_event WHERE seq = %s", (TARGET,))


def insert_forged_row():
    attacker = SigningKey.generate()
    canonical, digest = _stored(30)
    body = orjson.loads(canonical)
    body |= {
        "seq": 31,
        "prev_hash": digest.hex(),
        "key_id": attacker.key_id,
        "event_id": "00000000-0000-4000-8000-000000000031",
    }
    body["stream"] = {**body["stream"], "id": "forged"}
    _insert(body, attacker)


def swap_two_rows_seq():
    for old, new in ((TARGET, 1_000_000), (TARGET + 1, TARGET), (1_000_000, TARGET + 1)):
        _superuser("UPDATE audit_event SET seq = %s WHERE seq = %s", (new, old))


def resign_modified_event_with_another_key():
    attacker = SigningKey.generate()
    canonical, _ = _stored(TARGET)
    body = orjson.loads(canonical)
    body["payload"]["severity"] = "info"
    body["key_id"] = attacker.key_id
    forged = canonicalize(body)
    _superuser(
        "UPDATE audit_event SET canonical = %s, hash = %s, leaf_hash = %s, signature = %s, key_id = %s,"
        " payload = %s::jsonb WHERE seq = %s",
        (
            forged,
            hashlib.sha256(forged).digest(),
            hashlib.sha256(b"\x00" + forged).digest(),
            attacker.sign(forged),
            attacker.key_id,
            orjson.dumps(body["payload"]).decode(),
            TARGET,
        ),
    )


def _insert(body: dict, key: SigningKey) -> None:
    canonical = canonicalize(body)
    _superuser(
        "INSERT INTO audit_event (seq, event_id, stream_type, stream_id, stream_version, event_type, schema,"
        " occurred_at, actor_kind, actor_id, payload, canonical, hash, leaf_hash, signature, key_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)",
        (
            body["seq"],
            body["event_id"],
            body["stream"]["type"],
            body["stream"]["id"],
            body["stream"]["version"],
            body["type"],
            body["schema"],
            body["occurred_at"].replace("Z", "+00:00"),
            body["actor"]["kind"],
            body["actor"]["id"],
            orjson.dumps(body["payload"]).decode(),
            canonical,
            hashlib.sha256(canonical).digest(),
            hashlib.sha256(b"\x00" + canonical).digest(),
            key.sign(canonical),
            key.key_id,
        ),
    )


TAMPERS = [
    (modify_payload_byte, TARGET, "stored hash does not match"),
    (modify_hash, TARGET, "stored hash does not match"),
    (modify_signature, TARGET, "signature does not verify"),
    (modify_key_id, TARGET, "key_id column ffffffffffffffff disagrees"),
    (delete_middle_row, TARGET, f"seq {TARGET} is missing"),
    (insert_forged_row, 31, "but the key valid at this seq is"),
    (swap_two_rows_seq, TARGET, f"envelope says seq {TARGET + 1} but it is stored at seq {TARGET}"),
    (resign_modified_event_with_another_key, TARGET, "but the key valid at this seq is"),
]


def test_untampered_log_with_a_rotation_verifies_across_ranges_and_workers(log_of_30):
    for workers in (1, 2):
        report = verify_log(workers=workers, chunk_size=7)
        assert report.ok, report.failure
        assert (report.events, report.keys) == (30, 2)


@pytest.mark.parametrize(("tamper", "seq", "reason"), TAMPERS, ids=[t[0].__name__ for t in TAMPERS])
def test_audit_verify_names_the_first_bad_seq(log_of_30, tamper, seq, reason):
    tamper()
    report = verify_log(workers=2, chunk_size=7)
    assert report.failure is not None
    assert report.failure.seq == seq
    assert reason in report.failure.reason

    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", stderr=stderr)
    assert exited.value.code == 1
    assert stderr.getvalue().startswith(f"FAILED at seq {seq}: ")


def test_audit_verify_prints_one_line_and_exits_zero_when_valid(log_of_30):
    stdout = io.StringIO()
    call_command("audit_verify", stdout=stdout)
    lines = stdout.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("OK: 30 events verified")


def test_a_signing_key_row_without_a_rotation_event_is_caught(log_of_30):
    intruder = SigningKey.generate()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_signing_key (key_id, public_key, valid_from_seq, created_at) VALUES (%s, %s, 25, now())",
            (intruder.key_id, intruder.public_raw),
        )
    report = verify_log(workers=2, chunk_size=7)
    assert report.failure.seq == 25
    assert "without an audit.KeyRotated event" in report.failure.reason


def test_rotation_whose_cross_signature_fails_is_caught():
    old, new = SigningKey.generate(), SigningKey.generate()
    keys = [KeyRange(old.key_id, old.public_raw, 1, 5), KeyRange(new.key_id, new.public_raw, 6, None)]
    statement = rotation_statement(log_id="log-1", new_key_id=new.key_id, previous_key_id=old.key_id)
    payload = {
        "new_key_id": new.key_id,
        "new_public_key": new.public_b64,
        "previous_key_id": old.key_id,
        "new_key_signature": base64.b64encode(new.sign(statement)).decode(),
    }
    assert key_chain_failures(keys, [(5, payload)], "log-1") == []

    signed_by_old = payload | {"new_key_signature": base64.b64encode(old.sign(statement)).decode()}
    (failure,) = key_chain_failures(keys, [(5, signed_by_old)], "log-1")
    assert failure == Failure(5, "new_key_signature does not verify under the new key")
    (failure,) = key_chain_failures(keys, [(5, payload)], "another-log")
    assert failure.seq == 5
    (failure,) = key_chain_failures(keys, [(5, payload | {"new_public_key": old.public_b64})], "log-1")
    assert "another public key" in failure.reason
