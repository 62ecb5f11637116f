"""Every event type speaks for itself: one sentence each, through its own describe(); a type of
an older schema through the class it upcasts to. The report and the pages rely on it."""

import pytest

from audit import events
from audit.events import Context, Event
from monitoring.alerting.domain import AlertRaised, AlertRaisedV1
from monitoring.remediation.domain import RemediationApproved, RemediationRequested

pytestmark = pytest.mark.django_db


def test_each_latest_type_has_its_own_sentence_and_each_older_one_upcasts():
    released = [cls for cls in events.all_types() if cls.type_name.startswith(("monitoring.", "audit."))]
    latest = {cls.type_name: cls for cls in released}  # sorted: the latest schema last
    for cls in released:
        if latest[cls.type_name] is cls:
            assert cls.describe is not Event.describe, f"{cls.type_name} has no sentence of its own"
        else:  # read through today's class, or (RunCompleted 1: free-form checks) in its own words
            speaks = cls.upcast is not Event.upcast or cls.describe is not Event.describe
            assert speaks, f"{cls.type_name} schema {cls.type_schema} neither upcasts nor describes itself"


def test_an_old_alert_reads_in_todays_words_and_an_approval_names_what_it_approved():
    old = {"alert_id": "a" * 8, "model": "credit", "check": "performance", "severity": "critical",
           "summary": "performance on roc_auc: roc_auc 0.71 (threshold 0.05)"}  # fmt: skip
    envelope = {"type": AlertRaisedV1.type_name, "schema": 1, "payload": old, "actor": {"name": "worker"}}
    assert events.sentence(envelope) == (
        "A critical alert was raised on credit: performance on roc_auc: roc_auc 0.71 (threshold 0.05)"
    )
    assert AlertRaisedV1.from_payload(old).upcast().dedupe_key == "credit|performance|roc_auc|"
    asked = RemediationRequested(
        request_id="r-1", model="credit-default", action="rollback", parameters={"to_version": "2026.10.1"},
        evidence=[], required_approvals=1, break_glass=False,
    )  # fmt: skip
    signed = RemediationApproved(
        request_id="r-1", signer_name="Bob Okafor", signed_at="2026-11-25T21:00:00.000000Z", meaning="approved"
    )
    about = Context(actor={"name": "Bob Okafor"}, reason="evidence supports it", stream=lambda kind, ident: [asked])
    assert signed.describe(about) == (
        "Bob Okafor (risk approver) approved the rollback of credit-default to 2026.10.1, "
        "signed 2026-11-25T21:00:00.000000Z: evidence supports it"
    )
    assert isinstance(AlertRaised.from_payload({**old, "subject": "roc_auc"}), AlertRaised)
