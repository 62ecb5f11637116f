"""Old partitions archived to storage as segments: written only when checkpointed, verified before
and after storing, recorded by an event, verifiable offline by the product's verifier; and every
tampering with the file or its manifest is found."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.management import call_command

from audit import checkpoints, merkle, projections
from audit.archive import ArchiveError, partition_archive, partition_states, segment_manifest_read
from audit.keys import SigningKey
from audit.models import Event, LogSegment
from audit.rotation import signing_key_rotate
from audit.segment import SegmentInvalid, event_line, segment_verify
from audit.selectors import signing_keys
from audit.store import SYSTEM_ACTOR, append
from audit.verification import KeyRange, KeySchedule
from audit.verify import verify_log
from tests.audit.factories import ALICE, noted_event, policy_event
from tests.audit.test_evidence import _verifier
from tests.owner import as_owner

SIZE = 8


@pytest.fixture
def log(committed_log, settings):
    """30 events over partitions of 8 (a key rotation at seq 12), checkpointed at 30."""
    settings.AUDIT_PARTITION_EVENTS = SIZE
    version = 0
    for index in range(28):
        if index == 11:
            signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="rotation")
            continue
        append([policy_event("credit")], expected={("policy", "credit"): version})
        version += 1
    append([noted_event("big", summary="drift on income " * 300)], expected={("note", "big"): 0})
    append([noted_event("last")], expected={("note", "last"): 0})
    checkpoints.checkpoint_create(publish=False)
    return {s.name: s for s in partition_states()}


def _name(states: dict, first_seq: int) -> str:
    return next(name for name, state in states.items() if state.first_seq == first_seq)


def _stored(digest: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "blobs" / digest


def _keys() -> KeySchedule:
    return KeySchedule(signing_keys())


def test_checkpointed_partitions_archive_as_segments_holding_their_events_lines(log):
    states = partition_states()
    archivable = [s for s in states if s.blocker is None]
    assert [(s.first_seq, s.last_seq) for s in archivable] == [(1, 8), (9, 16), (17, 24)]
    head, *ahead = [s for s in states if s.first_seq > 24]
    assert head.blocker == "it holds the head of the log (seq 30) and is still being written"
    assert ahead and all(s.blocker == "it is made ahead of the log and holds no event yet" for s in ahead)
    for state in archivable:
        segment = partition_archive(state.name, actor=ALICE, reason="cold storage")
        assert (segment.first_seq, segment.last_seq, segment.tree_size) == (state.first_seq, state.last_seq, 30)
        data = _stored(segment.file_sha256).read_bytes()
        assert hashlib.sha256(data).hexdigest() == segment.file_sha256 and len(data) == segment.file_bytes
        rows = Event.objects.filter(seq__range=(state.first_seq, state.last_seq)).order_by("seq")
        expected = b"".join(event_line(bytes(r.canonical), bytes(r.hash), bytes(r.signature)) for r in rows)
        assert gzip.decompress(data) == expected  # zcat gives the bundle's events.jsonl lines
        recorded = Event.objects.get(seq=segment.archived_seq)
        assert recorded.event_type == "audit.SegmentArchived" and recorded.actor_id == "alice"
        assert recorded.payload["file_sha256"] == segment.file_sha256
    assert verify_log(workers=1).ok


def test_the_manifest_ties_the_segment_to_the_signed_checkpoint(log):
    segment = partition_archive(_name(log, 9), actor=ALICE)
    manifest = segment_manifest_read(segment)
    leaves = [bytes(h) for h in Event.objects.filter(seq__lte=30).order_by("seq").values_list("leaf_hash", flat=True)]
    reference = merkle.LeafNodes(leaves)  # the whole tree in memory, independently of the stored nodes
    assert [tuple(s[:2]) for s in manifest["subtrees"]] == [(3, 1)]  # leaves 8..15: one subtree of 8
    assert manifest["subtrees"][0][2] == reference(3, 1).hex()
    assert manifest["checkpoint"]["root_hash"] == merkle.tree_hash(leaves).hex()
    # the subtree's path is the path of its first leaf above the subtree (RFC 9162's own proof)
    leaf_path = merkle.inclusion_proof(8, 30, reference)
    assert manifest["paths"][0] == [step.hex() for step in leaf_path[3:]]
    assert manifest["prev_hash"] == bytes(Event.objects.get(seq=8).hash).hex()


def test_an_archived_segment_verifies_when_read_back_and_offline(log, tmp_path):
    first = partition_archive(_name(log, 1), actor=ALICE)
    partition_archive(_name(log, 9), actor=ALICE)
    out = io.StringIO()
    call_command("audit_archive", "--verify", stdout=out)
    assert "segment 1 to 8: OK, 8 events verified" in out.getvalue()
    assert "segment 9 to 16: OK, 8 events verified" in out.getvalue()

    copied = tmp_path / "segment"
    call_command("audit_archive", "--copy-out", str(first.first_seq), "--out", str(copied), stdout=io.StringIO())
    genesis, current = (_pem(tmp_path / f"{k.key_id}.pem", k.public_raw) for k in signing_keys())
    # the segment's events are signed by the first key, its checkpoint by the second: trust in
    # either reaches the checkpoint (the rotation between them is proven in its tree)
    for trusted in (genesis, current):
        valid = _verifier("--segment", str(copied), "--trusted-key", str(trusted))
        assert valid.returncode == 0, valid.stdout + valid.stderr
        assert valid.stdout.startswith("VALID: 8 events (seq 1..8)") and "tree size 30" in valid.stdout
    alone = _verifier("--segment", str(copied))
    assert alone.returncode == 3 and alone.stdout.startswith("INTERNALLY CONSISTENT, NOT AUTHENTICATED")
    stranger = _pem(tmp_path / "stranger.pem", SigningKey.generate().public_raw)
    refused = _verifier("--segment", str(copied), "--trusted-key", str(stranger))
    assert refused.returncode == 1 and "not a trusted key" in refused.stderr, refused.stderr
    mixed = _verifier("--segment", str(copied), "--trusted-key", str(current), "--quorum", "1")
    assert mixed.returncode == 2 and "for bundles, not --segment" in mixed.stderr

    (copied / "events.jsonl.gz").write_bytes(_regzipped(copied / "events.jsonl.gz", lambda lines: lines[:-1]))
    broken = _verifier("--segment", str(copied), "--trusted-key", str(current))
    assert broken.returncode == 1 and broken.stderr.startswith("INVALID: events.jsonl.gz"), broken.stderr


def test_offline_the_key_schedule_must_be_the_one_the_checkpoint_proves(log, tmp_path):
    """keys.json is not signed: the rotations, proven in the checkpoint's tree, decide. A copy that
    hides the rotation, or shortens a key's range, is refused."""
    partition_archive(_name(log, 9), actor=ALICE)
    current = _pem(tmp_path / "current.pem", signing_keys()[1].public_raw)
    keys = [dict(k) for k in orjson.loads(_copied(tmp_path / "whole", 9).joinpath("keys.json").read_bytes())]
    cases = {
        "the rotation hidden": ([dict(keys[0], valid_to_seq=None)], None, "is not in keys.json"),
        "the first key cut short": ([dict(keys[0], valid_to_seq=1), keys[1]], None, "not the key keys.json assigns"),
        "the rotation and its key hidden": ([dict(keys[0], valid_to_seq=None)], b"", "is not in keys.json"),
    }
    for name, (listed, rotations, expected) in cases.items():
        copied = _copied(tmp_path / name.replace(" ", "-"), 9)
        (copied / "keys.json").write_bytes(_canon(listed))
        if rotations is not None:
            (copied / "rotations.jsonl").write_bytes(rotations)
            (copied / "rotation_proofs.jsonl").write_bytes(rotations)
        answer = _verifier("--segment", str(copied), "--trusted-key", str(current))
        assert answer.returncode == 1 and expected in answer.stderr, (name, answer.stderr)
    proofs = _copied(tmp_path / "bad-proof", 9) / "rotation_proofs.jsonl"
    proof = orjson.loads(proofs.read_bytes())
    proof["path"][0] = "0" * 64
    proofs.write_bytes(_canon(proof) + b"\n")
    answer = _verifier("--segment", str(proofs.parent), "--trusted-key", str(current))
    assert answer.returncode == 1 and answer.stderr.startswith("INVALID: rotation_proofs.jsonl seq 12"), answer.stderr


