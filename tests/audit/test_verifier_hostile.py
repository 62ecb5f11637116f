"""A hostile party's bundles: whatever the bytes, the offline verifier rejects them with its reason
(BundleInvalid, exit 1), never with a traceback or a hang. Bundles are built by the product's own
export (tests/audit/test_evidence.py) and then changed as an attacker would."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
import rfc8785

from audit import keyring
from audit.verifier import BundleInvalid, main, verify_bundle
from tests.audit.test_evidence import _export, _lines, _pem, _rewrite, _set_lines, genesis_key, log  # noqa: F401

pytestmark = pytest.mark.django_db


def _rejected(bundle: Path, trusted: list[bytes], **options) -> BundleInvalid:
    with pytest.raises(BundleInvalid) as caught:
        verify_bundle(bundle, trusted, workers=1, **options)
    return caught.value


def _rehashed(bundle: Path, out: Path, change) -> Path:
    """Change the files and list their new hashes in the manifest, left unsigned: what anyone can do
    without a key (manifest.sig then no longer verifies, but the verifier reads the files first)."""

    def rehash(files: dict) -> None:
        change(files)
        manifest = json.loads(files["manifest.json"])
        manifest["files"] = {name: hashlib.sha256(data).hexdigest() for name, data in files.items() if "." in name}
        for name in ("manifest.json", "manifest.sig"):
            manifest["files"].pop(name, None)
        files["manifest.json"] = rfc8785.dumps(manifest)

    return _rewrite(bundle, out, rehash)


def _change_rotation(change):
    def apply(files: dict) -> None:
        lines = _lines(files, "events.jsonl")
        for index, line in enumerate(lines):
            if b'"type":"audit.KeyRotated"' in line:
                record = json.loads(line)
                change(record["event"])
                lines[index] = rfc8785.dumps(record)
        _set_lines(files, "events.jsonl", lines)

    return apply


@pytest.mark.parametrize(
    "change",
    [
        lambda event: event.pop("seq"),
        lambda event: event.update(seq="13"),
        lambda event: event.update(payload=[1]),
        lambda event: event.update(key_id=[1]),
    ],
    ids=["no seq", "seq a string", "payload a list", "key_id a list"],
)
def test_a_rotation_of_another_shape_is_rejected_before_any_key_is_needed(log, tmp_path, genesis_key, change):  # noqa: F811 - the fixtures imported above
    bundle = _rehashed(_export(tmp_path), tmp_path / "r.zip", _change_rotation(change))
    for trusted in ([genesis_key.public_raw], []):
        error = _rejected(bundle, trusted)
        assert error.file == "events.jsonl"
        assert "audit.KeyRotated" in error.reason and "not of the format" in error.reason


def test_a_manifest_sig_naming_no_key_is_rejected(log, tmp_path, genesis_key):  # noqa: F811 - the fixtures imported above
    def unnamed(files: dict) -> None:
        files["manifest.sig"] = rfc8785.dumps({"key_id": [1], "signature": "x"})

    error = _rejected(_rewrite(_export(tmp_path), tmp_path / "s.zip", unnamed), [genesis_key.public_raw])
    assert (error.file, error.reason) == ("manifest.sig", 'must be canon({"key_id", "signature"})')


def test_a_manifest_with_an_integer_beyond_json_is_rejected(log, tmp_path, genesis_key):  # noqa: F811 - the fixtures imported above
    def enormous(files: dict) -> None:
        manifest = json.loads(files["manifest.json"])
        manifest["query"]["since"] = 2**60
        files["manifest.json"] = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()

    error = _rejected(_rewrite(_export(tmp_path), tmp_path / "m.zip", enormous), [genesis_key.public_raw])
    assert (error.file, error.reason) == ("manifest.json", "not canonical JSON")


def _patched_central_directory(bundle: Path, out: Path, offset: int, value: bytes) -> Path:
    """The bundle with bytes of its first central directory entry overwritten."""
    data = bytearray(bundle.read_bytes())
    entry = data.find(b"PK\x01\x02")
    data[entry + offset : entry + offset + len(value)] = value
    out.write_bytes(bytes(data))
    return out


def _corrupted_data(bundle: Path, out: Path) -> Path:
    """The bundle with bytes zeroed inside the first member's compressed data (a damaged copy)."""
    data = bytearray(bundle.read_bytes())
    start = 30 + struct.unpack("<H", data[26:28])[0] + struct.unpack("<H", data[28:30])[0]
    data[start + 50 : start + 60] = bytes(10)
    out.write_bytes(bytes(data))
    return out


