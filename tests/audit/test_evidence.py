"""Evidence bundles: exported exactly as docs/evidence-format.md says, verified offline, and every
kind of tampering rejected with the right reason."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import resource
import signal
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from django.core.management import call_command

from audit import checkpoints, evidence, keyring
from audit.blobs import blob_save
from audit.evidence import EvidenceError, EvidenceQuery, evidence_export
from audit.keys import SigningKey
from audit.models import Checkpoint, Event
from audit.rotation import signing_key_rotate
from audit.store import SYSTEM_ACTOR, Actor, NewEvent, append
from audit.verifier import BundleInvalid, verify_bundle
from tests.audit.factories import ALICE, Noted, Signed

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = Actor("user", "ada", "Ada Auditor")
pytestmark = pytest.mark.django_db


def _run(model: str, index: int) -> tuple:
    """A model's measurement referring to a data file, and a follow-up on the same stream."""
    run_id = str(uuid.uuid4())
    digest = blob_save(json.dumps({"run": run_id, "ks": [0.1, 0.2]}).encode())
    started = Noted(model=model, summary=f"measured {index}", detail={"n": index})
    completed = Noted(model=model, summary="drift in income", severity="critical", data_digest=digest)
    (first,) = append([NewEvent("run", run_id, started, ALICE)], expected={("run", run_id): 0})
    (second,) = append([NewEvent("run", run_id, completed, ALICE)], expected={("run", run_id): 1})
    return first, second


@pytest.fixture
def genesis_key():
    return keyring.current_signing_key()


@pytest.fixture
def log(genesis_key):
    """Two models' histories, a key rotation in the middle, a signed decision caused by a finding."""
    for index in range(6):
        _run("credit", index)
        _run("churn", index)
        if index == 2:
            signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="rotation")
    finding_id = str(uuid.uuid4())
    (raised,) = append(
        [NewEvent("finding", finding_id, Noted(model="credit", summary="PSI 0.31", severity="critical"), ALICE)],
        expected={("finding", finding_id): 0},
    )
    decision_id = str(uuid.uuid4())
    append(
        [
            NewEvent(
                "decision",
                decision_id,
                Signed(signer_name="Bob Okafor", meaning="approved"),
                Actor("user", "bob", "Bob Okafor"),
                causation_id=raised.event_id,
            )
        ],
        expected={("decision", decision_id): 0},
    )
    return raised


def _pem(key: SigningKey, path: Path) -> Path:
    path.write_bytes(
        key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _export(tmp_path: Path, **query) -> Path:
    out = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}.zip"
    model = query.pop("model", None)
    scopes = (("model", model),) if model else ()
    evidence_export(query=EvidenceQuery(scopes=scopes, **query), out=out, created_by=AUDITOR)
    return out


def test_bundle_layout_and_manifest_follow_the_evidence_format(log, tmp_path, genesis_key):
    bundle = _export(tmp_path, include_data=True)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        manifest_bytes = archive.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        assert rfc8785.dumps(manifest) == manifest_bytes
        assert manifest["format"] == "driftledger-evidence/2"
        assert manifest["created_by"] == "Ada Auditor"
        assert set(manifest["files"]) == names - {"manifest.json", "manifest.sig"}
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest
        lines = archive.read("events.jsonl").splitlines()
        for line in lines:
            assert rfc8785.dumps(json.loads(line)) == line
        proof_lines = archive.read("proofs.jsonl").splitlines()
        for line in proof_lines:
            assert rfc8785.dumps(json.loads(line)) == line
        proofs = [json.loads(line) for line in proof_lines]
        assert [p["seq"] for p in proofs] == [json.loads(line)["event"]["seq"] for line in lines]
        assert all(p["tree_size"] == manifest["checkpoint"]["tree_size"] for p in proofs)
        keys = json.loads(archive.read("keys.json"))
        assert [k["valid_to_seq"] is None for k in keys] == [False, True]
        assert sum(name.startswith("data/") for name in names) == 12
        assert "Bob Okafor" in archive.read("report.html").decode()
        signed = json.loads(archive.read("manifest.sig"))
        assert set(signed) == {"key_id", "signature"}
    report = verify_bundle(bundle, [genesis_key.public_raw])
    assert report.events == len(lines)
    assert report.data_files == 12


