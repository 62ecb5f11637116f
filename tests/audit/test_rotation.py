import base64
import io

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management import call_command

from audit import keyring
from audit.envelope import rotation_statement
from audit.keys import SigningKey
from audit.models import Event
from audit.rotation import signing_key_rotate
from audit.selectors import signing_keys
from audit.store import SYSTEM_ACTOR, append
from tests.audit.factories import noted_event

pytestmark = pytest.mark.django_db


def _append_one():
    event = noted_event()
    return append([event], expected={event.stream: 0})[0]


def test_key_rotated_event_is_signed_by_the_old_key_and_cross_signed_by_the_new():
    first = _append_one()
    old_key = keyring.current_signing_key()
    new_key = SigningKey.generate()
    rotated = signing_key_rotate(new_key=new_key, actor=SYSTEM_ACTOR, reason="annual rotation")

    assert rotated.type == "audit.KeyRotated" and rotated.seq == first.seq + 1
    assert rotated.envelope["key_id"] == old_key.key_id
    Ed25519PublicKey.from_public_bytes(old_key.public_raw).verify(
        base64.b64decode(rotated.signature), rotated.canonical
    )
    payload = rotated.payload
    assert set(payload) == {"new_key_id", "new_public_key", "previous_key_id", "new_key_signature"}
    assert payload["new_key_id"] == new_key.key_id
    assert base64.b64decode(payload["new_public_key"]) == new_key.public_raw
    assert payload["previous_key_id"] == old_key.key_id
    statement = rotation_statement(
        log_id=rotated.envelope["log_id"], new_key_id=new_key.key_id, previous_key_id=old_key.key_id
    )
    Ed25519PublicKey.from_public_bytes(new_key.public_raw).verify(
        base64.b64decode(payload["new_key_signature"]), statement
    )

    after = _append_one()
    assert after.envelope["key_id"] == new_key.key_id
    assert keyring.current_signing_key().key_id == new_key.key_id
    keys = signing_keys()
    assert [(k.key_id, k.valid_from_seq, k.valid_to_seq) for k in keys] == [
        (old_key.key_id, 1, rotated.seq),
        (new_key.key_id, rotated.seq + 1, None),
    ]


def test_the_retired_private_key_is_destroyed(signing_key_file):
    """Whoever takes the key directory after a rotation cannot sign for the seqs before it."""
    _append_one()
    old = keyring.current_signing_key()
    signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="compromise drill")
    left = [SigningKey.load(path).key_id for path in signing_key_file.parent.glob("*.pem")]
    assert left == [keyring.current_signing_key().key_id]
    old_pem = old.private_pem()
    assert not any(old_pem in path.read_bytes() for path in signing_key_file.parent.rglob("*") if path.is_file())
    assert not list(signing_key_file.parent.glob("*.pending"))
    assert signing_keys()[0].key_id == old.key_id  # its public key still verifies the past


def test_the_retired_private_key_moves_to_offline_media_when_configured(signing_key_file, settings, tmp_path):
    settings.AUDIT_RETIRED_KEY_DIR = str(tmp_path / "offline")
    _append_one()
    old = keyring.current_signing_key()
    signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="yearly")
    (moved,) = (tmp_path / "offline").glob("*.pem")
    assert SigningKey.load(moved).key_id == old.key_id and moved.name.endswith(f".{old.key_id}.retired.pem")
    assert oct(moved.stat().st_mode & 0o777) == "0o600"
    assert [SigningKey.load(p).key_id for p in signing_key_file.parent.glob("*.pem")] == [
        keyring.current_signing_key().key_id
    ]


def test_rotating_to_the_same_key_is_refused():
    _append_one()
    with pytest.raises(ValueError, match="already in use"):
        signing_key_rotate(new_key=keyring.current_signing_key(), actor=SYSTEM_ACTOR, reason="x")
    assert Event.objects.count() == 1


def test_rotate_signing_key_command_requires_a_reason_and_reports_the_switch(tmp_path):
    _append_one()
    with pytest.raises(SystemExit) as exited:
        call_command("rotate_signing_key", "--reason", "  ", stderr=io.StringIO())
    assert exited.value.code == 2
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    stderr = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("rotate_signing_key", "--reason", "r", "--new-key", str(bad), stderr=stderr)
    assert "cannot read Ed25519 private key" in stderr.getvalue()
    assert Event.objects.count() == 1

    new_key = SigningKey.generate()
    new_key.save(tmp_path / "new.pem")
    stdout = io.StringIO()
    call_command("rotate_signing_key", "--reason", "planned", "--new-key", str(tmp_path / "new.pem"), stdout=stdout)
    assert f"key {new_key.key_id} signs from seq 3" in stdout.getvalue()


def _rotate_command(*args: str) -> tuple[int, str]:
    stderr = io.StringIO()
    try:
        call_command("rotate_signing_key", *args, stdout=io.StringIO(), stderr=stderr)
    except SystemExit as exited:
        return exited.code, stderr.getvalue()
    return 0, stderr.getvalue()


def test_a_refused_rotation_answers_in_one_line_and_leaves_no_private_key_behind(signing_key_file, tmp_path):
    """A retired key never signs again, the key in use is no new key, and the log records who
    rotates: each is refused before anything is written, and no parked private key stays on disk."""
    _append_one()
    retired = keyring.current_signing_key()
    retired.save(tmp_path / "retired.pem")
    signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="yearly")
    current = keyring.current_signing_key()
    current.save(tmp_path / "current.pem")
    count = Event.objects.count()
    refused = {
        "retired": _rotate_command("--reason", "back", "--new-key", str(tmp_path / "retired.pem")),
        "current": _rotate_command("--reason", "same", "--new-key", str(tmp_path / "current.pem")),
        "no actor": _rotate_command("--reason", "r", "--actor", " "),
    }
    assert refused["retired"][0] == 2 and f"{retired.key_id} signed seqs 1..2 of this log" in refused["retired"][1]
    assert refused["current"][0] == 2 and "already in use" in refused["current"][1]
    assert refused["no actor"][0] == 2 and "--actor" in refused["no actor"][1]
    assert Event.objects.count() == count
    assert sorted(path.name for path in signing_key_file.parent.iterdir()) == [signing_key_file.name]
    assert keyring.current_signing_key(reload=True).key_id == current.key_id


def test_audit_keys_refuses_a_pem_dir_it_cannot_make_in_one_line(tmp_path):
    _append_one()
    (tmp_path / "a-file").write_text("not a directory")
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_keys", "--pem-dir", str(tmp_path / "a-file" / "keys"), stdout=io.StringIO(), stderr=stderr)
    assert exited.value.code == 1
    assert stderr.getvalue().startswith(f"cannot write the public keys to {tmp_path / 'a-file' / 'keys'}: ")
    stdout = io.StringIO()
    call_command("audit_keys", "--pem-dir", str(tmp_path / "pems"), stdout=stdout)
    (written,) = (tmp_path / "pems").iterdir()
    assert written.name == f"{keyring.current_signing_key().key_id}.pem"
    assert "Wrote 1 public key(s)" in stdout.getvalue()
