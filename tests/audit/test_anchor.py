"""The trust anchor (the log's first public key, pinned outside the database) and audit_verify's
default checks: a DBA who mints keys and re-signs the whole log is caught, a missing anchor is
never reported OK, and every stored checkpoint is held against the log without --witness."""

from __future__ import annotations

import hashlib
import io
import stat

import orjson
import pytest
from django.core.management import call_command
from django.db import connection

from audit import checkpoints, keyring, merkle
from audit.canonical import canonicalize
from audit.keys import SigningKey
from audit.models import Event
from audit.store import append
from audit.verify import verify_log
from tests.audit.factories import noted_event
from tests.owner import as_owner

pytestmark = pytest.mark.usefixtures("committed_log")  # audit_verify reads over its own connections


def _append(count: int) -> None:
    for index in range(count):
        event = noted_event(summary=f"alert {index}")
        append([event], expected={event.stream: 0})


def _audit_verify(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=stdout, stderr=stderr)
    except SystemExit as exited:
        return exited.code, stdout.getvalue(), stderr.getvalue()
    return 0, stdout.getvalue(), stderr.getvalue()


def test_genesis_pins_the_first_key_read_only_and_never_overwrites_it(settings):
    _append(3)
    anchor = settings.AUDIT_TRUST_ANCHOR
    pinned = anchor.read_bytes()
    assert b"BEGIN PUBLIC KEY" in pinned
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o444
    code, out, err = _audit_verify()
    assert code == 0, err
    assert "1 signing key(s) traced to the trust anchor" in out


def _mint_keys_and_resign_everything() -> SigningKey:
    """What a DBA without the signing key does: a key of their own, every event re-signed with it
    and re-chained, the key table replaced: every hash, link and signature is valid again."""
    minted = SigningKey.generate()
    previous = "0" * 64
    for seq, canonical in Event.objects.order_by("seq").values_list("seq", "canonical"):
        body = orjson.loads(bytes(canonical))
        body["key_id"], body["prev_hash"] = minted.key_id, previous
        forged = canonicalize(body)
        digest = hashlib.sha256(forged).digest()
        as_owner(
            "UPDATE audit_event SET canonical = %s, hash = %s, leaf_hash = %s, signature = %s, key_id = %s"
            " WHERE seq = %s",
            (forged, digest, merkle.leaf_hash(forged), minted.sign(forged), minted.key_id, seq),
        )
        previous = digest.hex()
    as_owner(
        "UPDATE audit_signing_key SET key_id = %s, public_key = %s", (minted.key_id, minted.public_raw),
        tables=("audit_signing_key",),
    )  # fmt: skip
    return minted


def test_a_log_re_signed_with_minted_keys_is_caught_by_the_anchor(settings):
    _append(12)
    minted = _mint_keys_and_resign_everything()
    report = verify_log()
    assert report.failure.seq == 1
    assert f"the log's first key {minted.key_id} is not the trust anchor {keyring.current_signing_key().key_id}" in (
        report.failure.reason
    )
    code, _, err = _audit_verify()
    assert code == 1 and "FAILED at seq 1: the log's first key" in err


def test_without_an_anchor_audit_verify_never_says_ok(settings):
    _append(4)
    settings.AUDIT_TRUST_ANCHOR.chmod(0o644)
    settings.AUDIT_TRUST_ANCHOR.unlink()
    code, out, err = _audit_verify()
    assert (code, out) == (3, "")
    assert f"NOT AUTHENTICATED: no trust anchor is pinned at {settings.AUDIT_TRUST_ANCHOR}" in err
    code, out, err = _audit_verify("--incremental")
    assert code == 3 and "NOT AUTHENTICATED" in err


def test_an_anchor_that_is_not_a_public_key_is_named(settings, tmp_path):
    _append(2)
    settings.AUDIT_TRUST_ANCHOR = tmp_path / "garbage.pem"
    settings.AUDIT_TRUST_ANCHOR.write_text("not a key")
    code, _, err = _audit_verify()
    assert code == 1 and f"the trust anchor {settings.AUDIT_TRUST_ANCHOR} is not a PEM public key" in err


def test_audit_verify_holds_the_log_against_its_stored_checkpoints_by_default(settings):
    _append(30)
    checkpoints.checkpoint_create(publish=False)
    settings.AUDIT_WITNESSES = []  # no witness at all: the stored checkpoints alone
    as_owner("DELETE FROM audit_event WHERE seq > 25")
    assert verify_log().ok  # the chain alone cannot see a missing tail
    code, _, err = _audit_verify()
    assert code == 1
    assert "stored checkpoint of size 30" in err and "covers 30 events but the log holds 25" in err
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_checkpoint")
        assert cursor.fetchone() == (1,)


def test_an_incremental_verification_with_nothing_new_still_holds_the_keys_against_the_anchor(settings):
    _append(5)
    code, _, err = _audit_verify("--incremental")
    assert code == 0, err
    minted = SigningKey.generate()  # the key table alone replaced: no event changed, none new
    as_owner(
        "UPDATE audit_signing_key SET key_id = %s, public_key = %s", (minted.key_id, minted.public_raw),
        tables=("audit_signing_key",),
    )  # fmt: skip
    code, _, err = _audit_verify("--incremental")
    assert code == 1 and f"the log's first key {minted.key_id} is not the trust anchor" in err