def test_model_scope_takes_its_streams_and_their_causes_and_effects(log, tmp_path, genesis_key):
    bundle = _export(tmp_path, model="credit")
    with zipfile.ZipFile(bundle) as archive:
        events = [json.loads(line)["event"] for line in archive.read("events.jsonl").splitlines()]
    models = {e["payload"].get("model") for e in events if e["type"] != "audit.KeyRotated"}
    assert models == {"credit", None}  # None: the signed decision, caused by the credit finding
    assert any(e["type"] == "test.Signed" for e in events)
    assert any(e["type"] == "audit.KeyRotated" for e in events)  # always there, to trace keys
    assert verify_bundle(bundle, [genesis_key.public_raw]).events == len(events)


def test_an_export_read_a_few_events_at_a_time_writes_the_same_files(log, tmp_path, genesis_key, monkeypatch):
    """The selection is read in slices (memory does not grow with the events). Slices of 3
    seqs, each with its own stored nodes and the right edge's steps computed once, give the
    events and data files one slice gives, and each proof is the log's inclusion proof."""
    whole = _export(tmp_path, model="credit", include_data=True)
    monkeypatch.setattr(evidence, "SLICE", 3)
    sliced = _export(tmp_path, model="credit", include_data=True)
    with zipfile.ZipFile(whole) as one, zipfile.ZipFile(sliced) as many:
        assert one.read("events.jsonl") == many.read("events.jsonl")
        assert len(many.read("events.jsonl").splitlines()) > 3 * 4  # many slices
        data = sorted(n for n in one.namelist() if n.startswith("data/"))
        assert data and data == sorted(n for n in many.namelist() if n.startswith("data/"))
        proofs = [json.loads(line) for line in many.read("proofs.jsonl").splitlines()]
    size = proofs[0]["tree_size"]
    assert size & (size - 1)  # not a power of two: paths hold steps past the right edge
    for proof in proofs:
        assert proof["path"] == [step.hex() for step in checkpoints.inclusion_proof(proof["seq"], size)]
    trusted = [genesis_key.public_raw]
    assert verify_bundle(sliced, trusted).events == verify_bundle(whole, trusted).events


def test_second_export_carries_the_earlier_checkpoint_with_a_consistency_proof(log, tmp_path, genesis_key):
    _export(tmp_path)
    _run("credit", 99)
    bundle = _export(tmp_path)
    assert verify_bundle(bundle, [genesis_key.public_raw]).earlier_checkpoints == 1


def test_bad_queries_are_refused_and_write_nothing(log, tmp_path):
    out = tmp_path / "new-folder" / "never.zip"
    with pytest.raises(EvidenceError, match="no event matches"):
        evidence_export(query=EvidenceQuery(scopes=(("model", "no-such-model"),)), out=out, created_by=AUDITOR)
    assert not out.parent.exists()  # not even the folder
    import datetime as dt

    later, earlier = dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with pytest.raises(EvidenceError, match="since must not be after"):
        evidence_export(query=EvidenceQuery(since=later, until=earlier), out=out, created_by=AUDITOR)
    assert not out.exists()
    assert list(tmp_path.glob(".evidence-*")) == []


def test_a_query_that_matches_only_key_rotations_exports_them(log, tmp_path, genesis_key):
    bundle = _export(tmp_path, streams=(("audit.keys", "signing-keys"),))
    report = verify_bundle(bundle, [genesis_key.public_raw])
    with zipfile.ZipFile(bundle) as archive:
        kinds = [json.loads(line)["event"]["type"] for line in archive.read("events.jsonl").splitlines()]
    assert kinds and set(kinds) == {"audit.KeyRotated"} and report.events == len(kinds)


