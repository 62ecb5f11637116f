"""A hostile party's bundles: whatever the bytes, the offline verifier rejects them with its reason
(BundleInvalid, exit 1), never with a traceback or a hang. Bundles are built by the product's own
export (tests/audit/test_evidence.py) and then changed as an attacker would."""

from __future__ import annotations

import pytest

from audit import keyring
from audit.verifier import BundleInvalid, verify_bundle
from tests.audit.test_evidence import _export, _lines, _rewrite, _set_lines, genesis_key, log  # noqa: F401

pytestmark = pytest.mark.django_db


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