def test_a_damaged_zip_member_is_rejected_by_name(log, tmp_path, genesis_key):  # noqa: F811 - the fixtures imported above
    bundle = _export(tmp_path)
    damaged = {
        "unknown compression": _patched_central_directory(bundle, tmp_path / "c.zip", 10, struct.pack("<H", 99)),
        "encrypted": _patched_central_directory(bundle, tmp_path / "e.zip", 8, struct.pack("<H", 1)),
        "wrong CRC": _patched_central_directory(bundle, tmp_path / "r.zip", 16, bytes(4)),
        "wrong offset": _patched_central_directory(bundle, tmp_path / "o.zip", 42, struct.pack("<I", 10**6)),
        "corrupt deflate": _corrupted_data(bundle, tmp_path / "d.zip"),
    }
    for what, path in damaged.items():
        error = _rejected(path, [genesis_key.public_raw])
        assert error.file == "events.jsonl", what
        assert error.reason.startswith("cannot be read from the zip"), (what, error.reason)
        assert main([str(path), "--trusted-key", str(_pem(genesis_key, tmp_path / "k.pem"))]) == 1


def test_an_insiders_bundle_of_another_shape_is_rejected_not_a_traceback(log, tmp_path, genesis_key):  # noqa: F811 - the fixtures imported above
    """A key holder (or anyone, checked --internal-only) signs whatever it likes: still a reason."""
    insider = keyring.current_signing_key()
    bundle = _export(tmp_path)

    def checkpoint_key_list(files: dict) -> None:
        manifest = json.loads(files["manifest.json"])
        manifest["checkpoint"]["key_id"] = [1]
        files["manifest.json"] = rfc8785.dumps(manifest)

    def consistency_list(files: dict) -> None:
        files["consistency.jsonl"] = b"[1]\n"

    forged = _rewrite(bundle, tmp_path / "k.zip", checkpoint_key_list, resign_with=insider)
    error = _rejected(forged, [genesis_key.public_raw])
    assert (error.file, error.reason) == ("manifest.json", "checkpoint's members are not of the format")
    forged = _rewrite(bundle, tmp_path / "c.zip", consistency_list, resign_with=insider)
    error = _rejected(forged, [genesis_key.public_raw])
    assert (error.file, error.reason) == ("consistency.jsonl", "each line must be a JSON object")


@pytest.mark.timeout(120)
def test_a_rejection_in_a_worker_process_reaches_the_caller(log, tmp_path, genesis_key):  # noqa: F811 - the fixtures imported above
    """Past 5,000 events the lines are checked in worker processes; an event a worker rejects must
    come back as the rejection, not leave the pool waiting for a result that never comes."""
    bundle = _export(tmp_path)

    def padded(files: dict) -> None:
        events, proofs = _lines(files, "events.jsonl"), _lines(files, "proofs.jsonl")
        _set_lines(files, "events.jsonl", events + [events[-1]] * 5001)
        _set_lines(files, "proofs.jsonl", proofs + [proofs[-1]] * 5001)

    forged = _rewrite(bundle, tmp_path / "big.zip", padded, resign_with=keyring.current_signing_key())
    with pytest.raises(BundleInvalid) as caught:
        verify_bundle(forged, [genesis_key.public_raw], workers=2)
    assert caught.value.file == "events.jsonl" and "not ascending" in caught.value.reason