def test_a_bundle_that_is_not_delivered_is_neither_recorded_nor_left_behind(log, tmp_path):
    def store_down(path: Path) -> None:
        raise OSError("the store is down")

    out = tmp_path / "out" / "undelivered.zip"
    recorded = Event.objects.filter(event_type="audit.EvidenceExported").count()
    with pytest.raises(OSError, match="the store is down"):
        evidence_export(query=EvidenceQuery(), out=out, created_by=AUDITOR, deliver=store_down)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert Event.objects.filter(event_type="audit.EvidenceExported").count() == recorded
    with pytest.raises(EvidenceError, match="non-empty id and name"):
        evidence_export(query=EvidenceQuery(), out=out, created_by=Actor("user", "ada", ""))
    assert not out.exists()


def test_export_evidence_command_validates_its_arguments(log, tmp_path):
    checkpoints_before = Checkpoint.objects.count()
    for args, message in (
        (["--since", "yesterday"], "invalid argument"),
        (["--stream", "no-colon"], "must be TYPE:ID"),
        (["--until", "9999-12-31T23:59:59-01:00"], "between the years 1 and 9999 in UTC"),
        (["--since", "0001-01-01T00:00:00+01:00"], "between the years 1 and 9999 in UTC"),
        (["--created-by", ""], "--created-by must name who exports"),
        (["--out", str(tmp_path)], "is a folder"),
    ):
        stderr = io.StringIO()
        with pytest.raises(SystemExit) as exited:
            call_command("export_evidence", "--out", str(tmp_path / "x.zip"), *args, stderr=stderr)
        assert exited.value.code == 2
        assert message in stderr.getvalue()
    assert Checkpoint.objects.count() == checkpoints_before  # refused before any work
    assert not (tmp_path / "x.zip").exists()
    stdout = io.StringIO()
    call_command(
        "export_evidence", "--out", str(tmp_path / "ok.zip"), "--model", "churn", "--since", "2020-01-01", stdout=stdout
    )
    assert "events, checkpoint of tree size" in stdout.getvalue()


def test_export_evidence_command_never_overwrites_a_file(log, tmp_path):
    """A bundle handed to an auditor is named in the log by its SHA-256: a second export to the
    same name is refused, before any work, and the first bundle stays as it was."""
    out = tmp_path / "credit.zip"
    call_command("export_evidence", "--out", str(out), "--model", "churn", stdout=io.StringIO())
    first, exported = out.read_bytes(), Event.objects.filter(event_type="audit.EvidenceExported").count()
    (tmp_path / "link.zip").symlink_to(tmp_path / "nowhere.zip")
    for taken in (out, tmp_path / "link.zip"):
        stderr = io.StringIO()
        with pytest.raises(SystemExit) as exited:
            call_command("export_evidence", "--out", str(taken), "--model", "churn", stderr=stderr)
        assert exited.value.code == 2
        assert f"--out {taken} exists" in stderr.getvalue()
    assert out.read_bytes() == first and not (tmp_path / "nowhere.zip").exists()
    assert Event.objects.filter(event_type="audit.EvidenceExported").count() == exported
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.endswith(".zip")) == ["credit.zip", "link.zip"]


def test_an_export_that_must_not_overwrite_loses_a_race_without_harm(log, tmp_path):
    """Another process wrote the file while this bundle was written: this one is refused and
    removed, and not recorded."""
    out = tmp_path / "exports" / "credit.zip"
    exported = Event.objects.filter(event_type="audit.EvidenceExported").count()
    query = EvidenceQuery(scopes=(("model", "churn"),))
    with pytest.raises(EvidenceError, match="exists"):
        evidence_export(query=query, out=out, created_by=AUDITOR, progress=lambda *_: out.write_bytes(b"theirs"),
                        overwrite=False)  # fmt: skip
    assert out.read_bytes() == b"theirs" and [p.name for p in out.parent.iterdir()] == ["credit.zip"]
    assert Event.objects.filter(event_type="audit.EvidenceExported").count() == exported


def test_a_payload_that_holds_a_rotations_type_is_not_taken_for_a_rotation(log, tmp_path, genesis_key):
    """Anyone who may write a free-form value could nest {"type": "audit.KeyRotated"} in an
    event; the verifier takes rotations from envelopes' own type, so the bundle still verifies."""
    stream = str(uuid.uuid4())
    nested = Noted(model="credit", summary="x", detail={"type": "audit.KeyRotated", "new_key_id": "ffff"})
    append([NewEvent("note", stream, nested, ALICE)], expected={("note", stream): 0})
    bundle = _export(tmp_path)
    assert _contains(bundle, b'"detail":{"new_key_id":"ffff","type":"audit.KeyRotated"}')
    report = verify_bundle(bundle, [genesis_key.public_raw])
    assert report.events == _count(bundle)