def _copied(out: Path, first_seq: int) -> Path:
    call_command("audit_archive", "--copy-out", str(first_seq), "--out", str(out), stdout=io.StringIO())
    return out


def _pem(path: Path, raw: bytes) -> Path:
    path.write_bytes(_public_pem(raw))
    return path


def test_a_second_archiver_is_refused_while_one_runs(log):
    import psycopg

    from audit.archive import ARCHIVE_LOCK_KEY
    from audit.verify import _conninfo

    with psycopg.connect(_conninfo(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ARCHIVE_LOCK_KEY])
        with pytest.raises(ArchiveError, match="another audit_archive is archiving now"):
            partition_archive(_name(log, 1), actor=ALICE)
        other.execute("SELECT pg_advisory_unlock(%s)", [ARCHIVE_LOCK_KEY])  # not left to the backend's exit
    assert partition_archive(_name(log, 1), actor=ALICE).first_seq == 1


def test_a_segment_changed_in_storage_fails_verification(log):
    segment = partition_archive(_name(log, 17), actor=ALICE)
    path = _stored(segment.file_sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--verify", stdout=out)
    assert exited.value.code == 1
    assert "segment 17 to 24: FAILED" in out.getvalue()


def _manifest_and_data(log) -> tuple[dict, bytes]:
    segment = partition_archive(_name(log, 9), actor=ALICE)
    return segment_manifest_read(segment), _stored(segment.file_sha256).read_bytes()


def _refused(manifest: dict, data: bytes, keys: KeySchedule | None = None) -> SegmentInvalid:
    with pytest.raises(SegmentInvalid) as refused:
        segment_verify(io.BytesIO(data), manifest, keys=keys or _keys())
    return refused.value


def _rewritten(manifest: dict, lines: list[bytes]) -> tuple[dict, bytes]:
    """The lines as a new one-block file, with the manifest's file facts made to match."""
    data = gzip.compress(b"".join(lines), mtime=0)
    changed = dict(manifest, file_sha256=hashlib.sha256(data).hexdigest(), file_bytes=len(data))
    changed["blocks"] = [[manifest["first_seq"], 0, len(data)]]
    return changed, data


def test_each_change_to_a_segments_events_is_found_at_its_seq(log):
    manifest, data = _manifest_and_data(log)
    lines = gzip.decompress(data).splitlines(keepends=True)
    assert segment_verify(io.BytesIO(_rewritten(manifest, lines)[1]), _rewritten(manifest, lines)[0], keys=_keys())

    swapped = [*lines[:2], lines[3], lines[2], *lines[4:]]
    assert _refused(*_rewritten(manifest, swapped)).seq == 11
    assert "the log ends early" in _refused(*_rewritten(manifest, lines[:-1])).reason
    assert "more events" in _refused(*_rewritten(manifest, [*lines, lines[-1]])).reason

    # an event's payload changed and its hash recomputed: the signature no longer verifies
    event = orjson.loads(lines[4])["event"]
    event["payload"]["summary"] = "floor 0.9"
    canonical = _canon(event)
    signature = base64.b64decode(orjson.loads(lines[4])["signature"])
    forged = event_line(canonical, hashlib.sha256(canonical).digest(), signature)
    refused = _refused(*_rewritten(manifest, [*lines[:4], forged, *lines[5:]]))
    assert refused.seq == 13 and "signature does not verify" in refused.reason

    assert _refused(manifest, data, KeySchedule([KeyRange("k", SigningKey.generate().public_raw, 1, None)]))


def test_each_change_to_a_segments_manifest_is_found(log):
    manifest, data = _manifest_and_data(log)
    assert segment_verify(io.BytesIO(data), manifest, keys=_keys()) == 8
    other = "0" * 64
    cases = {
        "its SHA-256 differs": dict(manifest, file_sha256=other),
        "not in the checkpoint's tree": dict(manifest, subtrees=[[3, 1, other]]),
        "signature does not verify": dict(manifest, checkpoint=dict(manifest["checkpoint"], root_hash=other)),
        "does not cover seq": dict(manifest, checkpoint=dict(manifest["checkpoint"], tree_size=12)),
        "where the manifest lists none": dict(manifest, blocks=[[9, 5, 100]]),
        "the subtrees are not those": dict(manifest, first_seq=10),
        "members differ": {k: v for k, v in manifest.items() if k != "paths"},
        "prev_hash does not equal": dict(manifest, prev_hash=other),
        "last_hash is not the hash": dict(manifest, last_hash=other),
        "not as long or as full": dict(manifest, blocks=[[9, 0, 1]]),
        "as full as the manifest says": dict(manifest, block_events=1),
        "subtrees must be a list": dict(manifest, subtrees=[[3, 1]]),
        "subtrees must be a list of": dict(manifest, subtrees=[[3.0, 1, manifest["subtrees"][0][2]]]),
        "blocks must be a list": dict(manifest, blocks=None),
        "each path is a list": dict(manifest, paths=["x"]),
        "does not cover seq 16": dict(manifest, checkpoint=dict(manifest["checkpoint"], tree_size=2**60)),
        "is not a key of the log": dict(manifest, checkpoint=dict(manifest["checkpoint"], key_id="nobody")),
    }
    for expected, changed in cases.items():
        assert expected in str(_refused(changed, data)), expected


def test_a_partition_is_archived_only_when_checkpointed_and_only_once(log):
    head = next(s for s in log.values() if s.first_seq <= 30 <= s.last_seq)
    with pytest.raises(ArchiveError, match="holds the head of the log"):
        partition_archive(head.name, actor=ALICE)
    for version in range(1, 4):  # the head moves on past the partition; the checkpoint does not
        append([noted_event("last")], expected={("note", "last"): version})
    with pytest.raises(ArchiveError, match=r"past the latest checkpoint \(30 events\); beat signs one every minute"):
        partition_archive(head.name, actor=ALICE)
    with pytest.raises(ArchiveError, match="no partition 'audit_event_nope'"):
        partition_archive("audit_event_nope", actor=ALICE)
    partition_archive(_name(log, 1), actor=ALICE)
    with pytest.raises(ArchiveError, match="archived already"):
        partition_archive(_name(log, 1), actor=ALICE)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--archive", head.name, stderr=err)
    assert exited.value.code == 1 and "cannot be archived yet" in err.getvalue()
    assert LogSegment.objects.count() == 1
    assert Event.objects.filter(event_type="audit.SegmentArchived").count() == 1


def test_archive_all_takes_every_archivable_partition_and_the_list_says_why_not_the_rest(log):
    out = io.StringIO()
    call_command("audit_archive", "--archive-all", "--reason", "quarterly", stdout=out)
    assert out.getvalue().count("Archived ") == 3
    listing = io.StringIO()
    call_command("audit_archive", stdout=listing)
    lines = listing.getvalue().splitlines()
    assert sum("archived: " in line for line in lines) == 3
    expected = "seqs 25 to 32  not archivable yet: its last seq 32 is past the latest checkpoint (30"
    assert any(expected in line for line in lines)
    again = io.StringIO()
    call_command("audit_archive", "--archive-all", stdout=again)
    assert "No partition can be archived now" in again.getvalue()


def test_a_partition_named_twice_is_archived_once(log):
    out = io.StringIO()
    call_command("audit_archive", "--archive", _name(log, 1), "--archive", _name(log, 1), stdout=out)
    assert out.getvalue().count("Archived ") == 1
    assert Event.objects.filter(event_type="audit.SegmentArchived").count() == 1


def test_nothing_is_recorded_when_the_segment_cannot_be_stored(log, settings, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the storage's root should be")
    settings.MEDIA_ROOT = str(blocked)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--archive", _name(log, 1), stderr=err)
    assert exited.value.code == 1 and "could not be stored" in err.getvalue()
    assert not LogSegment.objects.exists()
    assert not Event.objects.filter(event_type="audit.SegmentArchived").exists()


def test_the_segment_table_is_rebuilt_from_the_log(log):
    partition_archive(_name(log, 1), actor=ALICE)
    partition_archive(_name(log, 9), actor=ALICE)
    before = list(LogSegment.objects.order_by("first_seq").values())
    assert projections.rebuild(["audit.segments"]) == {"audit.segments": 2}
    assert list(LogSegment.objects.order_by("first_seq").values()) == before


def test_copy_out_refuses_a_missing_segment_or_a_used_directory(log, tmp_path):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--copy-out", "9", "--out", str(tmp_path / "x"), stderr=err)
    assert exited.value.code == 2 and "no segment starts at seq 9" in err.getvalue()
    partition_archive(_name(log, 9), actor=ALICE)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "other.txt").write_text("x")
    with pytest.raises(SystemExit):
        call_command("audit_archive", "--copy-out", "9", "--out", str(tmp_path / "used"), stderr=err)
    assert "must be a new or empty directory" in err.getvalue()


def _canon(value: dict) -> bytes:
    from audit.canonical import canonicalize

    return canonicalize(value)


def _public_pem(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _regzipped(path: Path, change) -> bytes:
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    return gzip.compress(b"".join(change(lines)), mtime=0)


def test_a_partition_whose_events_were_changed_is_not_archived_and_leaves_nothing(log):
    """A superuser changed a stored event after the checkpoint: the segment written from it does
    not verify, so no event is recorded and the stored file is taken back."""
    row = Event.objects.get(seq=5)
    changed = bytes(row.canonical).replace(b"floor 0.2", b"floor 0.9")
    as_owner(
        "UPDATE audit_event SET canonical = %s, hash = %s WHERE seq = 5",
        [changed, hashlib.sha256(changed).digest()],
    )
    with pytest.raises(ArchiveError, match="does not verify, so nothing was recorded") as refused:
        partition_archive(_name(log, 1), actor=ALICE)
    assert "seq 1: the subtree from seq 1 is not in the checkpoint's tree" in str(refused.value)
    assert not LogSegment.objects.exists()
    assert not Event.objects.filter(event_type="audit.SegmentArchived").exists()
    assert not list((Path(settings.MEDIA_ROOT) / "blobs").iterdir())


@pytest.mark.parametrize("damage", ["truncated", "replaced"])
def test_copy_out_of_a_damaged_segment_fails_and_names_the_restore(log, tmp_path, damage):
    segment = partition_archive(_name(log, 9), actor=ALICE)
    stored = _stored(segment.file_sha256)
    body = stored.read_bytes()
    if damage == "truncated":
        stored.write_bytes(body[:100])
    else:  # the same size, one byte changed
        stored.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--copy-out", "9", "--out", str(tmp_path / "out"), stderr=err)
    assert exited.value.code == 1 and "is not the one archived" in err.getvalue()
    assert "--restore 9" in err.getvalue()
    assert not (tmp_path / "out").exists()


def test_copy_out_of_a_segment_missing_from_storage_fails_and_leaves_no_directory(log, tmp_path):
    segment = partition_archive(_name(log, 9), actor=ALICE)
    _stored(segment.file_sha256).unlink()
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--copy-out", "9", "--out", str(tmp_path / "out"), stderr=err)
    assert exited.value.code == 1 and "could not be copied out" in err.getvalue()
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--out", str(tmp_path / "out"), stderr=err)
    assert exited.value.code == 2 and "--out goes with --copy-out" in err.getvalue()
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("audit_archive", "--verify", stdout=out)
    assert "segment 9 to 16: FAILED" in out.getvalue()


def test_a_segment_still_verifies_offline_after_a_later_key_rotation(log, tmp_path):
    """keys.json as of the segment's checkpoint: a rotation after it is not the segment's business."""
    partition_archive(_name(log, 1), actor=ALICE)
    signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="after the archive")
    copied = _copied(tmp_path / "after", 1)
    assert len(orjson.loads((copied / "keys.json").read_bytes())) == 2 and len(signing_keys()) == 3
    for key in signing_keys()[:2]:
        trusted = _pem(tmp_path / f"{key.key_id}.pem", key.public_raw)
        answer = _verifier("--segment", str(copied), "--trusted-key", str(trusted))
        assert answer.returncode == 0 and answer.stdout.startswith("VALID: 8 events"), answer.stderr


def test_malformed_segment_files_are_invalid_not_a_traceback(log, tmp_path):
    partition_archive(_name(log, 9), actor=ALICE)
    current = _pem(tmp_path / "current.pem", signing_keys()[1].public_raw)
    manifest = orjson.loads(_copied(tmp_path / "whole", 9).joinpath("manifest.json").read_bytes())
    changes = {
        "manifest.json": [
            _canon(dict(manifest, checkpoint=dict(manifest["checkpoint"], key_id=[]))),
            orjson.dumps(dict(manifest, first_seq=2**60)),
            b"[]",
        ],
        "keys.json": [orjson.dumps([{"valid_from_seq": 2**60}]), b"{}"],
        "rotations.jsonl": [b"not json\n"],
    }
    for index, (name, content) in enumerate((n, c) for n, contents in changes.items() for c in contents):
        copied = _copied(tmp_path / f"case-{index}", 9)
        (copied / name).write_bytes(content)
        answer = _verifier("--segment", str(copied), "--trusted-key", str(current))
        assert answer.returncode == 1 and answer.stderr.startswith("INVALID: "), (name, content, answer.stderr)
        assert "Traceback" not in answer.stderr


def test_a_segment_lost_from_storage_is_remade_from_the_log_byte_for_byte(log):
    segment = partition_archive(_name(log, 9), actor=ALICE)
    original = _stored(segment.file_sha256).read_bytes()
    manifest = _stored(segment.manifest_sha256).read_bytes()
    _stored(segment.file_sha256).unlink()
    _stored(segment.manifest_sha256).write_bytes(b"damaged")
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("audit_archive", "--verify", stdout=out)
    assert "FAILED" in out.getvalue()
    call_command("audit_archive", "--restore", "9", stdout=out)
    assert _stored(segment.file_sha256).read_bytes() == original
    assert _stored(segment.manifest_sha256).read_bytes() == manifest
    out = io.StringIO()
    call_command("audit_archive", "--verify", stdout=out)
    assert "segment 9 to 16: OK, 8 events verified" in out.getvalue()
    assert Event.objects.filter(event_type="audit.SegmentArchived").count() == 1  # nothing new happened
    written = _stored(segment.file_sha256).stat().st_mtime_ns
    out = io.StringIO()
    call_command("audit_archive", "--restore", "9", stdout=out)  # a sound copy is kept, not rewritten
    assert _stored(segment.file_sha256).stat().st_mtime_ns == written
    assert out.getvalue().startswith("Kept the stored segment (its SHA-256 is the archived one) of seqs 9 to 16")


def test_a_replaced_segment_file_is_named_as_such(log):
    first = partition_archive(_name(log, 1), actor=ALICE)
    second = partition_archive(_name(log, 9), actor=ALICE)
    _stored(first.file_sha256).write_bytes(_stored(second.file_sha256).read_bytes() + b"x")
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("audit_archive", "--verify", stdout=out)
    assert "it was replaced" in out.getvalue() and "segment 9 to 16: OK" in out.getvalue()
    _stored(first.file_sha256).unlink()
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("audit_archive", "--verify", stdout=out)
    assert "is missing from storage (audit_archive --restore remakes it)" in out.getvalue()


def test_mistaken_commands_are_usage_errors_with_a_hint(log, tmp_path):
    partition_archive(_name(log, 1), actor=ALICE)
    for arguments, expected in (
        (["--archive", "p1"], "the log has no partition p1; its partitions: audit_event_p1, "),
        (
            ["--copy-out", "5", "--out", str(tmp_path / "x")],
            "no segment starts at seq 5 (seq 5 lies in the segment from seq 1)",
        ),
        (["--restore", "9"], "no segment starts at seq 9 (see audit_archive)"),
        (["--verify", "--reason", "why"], "--reason and --actor go with --archive"),
    ):
        err = io.StringIO()
        with pytest.raises(SystemExit) as exited:
            call_command("audit_archive", *arguments, stderr=err)
        assert exited.value.code == 2 and expected in err.getvalue(), (arguments, err.getvalue())
    copied = _copied(tmp_path / "segment", 1)
    not_a_directory = _verifier("--segment", str(copied / "manifest.json"))
    assert not_a_directory.returncode == 2 and "is not a directory" in not_a_directory.stderr
    no_flag = _verifier(str(copied))
    assert no_flag.returncode == 2 and "for a segment, add --segment" in no_flag.stderr


@pytest.mark.parametrize(("option", "value"), [("--reason", "  "), ("--actor", ""), ("--actor", " \t")])
def test_archiving_refuses_a_blank_reason_or_actor(log, option, value):
    """The event records them for good; a blank actor became "operator" silently."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_archive", "--archive", _name(log, 1), option, value, stderr=err)
    assert exited.value.code == 2 and f"{option} must not be blank" in err.getvalue()
    assert not LogSegment.objects.exists()
    assert not Event.objects.filter(event_type="audit.SegmentArchived").exists()
