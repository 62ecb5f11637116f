"""The integrity page: checkpoint, witnesses and what each last received, key history with PEM
downloads, and the recorded full verifications (recorded by audit/selfcheck.py, tested in
tests/audit/test_selfcheck.py; here rows of each outcome are shown)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.utils import timezone

from audit.checkpoints import checkpoint_create
from audit.models import Checkpoint, LogSegment, LogVerification, SigningKeyRecord, WitnessDelivery
from audit.witnesses import publish_checkpoint
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_the_integrity_page_shows_checkpoint_witnesses_keys_and_verifications(people, settings, tmp_path):
    checkpoint = checkpoint_create(publish=False)
    publish_checkpoint(checkpoint.as_dict())
    settings.AUDIT_WITNESSES = [
        *settings.AUDIT_WITNESSES,
        {
            "class": "audit.witnesses.HttpWitness",
            "options": {"url": "http://user:secret@127.0.0.1:9/cosign?token=t", "attempts": 1},
        },
    ]
    publish_checkpoint(checkpoint.as_dict())
    now = timezone.now()
    LogVerification.objects.create(
        started_at=now - dt.timedelta(hours=7),
        finished_at=now - dt.timedelta(hours=7),
        ok=False,
        events_checked=9,
        failed_seq=4,
        problem="seq 4: signature does not verify",
    )
    LogVerification.objects.create(started_at=now - dt.timedelta(hours=5), ok=None)  # its worker died
    LogVerification.objects.create(started_at=now - dt.timedelta(hours=1), finished_at=now, ok=True, events_checked=11)
    page = signed_in(people["ml_engineer"]).get("/integrity/").content.decode()
    assert checkpoint.root_hash in page and f"tree size {checkpoint.tree_size}" in page
    assert WitnessDelivery.objects.get(name__startswith="directory").tree_size == checkpoint.tree_size
    assert "HTTP http://127.0.0.1:9/cosign" in page and "failing" in page
    assert "secret" not in page and "token=t" not in page
    assert "passed" in page and "interrupted" in page
    assert "seq 4: signature does not verify" in page and "(seq 4)" in page
    assert 'href="/log/4/"' not in page  # the engineer reads no log: the event page would answer 403
    assert 'href="/log/4/"' in signed_in(people["auditor"]).get("/integrity/").content.decode()
    for key in SigningKeyRecord.objects.all():
        assert f"/integrity/keys/{key.key_id}.pem" in page


def test_a_public_key_downloads_as_pem_of_the_recorded_key(people):
    checkpoint_create(publish=False)
    key = SigningKeyRecord.objects.get()
    answer = signed_in(people["auditor"]).get(f"/integrity/keys/{key.key_id}.pem")
    loaded = serialization.load_pem_public_key(answer.content)
    assert isinstance(loaded, Ed25519PublicKey)
    assert loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == bytes(key.public_key)
    assert signed_in(people["admin"]).get("/integrity/keys/0000000000000000.pem").status_code == 404
    assert Checkpoint.objects.exists()


def test_the_integrity_page_names_the_cosigning_witnesses_and_how_fresh_their_checkpoint_is(people, settings, tmp_path):
    from audit import keyring
    from audit.cosigning import cosign
    from audit.models import LogInfo
    from audit.store import append
    from audit.witness_local import witness_create
    from tests.audit.factories import noted_event

    checkpoint_create(publish=False)
    log_pem = tmp_path / "log.pem"
    log_pem.write_bytes(keyring.current_signing_key().public_pem())
    log_id = str(LogInfo.objects.get().log_id)
    witness = witness_create(tmp_path / "w", "witness-a", log_id, log_pem).start()
    try:
        settings.AUDIT_COSIGNING_WITNESSES = [witness.setting()]
        page = signed_in(people["compliance_officer"]).get("/integrity/").content.decode()
        assert "no witness yet" in page and "none yet" in page
        cosigned = Checkpoint.objects.order_by("-tree_size").first()
        assert cosign(cosigned) == []
        settings.AUDIT_COSIGNED_STALE_SECONDS = 0  # every cosigned checkpoint is stale once the log grows
        page = signed_in(people["compliance_officer"]).get("/integrity/").content.decode()
        assert "cosigned by</dt><dd>witness-a</dd>" in page
        assert f"tree size {cosigned.tree_size}, " in page and "stale" not in page
        assert "cosigning witness witness-a (127.0.0.1:" in page
        witness.kill()
        grown = noted_event()
        append([grown], expected={grown.stream: 0})
        checkpoint_create(publish=False)  # the log grew, and the witness is away
        page = signed_in(people["compliance_officer"]).get("/integrity/").content.decode()
        assert '<span class="status failed">stale</span>' in page
    finally:
        witness.kill()


def test_the_integrity_page_lists_the_archived_segments(people):
    checkpoint = checkpoint_create(publish=False)
    page = signed_in(people["auditor"]).get("/integrity/").content.decode()
    assert "No partition is archived." in page
    LogSegment.objects.create(  # the projection's row, as audit.SegmentArchived makes it (tests/audit/test_archive.py)
        first_seq=1,
        last_seq=8,
        partition="audit_event_p1",
        file_sha256="a" * 64,
        file_bytes=3_072,
        manifest_sha256="b" * 64,
        tree_size=checkpoint.tree_size,
        archived_seq=checkpoint.tree_size,
        archived_at=timezone.now(),
    )
    page = signed_in(people["auditor"]).get("/integrity/").content.decode()
    assert "1..8" in page and "a" * 64 in page and "3.0\xa0KB" in page
    assert f"tree size {checkpoint.tree_size}" in page and f'href="/log/{checkpoint.tree_size}/"' in page