def test_a_key_rotated_while_a_bundle_is_written_stays_out_of_it(log, tmp_path, genesis_key):
    """keys.json is the key schedule as of the bundle's checkpoint, and the manifest is signed by
    a key that schedule holds: a rotation that lands while the events are written belongs to a
    later checkpoint."""
    rotated = []

    def rotate_once(done: int, total: int) -> None:
        if not rotated:
            rotated.append(signing_key_rotate(new_key=SigningKey.generate(), actor=SYSTEM_ACTOR, reason="mid-export"))

    out = tmp_path / "during.zip"
    summary = evidence_export(query=EvidenceQuery(), out=out, created_by=AUDITOR, progress=rotate_once)
    assert rotated and keyring.current_signing_key().key_id not in _listed_keys(out)
    report = verify_bundle(out, [genesis_key.public_raw])
    assert report.events == summary.events and report.tree_size == summary.tree_size
    after = _export(tmp_path)  # the next bundle has the new key and its rotation
    assert keyring.current_signing_key().key_id in _listed_keys(after)
    assert (
        verify_bundle(after, [genesis_key.public_raw]).events == summary.events + 2
    )  # the rotation, and the first export recorded


def test_a_process_that_still_holds_a_retired_key_signs_with_the_logs_current_one(
    log, tmp_path, monkeypatch, genesis_key
):
    """Another process rotated the key; this one (a worker up since) still caches the retired
    key, which must sign nothing any more. The checkpoint reloads it, and the manifest is signed
    by the checkpoint's key."""
    retired = keyring.current_signing_key()
    current = SigningKey.generate()
    signing_key_rotate(new_key=current, actor=SYSTEM_ACTOR, reason="rotated elsewhere")
    monkeypatch.setattr(keyring, "_cached", (keyring.signing_key_path(), retired))
    bundle = _export(tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        signed_by = json.loads(archive.read("manifest.sig"))["key_id"]
        checkpoint_key = json.loads(archive.read("manifest.json"))["checkpoint"]["key_id"]
    assert signed_by == checkpoint_key == current.key_id != retired.key_id
    assert verify_bundle(bundle, [genesis_key.public_raw]).events == _count(bundle)


def _listed_keys(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as archive:
        return [entry["key_id"] for entry in json.loads(archive.read("keys.json"))]


def test_a_bundle_that_cannot_be_written_fails_at_once_and_leaves_nothing(log, tmp_path, monkeypatch):
    """A full disk (here: a limit on the size of the files this process writes) fails the export
    with its error, promptly: the thread that writes stops, and so does the producer that feeds
    it, instead of waiting for ever on a queue that no one reads."""
    monkeypatch.setattr(evidence, "BLOCK_BYTES", 512)
    monkeypatch.setattr(evidence, "QUEUED_BLOCKS", 1)
    for index in range(100):
        _run("credit", 100 + index)
    out = tmp_path / "full.zip"

    def hung(signum, frame):
        raise TimeoutError("the export hung")

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGALRM, hung)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, hard))
    signal.alarm(60)
    try:
        with pytest.raises(OSError) as failed:
            evidence_export(query=EvidenceQuery(), out=out, created_by=AUDITOR)
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGALRM, previous)
    assert failed.value.errno == errno.EFBIG
    assert not out.exists() and list(tmp_path.glob(".evidence-*")) == []


def _contains(bundle: Path, text: bytes) -> bool:
    with zipfile.ZipFile(bundle) as archive:
        return text in archive.read("events.jsonl")


def _count(bundle: Path) -> int:
    with zipfile.ZipFile(bundle) as archive:
        return len(archive.read("events.jsonl").splitlines())


