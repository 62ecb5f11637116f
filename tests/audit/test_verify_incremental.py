"""Incremental verification: only the events after the head of the latest verification that
passed, chained to it. What it catches (a bad new event, a changed or missing head, a stream
version out of order, a truncation) and what it leaves to the full verification (a change before
the head, made with the head's stored hash left alone)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import LogVerification
from audit.selfcheck import log_verify_recorded
from audit.tasks import verify_new_events
from audit.verify import Verified, verify_log
from tests.audit.test_selfcheck import _append_notes, _as_superuser, _tamper_with_note


@pytest.fixture
def twelve(committed_log, settings):
    """A committed log of 12 notes (note 0 at seq 1 … note 11 at seq 12), no verification yet."""
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = []
    LogVerification.objects.all().delete()
    _append_notes(12, batch=1)
    yield
    LogVerification.objects.all().delete()


@pytest.fixture
def verified_then_grown(twelve):
    """A full verification of the 12 events, then 8 more appended (notes 12..19 at seq 13..20)."""
    full = log_verify_recorded(workers=1)
    assert full.ok and full.first_seq == 1 and full.events_checked == 12
    _append_notes(8, batch=1, start=12)
    return full


def test_only_the_new_events_are_verified_chained_to_the_verified_head(verified_then_grown):
    new = log_verify_recorded(workers=1, incremental=True)
    assert new.ok, new.problem
    assert (new.first_seq, new.events_checked) == (13, 20)
    assert new.head_hash == verify_log(workers=1).head_hash  # the full pass reaches the same head
    again = log_verify_recorded(workers=1, incremental=True)  # nothing new: from 21, nothing to do
    assert again.ok and (again.first_seq, again.events_checked) == (21, 20)


def test_a_new_event_changed_is_named_by_its_seq(verified_then_grown):
    seq = _tamper_with_note(15)  # seq 16
    new = log_verify_recorded(workers=1, incremental=True)
    assert not new.ok and new.failed_seq == seq == 16, new.problem


def test_a_changed_head_refuses_to_chain_and_asks_for_a_full_verification(verified_then_grown):
    _as_superuser("UPDATE audit_event SET hash = %s WHERE seq = 12", (b"\x01" * 32,))
    new = log_verify_recorded(workers=1, incremental=True)
    assert not new.ok and new.failed_seq == 12
    assert "not the one verified before" in new.problem and "full verification" in new.problem


def test_a_truncation_below_the_verified_head_is_caught(verified_then_grown):
    _as_superuser("DELETE FROM audit_event WHERE seq > 10")
    new = log_verify_recorded(workers=1, incremental=True)
    assert not new.ok and new.failed_seq == 11
    assert "12 were verified before" in new.problem


def test_a_new_event_out_of_its_stream_order_is_caught(verified_then_grown):
    with connection.cursor() as cursor:
        cursor.execute("SELECT stream_type, stream_id FROM audit_event WHERE seq = 3")
        kind, ident = cursor.fetchone()
    # seq 18 claims to be the second event of seq 3's stream, which has one event (before the head)
    _as_superuser(
        "UPDATE audit_event SET stream_type = %s, stream_id = %s, stream_version = 3 WHERE seq = 18", (kind, ident)
    )
    report = verify_log(workers=1, after=Verified(12, LogVerification.objects.get(first_seq=1).head_hash))
    assert report.failure is not None and report.failure.seq == 18, report.failure


def test_a_change_before_the_head_is_left_to_the_full_verification(verified_then_grown):
    seq = _tamper_with_note(5)  # seq 6: its canonical bytes change, its stored hash does not
    assert log_verify_recorded(workers=1, incremental=True).ok  # the chain from seq 12 holds
    full = log_verify_recorded(workers=1)
    assert not full.ok and full.failed_seq == seq


def test_without_an_earlier_verification_it_verifies_everything(twelve):
    first = log_verify_recorded(workers=1, incremental=True)
    assert first.ok and (first.first_seq, first.events_checked) == (1, 12)


def test_the_task_and_the_command(verified_then_grown, capsys):
    assert LogVerification.objects.get(id=verify_new_events()).first_seq == 13
    _append_notes(2, batch=1, start=20)
    out = io.StringIO()
    call_command("audit_verify", "--incremental", "--workers", "1", stdout=out)
    assert out.getvalue().startswith("OK: 2 events verified (seq 21..22, after the head verified before)")
    _append_notes(1, batch=1, start=22)
    _tamper_with_note(22)  # seq 23, after the head the command just verified
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", "--incremental", "--workers", "1", stdout=io.StringIO())
    assert exited.value.code == 1
    assert "FAILED at seq 23" in capsys.readouterr().err


def test_incremental_with_witnesses_is_refused(twelve, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", "--incremental", "--witness", str(tmp_path))
    assert exited.value.code == 2 and "drop --witness" in capsys.readouterr().err


def test_metrics_keep_the_full_verification_and_show_how_far_any_reached(verified_then_grown, settings):
    from django.test import RequestFactory
    from prometheus_client.parser import text_string_to_metric_families

    from monitoring.alerting.metrics import metrics_view

    assert log_verify_recorded(workers=1, incremental=True).ok
    settings.METRICS_PUBLIC = True
    body = metrics_view(RequestFactory().get("/metrics")).content.decode()
    samples = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples}
    assert samples["driftledger_log_verification_events"] == 12  # the full one
    assert samples["driftledger_log_verified_seq"] == 20  # the incremental one went further


def test_a_verification_of_the_empty_log_gives_the_next_incremental_one_no_head_to_chain_to(committed_log, settings):
    """A fresh deployment's worker may verify the log before its first event: that pass has no
    event 0 to chain to, so the next incremental verification checks everything, not a tamper alarm."""
    settings.AUDIT_VERIFY_FAILURE_HANDLERS = []
    LogVerification.objects.all().delete()
    try:
        empty = log_verify_recorded(workers=1, incremental=True)
        assert empty.ok and empty.events_checked == 0
        _append_notes(3, batch=1)
        new = log_verify_recorded(workers=1, incremental=True)
        assert new.ok, new.problem
        assert (new.first_seq, new.events_checked) == (1, 3)
    finally:
        LogVerification.objects.all().delete()


@pytest.mark.parametrize("workers", ["0", "257", "100000"])
def test_audit_verify_refuses_a_number_of_workers_out_of_range(db, workers):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", "--workers", workers, stderr=err)
    assert exited.value.code == 2 and "--workers must be 1 to 256" in err.getvalue()
    assert not LogVerification.objects.exists()  # nothing verified, nothing recorded