def test_standalone_verifier_runs_without_django_and_reports(log, tmp_path, genesis_key):
    bundle = _export(tmp_path, include_data=True)
    pem = _pem(genesis_key, tmp_path / "trusted.pem")
    script = (
        "import sys, runpy; sys.modules['django'] = None; sys.modules['psycopg'] = None; sys.modules['orjson'] = None;"
        "sys.argv = ['audit.verifier', *sys.argv[1:]]; runpy.run_module('audit.verifier', run_name='__main__')"
    )
    ok = subprocess.run(
        [sys.executable, "-c", script, str(bundle), "--trusted-key", str(pem)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("VALID: ")
    stranger = _pem(SigningKey.generate(), tmp_path / "stranger.pem")
    refused = subprocess.run(
        [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(stranger)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith("INVALID: ")
    bad_usage = subprocess.run(
        [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", "/nope.pem"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad_usage.returncode == 2


# ---- tampering -------------------------------------------------------------------------------


def _rewrite(bundle: Path, out: Path, change, *, resign_with: SigningKey | None = None) -> Path:
    """Copy the bundle applying change(files: dict) -> None; optionally re-hash and re-sign the
    manifest, as an insider holding a signing key would, so that deeper checks are reached."""
    with zipfile.ZipFile(bundle) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    change(files)
    if resign_with is not None:
        manifest = json.loads(files["manifest.json"])
        manifest["files"] = {
            name: hashlib.sha256(data).hexdigest()
            for name, data in files.items()
            if name not in ("manifest.json", "manifest.sig")
        }
        files["manifest.json"] = rfc8785.dumps(manifest)
        signature = base64.b64encode(resign_with.sign(files["manifest.json"])).decode()
        files["manifest.sig"] = rfc8785.dumps({"key_id": resign_with.key_id, "signature": signature})
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out


def _rejected(bundle: Path, trusted: SigningKey, **options) -> BundleInvalid:
    with pytest.raises(BundleInvalid) as caught:
        verify_bundle(bundle, [trusted.public_raw], workers=2, **options)
    return caught.value


def _lines(files: dict, name: str) -> list[bytes]:
    return files[name].splitlines()


def _set_lines(files: dict, name: str, lines: list[bytes]) -> None:
    files[name] = b"".join(line + b"\n" for line in lines)


def _change_event_byte(files: dict) -> None:
    lines = _lines(files, "events.jsonl")
    lines[3] = lines[3].replace(b'"severity":"critical"', b'"severity":"critical!"', 1)
    _set_lines(files, "events.jsonl", lines)


def test_a_changed_byte_in_an_event_is_rejected(log, tmp_path, genesis_key):
    bundle = _export(tmp_path)
    plain = _rejected(_rewrite(bundle, tmp_path / "a.zip", _change_event_byte), genesis_key)
    assert (plain.file, plain.reason) == ("events.jsonl", "its SHA-256 differs from the manifest's")
    insider = keyring.current_signing_key()
    deep = _rejected(_rewrite(bundle, tmp_path / "b.zip", _change_event_byte, resign_with=insider), genesis_key)
    assert deep.file == "events.jsonl"
    assert deep.reason == "hash does not equal SHA-256 of the canonical event"
    with zipfile.ZipFile(bundle) as archive:
        fourth = json.loads(archive.read("events.jsonl").splitlines()[3])
    assert deep.seq == fourth["event"]["seq"]


def test_a_removed_event_with_its_proof_is_rejected(log, tmp_path, genesis_key):
    def remove(files):
        _set_lines(files, "events.jsonl", _lines(files, "events.jsonl")[:5] + _lines(files, "events.jsonl")[6:])
        _set_lines(files, "proofs.jsonl", _lines(files, "proofs.jsonl")[:5] + _lines(files, "proofs.jsonl")[6:])

    error = _rejected(_rewrite(_export(tmp_path), tmp_path / "r.zip", remove), genesis_key)
    assert error.file in ("events.jsonl", "proofs.jsonl")
    assert error.reason == "its SHA-256 differs from the manifest's"


def test_a_swapped_checkpoint_is_rejected(log, tmp_path, genesis_key):
    older = _export(tmp_path)
    _run("credit", 42)
    newer = _export(tmp_path)
    old_checkpoint = json.loads(zipfile.ZipFile(older).read("manifest.json"))["checkpoint"]

    def swap(files):
        manifest = json.loads(files["manifest.json"])
        manifest["checkpoint"] = old_checkpoint
        files["manifest.json"] = rfc8785.dumps(manifest)

    plain = _rejected(_rewrite(newer, tmp_path / "s1.zip", swap), genesis_key)
    assert (plain.file, plain.reason) == ("manifest.sig", "signature does not verify over manifest.json")
    insider = keyring.current_signing_key()
    deep = _rejected(_rewrite(newer, tmp_path / "s2.zip", swap, resign_with=insider), genesis_key)
    assert deep.file == "proofs.jsonl"
    assert "tree size does not match the checkpoint" in deep.reason


def test_an_event_signed_by_an_unknown_key_is_rejected(log, tmp_path, genesis_key):
    stranger = SigningKey.generate()

    def forge(files):
        lines = _lines(files, "events.jsonl")
        record = json.loads(lines[2])
        event = record["event"] | {"key_id": stranger.key_id}
        body = rfc8785.dumps(event)
        lines[2] = rfc8785.dumps(
            {
                "event": event,
                "hash": hashlib.sha256(body).hexdigest(),
                "signature": base64.b64encode(stranger.sign(body)).decode(),
            }
        )
        _set_lines(files, "events.jsonl", lines)

    error = _rejected(
        _rewrite(_export(tmp_path), tmp_path / "u.zip", forge, resign_with=keyring.current_signing_key()), genesis_key
    )
    assert error.file == "events.jsonl"
    assert f"signed by key {stranger.key_id}, not the key keys.json assigns" == error.reason


def test_a_key_that_does_not_trace_to_the_trusted_key_is_rejected(log, tmp_path):
    error = _rejected(_export(tmp_path), SigningKey.generate())
    assert error.file == "manifest.sig"
    assert "which is not trusted" in error.reason


def test_a_modified_data_file_is_rejected(log, tmp_path, genesis_key):
    def corrupt(files):
        name = next(n for n in files if n.startswith("data/"))
        files[name] = files[name] + b" "

    bundle = _export(tmp_path, include_data=True)
    plain = _rejected(_rewrite(bundle, tmp_path / "d1.zip", corrupt), genesis_key)
    assert plain.file.startswith("data/")
    assert plain.reason == "its SHA-256 differs from the manifest's"
    deep = _rejected(
        _rewrite(bundle, tmp_path / "d2.zip", corrupt, resign_with=keyring.current_signing_key()), genesis_key
    )
    assert deep.reason == "its name is not the SHA-256 of its bytes"


def test_files_missing_from_or_added_to_the_manifest_are_rejected(log, tmp_path, genesis_key):
    bundle = _export(tmp_path, include_data=True)

    def add(files):
        files["notes.txt"] = b"trust me"

    def drop(files):
        del files[next(n for n in files if n.startswith("data/"))]

    added = _rejected(_rewrite(bundle, tmp_path / "f1.zip", add), genesis_key)
    assert (added.file, added.reason) == ("notes.txt", "is in the bundle but not in the manifest")
    dropped = _rejected(_rewrite(bundle, tmp_path / "f2.zip", drop), genesis_key)
    assert dropped.file.startswith("data/")
    assert dropped.reason == "is listed in the manifest but missing from the bundle"


def test_a_bundle_replayed_from_another_log_is_rejected(log, tmp_path, genesis_key):
    bundle = _export(tmp_path)
    other_log = str(uuid.uuid4())
    error = _rejected(bundle, genesis_key, log_id=other_log)
    assert error.file == "manifest.json"
    assert f"not the expected log {other_log}" in error.reason


# ---- the format to the letter ----------------------------------------------------------------


def test_a_zip_holding_a_member_twice_or_a_directory_is_rejected(log, tmp_path, genesis_key):
    """An unzip tool may extract either copy of a member named twice: the bundle is ambiguous."""
    bundle = _export(tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        events = archive.read("events.jsonl")
    twice = tmp_path / "twice.zip"
    twice.write_bytes(bundle.read_bytes())
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(twice, "a") as archive:
        archive.writestr("events.jsonl", events.replace(b"critical", b"harmless"))
    error = _rejected(twice, genesis_key)
    assert (error.file, error.reason) == (
        "events.jsonl",
        "is in the zip more than once: which copy is the evidence is ambiguous",
    )
    folder = tmp_path / "folder.zip"
    folder.write_bytes(bundle.read_bytes())
    with zipfile.ZipFile(folder, "a") as archive:
        archive.mkdir("data")
    assert _rejected(folder, genesis_key).reason == "is a directory entry, which the manifest does not list"


def _rotation_seq(bundle: Path) -> int:
    with zipfile.ZipFile(bundle) as archive:
        lines = archive.read("events.jsonl").splitlines()
    return next(json.loads(line)["event"]["seq"] for line in lines if b'"type":"audit.KeyRotated"' in line)


def _set_keys(files: dict, change) -> None:
    keys = json.loads(files["keys.json"])
    change(keys)
    files["keys.json"] = rfc8785.dumps(keys)


def test_a_key_must_enter_through_its_rotation_at_its_seq(log, tmp_path, genesis_key):
    bundle = _export(tmp_path)
    rotated = _rotation_seq(bundle)
    thief = keyring.current_signing_key()  # the newer key, stolen: it re-signs the manifest

    def earlier(keys):  # the newer key made valid before its rotation
        keys[0]["valid_to_seq"], keys[1]["valid_from_seq"] = rotated - 2, rotated - 1

    error = _rejected(
        _rewrite(bundle, tmp_path / "k1.zip", lambda f: _set_keys(f, earlier), resign_with=thief), genesis_key
    )
    assert error.file == "keys.json"
    assert error.reason == (
        f"key {thief.key_id} is valid from seq {rotated - 1}, but no audit.KeyRotated at seq {rotated - 2} "
        f"introduces it after key {genesis_key.key_id}"
    )

    def history_rewritten(keys):  # the newer key for the seqs before the rotation too, around the old one
        old, new = keys
        keys[:] = [new | {"valid_from_seq": 1, "valid_to_seq": rotated - 1}, old | {"valid_from_seq": rotated}, new]

    error = _rejected(
        _rewrite(bundle, tmp_path / "k2.zip", lambda f: _set_keys(f, history_rewritten), resign_with=thief), genesis_key
    )
    assert error.file == "keys.json" and f"no audit.KeyRotated at seq {rotated - 1}" in error.reason

    stranger = SigningKey.generate()

    def smuggled(keys):  # a third key, with no rotation at all
        keys[-1]["valid_to_seq"] = rotated + 3
        keys.append(
            {
                "key_id": stranger.key_id,
                "public_key": base64.b64encode(stranger.public_raw).decode(),
                "valid_from_seq": rotated + 4,
                "valid_to_seq": None,
            }
        )

    error = _rejected(
        _rewrite(bundle, tmp_path / "k3.zip", lambda f: _set_keys(f, smuggled), resign_with=thief), genesis_key
    )
    assert error.file == "keys.json" and f"key {stranger.key_id} is valid from seq {rotated + 4}" in error.reason


def _verifier(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audit.verifier", *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_without_a_trusted_key_the_verifier_does_not_say_valid(log, tmp_path, genesis_key):
    bundle = _export(tmp_path)
    alone = _verifier(str(bundle))
    assert alone.returncode == 3, alone.stderr
    assert alone.stdout.startswith("INTERNALLY CONSISTENT, NOT AUTHENTICATED: ") and "VALID" not in alone.stdout
    assert "give the log's key with --trusted-key" in alone.stdout
    asked = _verifier(str(bundle), "--internal-only")
    assert asked.returncode == 0 and asked.stdout.startswith("INTERNALLY CONSISTENT, NOT AUTHENTICATED: ")
    both = _verifier(str(bundle), "--internal-only", "--trusted-key", str(_pem(genesis_key, tmp_path / "k.pem")))
    assert both.returncode == 2 and "--internal-only" in both.stderr
    broken = _rewrite(bundle, tmp_path / "broken.zip", _change_event_byte, resign_with=keyring.current_signing_key())
    assert _verifier(str(broken), "--internal-only").returncode == 1  # inconsistent is invalid either way
