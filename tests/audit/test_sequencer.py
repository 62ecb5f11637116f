"""The sequencer write path (audit/sequencer.py) against the event store's contract: concurrent
writers without gaps or forks, stale versions refused, invalid events refused before anything is
written, projections in the sealing transaction, tamper detection, rotation and proofs; then its
own failure modes: a second sequencer, a sequencer SIGKILLed mid-batch, its database connection
cut mid-batch, and no sequencer at all."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import merkle
from audit.checkpoints import checkpoint_create, inclusion_proof
from audit.keys import SigningKey
from audit.models import Event, PendingAppend
from audit.rotation import signing_key_rotate
from audit.sequencer import LeaseLost, Sequencer, submit_validated, wait
from audit.store import APPEND_LOCK_KEY, AppendError, ConcurrencyConflict, InvalidEvent, append, validate
from audit.verify import verify_log
from tests.audit.factories import ALICE, noted_event
from tests.audit.test_concurrency import race
from tests.audit.test_selfcheck import _as_superuser
from tests.proxy import Cuttable
from tests.workers import ROOT, database_url, wait_for

WRITERS = 8
EVENTS_EACH = 60


@pytest.fixture
def sequenced(committed_log, settings):
    """Appends outside a transaction go through the sequencer; one runs in a thread of its own
    (its own database connection), as `manage.py run_sequencer` runs it."""
    settings.AUDIT_SEQUENCER = True
    settings.AUDIT_SEQUENCER_WAIT_SECONDS = 30  # a test that waits this long has found a bug
    running = threading.Event()
    running.set()
    sequencer = Sequencer("test-thread", lease_seconds=2)

    def serve() -> None:
        try:
            sequencer.run(running.is_set)
        finally:
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sequencer
    running.clear()
    thread.join(timeout=10)
    _clear_lease()


def _clear_lease() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_sequencer_lease")
        cursor.execute("DELETE FROM audit_pending")


def test_concurrent_writers_through_the_sequencer_build_one_gapless_verified_chain(sequenced):
    race(WRITERS, EVENTS_EACH)
    assert not PendingAppend.objects.exists()


def test_a_stale_expected_version_is_refused_whole_and_writes_nothing(sequenced):
    append([noted_event("s")], expected={("note", "s"): 0})
    with pytest.raises(ConcurrencyConflict) as refused:
        append([noted_event("s"), noted_event("t")], expected={("note", "s"): 0, ("note", "t"): 0})
    assert (refused.value.stream, refused.value.expected, refused.value.actual) == (("note", "s"), 0, 1)
    assert Event.objects.count() == 1 and not PendingAppend.objects.exists()
    (later,) = append([noted_event("s")], expected={("note", "s"): 1})
    assert later.seq == 2 and later.stream["version"] == 2


def test_invalid_events_are_refused_before_anything_is_submitted(sequenced):
    with pytest.raises(InvalidEvent, match="stream_id must be a non-empty string"):
        append([dataclasses.replace(noted_event("a"), stream_id="")], expected={("note", ""): 0})
    with pytest.raises(AppendError, match="no expected version given"):
        append([noted_event("a")], expected={})
    assert not PendingAppend.objects.exists() and not Event.objects.exists()


def test_a_submission_commits_on_its_own_or_not_at_all(sequenced):
    from django.db import transaction

    event = noted_event("inside")
    payloads = validate([event], {event.stream: 0})
    with transaction.atomic(), pytest.raises(AppendError, match="commits on its own"):
        submit_validated([event], payloads, {event.stream: 0})
    # Its single statement commits by itself only while the connection autocommits.
    transaction.set_autocommit(False)
    try:
        with pytest.raises(AppendError, match="commits on its own"):
            submit_validated([event], payloads, {event.stream: 0})
        # append seals directly in the caller's own transaction, which the caller then undoes
        (undone,) = append([noted_event("undone")], expected={("note", "undone"): 0})
        assert undone.seq == 1
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert not PendingAppend.objects.exists() and not Event.objects.exists()
    # Inside a transaction, append seals directly under the same lock, and is sealed on commit.
    with transaction.atomic():
        (recorded,) = append([event], expected={event.stream: 0})
    assert recorded.seq == 1 and not PendingAppend.objects.exists()


def test_projections_run_in_the_sealing_transaction(sequenced):
    from monitoring.registry import services as registry
    from monitoring.registry.models import RegisteredModel
    from tests.monitoring.conftest import SCHEMA

    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    assert RegisteredModel.objects.get(name="credit").task == "binary_classification"
    assert Event.objects.get().event_type == "monitoring.ModelRegistered"


def test_tamper_detection_rotation_and_proofs_hold_for_sealed_events(sequenced, settings, tmp_path):
    for number in range(5):
        append([noted_event(f"n{number}", summary=f"note {number}")], expected={("note", f"n{number}"): 0})
    new_key = SigningKey.generate()
    signing_key_rotate(new_key=new_key, actor=ALICE, reason="yearly rotation")  # seals directly
    (after,) = append([noted_event("after")], expected={("note", "after"): 0})
    assert after.seq == 7 and after.envelope["key_id"] == new_key.key_id

    checkpoint = checkpoint_create(publish=False)
    assert checkpoint is not None and checkpoint.tree_size == 7
    leaf = bytes(Event.objects.get(seq=after.seq).leaf_hash)
    proof = inclusion_proof(after.seq, 7)
    assert merkle.verify_inclusion(after.seq - 1, 7, leaf, proof, bytes.fromhex(checkpoint.root_hash))
    assert verify_log().ok

    seq = 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical FROM audit_event WHERE seq = %s", (seq,))
        canonical = bytes(cursor.fetchone()[0])
    _as_superuser(
        "UPDATE audit_event SET canonical = %s WHERE seq = %s", (canonical.replace(b"note 2", b"note 9"), seq)
    )
    report = verify_log()
    assert not report.ok and report.failure is not None and report.failure.seq == seq


def test_a_second_sequencer_seals_nothing_and_one_that_lost_its_lease_stops(committed_log, settings):
    settings.AUDIT_SEQUENCER = True
    first, second = Sequencer("first", lease_seconds=0.5), Sequencer("second", lease_seconds=0.5)
    try:
        assert first.acquire() and not second.acquire()
        event = noted_event("x")
        submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
        time.sleep(0.7)  # the first pauses past its lease: the second takes over
        assert second.acquire() and second.epoch == first.epoch + 1
        with pytest.raises(LeaseLost):
            first.seal_once()
        assert not Event.objects.exists() and PendingAppend.objects.count() == 1
        assert second.seal_once() == 1
        (recorded,) = wait(submission, timeout=1)
        assert recorded.seq == 1 and recorded.event_id == submission.event_ids[0]
    finally:
        _clear_lease()


def test_with_no_sequencer_a_writer_seals_its_own_append_after_the_wait(committed_log, settings):
    settings.AUDIT_SEQUENCER = True
    settings.AUDIT_SEQUENCER_WAIT_SECONDS = 0.3
    began = time.monotonic()
    (recorded,) = append([noted_event("alone")], expected={("note", "alone"): 0})
    assert time.monotonic() - began >= 0.3
    assert recorded.seq == 1 and not PendingAppend.objects.exists()
    assert verify_log().ok


# Crash tests: the sequencer as its own process, killed or cut off mid-batch.

BACKLOG = 20_000  # sealed in one transaction of a few seconds: long enough to be caught in it


def _submit_backlog(count: int, each: int = 200) -> list[str]:
    ids = []
    for first in range(0, count, each):
        events = [noted_event(f"b{number}", summary=f"note {number}") for number in range(first, first + each)]
        expected = {event.stream: 0 for event in events}
        ids += submit_validated(events, validate(events, expected), expected).event_ids
    return ids


def _launch_sequencer(tmp_path: Path, signing_key_file: Path, name: str, url: str, batch: int) -> subprocess.Popen:
    """`manage.py run_sequencer` in a process of its own, which knows the tests' event types."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")},
        "DATABASE_URL": url,
        "AUDIT_SIGNING_KEY_FILE": str(signing_key_file),
        "DRIFTLEDGER_DATA_DIR": str(tmp_path),
        "AUDIT_SEQUENCER": "true",
        "AUDIT_SEQUENCER_LEASE_SECONDS": "2",
    }
    program = (
        "import django; django.setup(); import tests.audit.factories; from django.core.management import "
        f"call_command; call_command('run_sequencer', name={name!r}, batch={batch})"
    )
    log = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    process.log = log  # type: ignore[attr-defined]
    return process


@contextlib.contextmanager
def _sequencer(tmp_path: Path, signing_key_file: Path, name: str, url: str) -> Iterator[subprocess.Popen]:
    """A run_sequencer process that seals the whole backlog in one transaction; stopped after."""
    process = _launch_sequencer(tmp_path, signing_key_file, name, url, batch=BACKLOG)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def _mid_batch(process: subprocess.Popen) -> None:
    assert wait_for(_sealing_now, seconds=60), process.log.read_text()  # type: ignore[attr-defined]


def _drained(process: subprocess.Popen) -> None:
    drained = wait_for(lambda: not PendingAppend.objects.exists(), seconds=120)
    assert drained, process.log.read_text()  # type: ignore[attr-defined]


def _sealing_now() -> bool:
    """A session other than ours holds the log's lock, in an open transaction: mid-batch."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"
            " AND l.granted AND l.objid = %s AND a.pid <> pg_backend_pid())",
            [APPEND_LOCK_KEY & 0xFFFFFFFF],
        )
        return cursor.fetchone()[0]


def _all_sealed_once(ids: list[str]) -> None:
    rows = list(Event.objects.order_by("seq").values_list("seq", "event_id"))
    assert [seq for seq, _ in rows] == list(range(1, len(ids) + 1)), "a gap or a duplicate seq"
    assert sorted(str(event_id) for _, event_id in rows) == sorted(ids), "an event lost or sealed twice"
    assert not PendingAppend.objects.exists()
    report = verify_log(workers=2)
    assert report.ok and report.events == len(ids), report.failure


def test_a_sequencer_killed_mid_batch_leaves_no_gap_and_the_next_one_seals_everything(
    committed_log, settings, tmp_path, signing_key_file
):
    settings.AUDIT_SEQUENCER = True
    ids = _submit_backlog(BACKLOG)
    with _sequencer(tmp_path, signing_key_file, "doomed", database_url()) as first:
        _mid_batch(first)
        first.send_signal(signal.SIGKILL)  # mid-batch: its transaction holds the lock
        first.wait(timeout=10)
    assert Event.objects.count() == 0, "one transaction seals the whole batch, or nothing of it"
    assert PendingAppend.objects.count() == BACKLOG // 200  # submissions of 200 events each
    with _sequencer(tmp_path, signing_key_file, "next", database_url()) as second:
        _drained(second)
    _all_sealed_once(ids)
    _clear_lease()


def test_a_sequencer_whose_database_goes_away_mid_batch_seals_everything_once_it_is_back(
    committed_log, settings, tmp_path, signing_key_file
):
    settings.AUDIT_SEQUENCER = True
    ids = _submit_backlog(BACKLOG)
    params = connection.settings_dict
    host, port = params.get("HOST") or "", int(params.get("PORT") or 5432)
    proxy = Cuttable(f"{host}/.s.PGSQL.{port}" if host.startswith("/") or not host else (host, port))
    with _sequencer(tmp_path, signing_key_file, "cut-off", database_url("127.0.0.1", proxy.port)) as sequencer:
        _mid_batch(sequencer)
        proxy.cut()  # as a restart of the server looks from the sequencer: its session is gone
        assert wait_for(lambda: not _sealing_now(), seconds=30), "the aborted batch still holds the lock"
        assert Event.objects.count() == 0
        time.sleep(2)
        proxy.open = True
        _drained(sequencer)
    assert "the database is unreachable" in sequencer.log.read_text()
    _all_sealed_once(ids)
    _clear_lease()


def test_metrics_show_the_appends_waiting_for_the_sequencer(committed_log, settings):
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    settings.METRICS_PUBLIC = True

    def samples() -> dict[str, float]:
        body = Client().get("/metrics").content.decode()
        return {s.name: s.value for family in text_string_to_metric_families(body) for s in family.samples}

    _submit_backlog(400)
    time.sleep(0.2)
    waiting = samples()
    assert waiting["driftledger_pending_appends"] == 2  # two submissions of 200 events
    assert waiting["driftledger_oldest_pending_append_seconds"] >= 0.2
    sequencer = Sequencer("metrics")
    try:
        assert sequencer.acquire() and sequencer.seal_once() == 400
    finally:
        _clear_lease()
    sealed = samples()
    assert sealed["driftledger_pending_appends"] == 0 and "driftledger_oldest_pending_append_seconds" not in sealed


def test_a_pending_row_written_past_the_application_is_refused_not_signed(committed_log, settings):
    """Insert rights on audit_pending must not buy a signature: a row without its writer's MAC
    (here, a genuine submission with its entries changed) is refused."""
    settings.AUDIT_SEQUENCER = True
    event = noted_event("x", summary="floor 0.2")
    submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_pending SET entries = replace(entries, 'floor 0.2', 'floor 0.9')")
    sequencer = Sequencer("guard")
    try:
        assert sequencer.acquire() and sequencer.seal_once() == 0
        assert not Event.objects.exists()
        with pytest.raises(AppendError, match="MAC is not a writer's"):
            wait(submission, timeout=1)
        assert not PendingAppend.objects.exists()
    finally:
        _clear_lease()


def test_a_batch_that_fails_midway_writes_nothing_and_only_the_failing_submission_is_refused(committed_log, settings):
    """A batch is one COPY, fed as its events are signed: forty events (some 100 kB, past the
    32 kB psycopg sends at once) are on their way to the server when the next submission fails
    (a writer with a bug sent, under a genuine MAC, a payload that has no canonical form). No row
    is left behind; the next call seals that batch submission by submission and refuses only it."""
    from audit.sequencer import _mac

    settings.AUDIT_SEQUENCER = True

    def submitted(name: str, summary: str):
        event = noted_event(name, summary=summary)
        return submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})

    before = [submitted(f"before-{i}", "drift on income " * 100) for i in range(40)]
    broken, after = submitted("broken", "floor 0.2"), submitted("after", "floor 0.3")
    with connection.cursor() as cursor:
        cursor.execute("SELECT entries, expected FROM audit_pending WHERE batch = %s", [broken.batch])
        entries, expected = cursor.fetchone()
        entries = entries.replace('"floor 0.2"', str(2**60))  # beyond what canonical JSON holds
        cursor.execute(
            "UPDATE audit_pending SET entries = %s, mac = %s WHERE batch = %s",
            [entries, _mac(broken.batch, entries, expected), broken.batch],
        )
    sequencer = Sequencer("isolating", batch=100)
    try:
        assert sequencer.acquire()
        assert sequencer.seal_once() == 0
        assert not Event.objects.exists(), "the failed batch left rows behind"
        assert sequencer.seal_once() == 41
        sealed = [event for submission in (*before, after) for event in wait(submission, timeout=1)]
        assert [event.seq for event in sealed] == list(range(1, 42))
        with pytest.raises(AppendError, match="CanonicalizationError"):
            wait(broken, timeout=1)
        assert verify_log(workers=1).ok
    finally:
        _clear_lease()


def test_a_sequencer_whose_session_the_server_ends_mid_batch_seals_everything_once(
    committed_log, settings, tmp_path, signing_key_file
):
    """The sequencer's view of a server restart: its session ended by the server mid-batch."""
    settings.AUDIT_SEQUENCER = True
    ids = _submit_backlog(BACKLOG)
    with _sequencer(tmp_path, signing_key_file, "ended", database_url()) as sequencer:
        _mid_batch(sequencer)
        with connection.cursor() as cursor:
            # Not while it commits: the server would end it once the commit is done, which is
            # no longer mid-batch (it happened under load; whether the commit began is the only race).
            cursor.execute(
                "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND l.pid <> pg_backend_pid()"
                " AND a.query NOT ILIKE 'COMMIT%%'",
                [APPEND_LOCK_KEY & 0xFFFFFFFF],
            )
            assert cursor.fetchall() == [(True,)]
        assert Event.objects.count() in (0, BACKLOG), "an ended session's batch left part of itself behind"
        _drained(sequencer)
    assert "the database is unreachable" in sequencer.log.read_text()
    _all_sealed_once(ids)
    _clear_lease()


def test_while_the_listening_connection_is_down_a_writer_polls_without_stalling(sequenced):
    """A process whose LISTEN connection is reconnecting looks for its seal every few ms."""
    from audit import sequencer as module

    module._decisions.pid, module._decisions.ready = os.getpid(), threading.Event()  # never ready
    try:  # a writer that stalled would wait AUDIT_SEQUENCER_WAIT_SECONDS (30 here), then seal it
        began = time.monotonic()
        (recorded,) = append([noted_event("polled")], expected={("note", "polled"): 0})
        took = time.monotonic() - began
        assert took < 10 and recorded.seq == 1, f"the writer waited {took:.1f} s: it stalled instead of polling"
    finally:
        module.stop_listening()


def test_a_submission_is_durable_and_prepared_once_it_returns(sequenced):
    """Visible from another session as soon as submit returns (its one statement committed), and
    parsed once per connection: the log's hot statements are server-side prepared."""
    import psycopg

    event = noted_event("durable")
    submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
    params = connection.get_connection_params()
    with psycopg.Connection.connect(**{k: v for k, v in params.items() if k != "prepare_threshold"}) as other:
        (count,) = other.execute("SELECT count(*) FROM audit_pending WHERE batch = %s", [submission.batch]).fetchone()
    assert count == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert any("INSERT INTO audit_pending" in statement for statement in prepared)
    wait(submission)


# The listener, a writer's wait and its own seal, against what the database and its other roles
# may do to them.


def _other_session():
    import psycopg

    params = connection.get_connection_params()
    return psycopg.Connection.connect(**{k: v for k, v in params.items() if k != "prepare_threshold"}, autocommit=True)


def test_a_notification_from_any_role_neither_ends_the_listener_nor_moves_what_it_knows(sequenced):
    """Any role that may connect may NOTIFY the channel with any payload: the listener ignores what
    is not an id and counts none beyond what its process submitted, so appends keep waking at once."""
    from audit import sequencer as module

    append([noted_event("warm")], expected={("note", "warm"): 0})
    thread = module._decisions.thread
    assert thread is not None and thread.is_alive()
    with _other_session() as other:
        for payload in ("not a number", "9223372036854775807", "1" * 40, "-5", ""):
            other.execute("SELECT pg_notify('driftledger_sealed', %s)", [payload])
    time.sleep(0.5)
    assert thread.is_alive() and module._decisions.ready.is_set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sequence_last_value(pg_get_serial_sequence('audit_pending', 'id'))")
        (submitted,) = cursor.fetchone()
    assert module._decisions.up_to <= submitted, "a forged payload pinned what the listener holds decided"
    for number in range(8):
        append([noted_event(f"after-{number}")], expected={("note", f"after-{number}"): 0})
    # Only a notification moves what the listener holds decided: the writers were told, not left to poll.
    told = wait_for(lambda: module._decisions.up_to >= module._decisions.submitted, seconds=5)
    assert told, f"decided up to {module._decisions.up_to}, submitted {module._decisions.submitted}"


def test_a_writer_whose_session_ends_while_it_waits_gets_its_sealed_events(sequenced):
    """Once submit_validated returns the append is durable and will be sealed. A connection lost
    while waiting (a PostgreSQL restart, a pooler recycling the session) is not the append's
    failure: an error would have the caller append it again."""
    event = noted_event("durable")
    submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
    pid = connection.connection.info.backend_pid
    with _other_session() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    (recorded,) = wait(submission, timeout=5)
    assert recorded.event_id == submission.event_ids[0]
    assert Event.objects.count() == 1


def test_a_writer_that_cannot_reach_the_database_by_its_deadline_is_told_the_outcome_is_unknown(
    committed_log, settings
):
    """Not a database error (which callers take as a failed append) but OutcomeUnknown naming the
    durable submission; the submission is still pending, and sealed once, later."""
    from audit.sequencer import OutcomeUnknown

    settings.AUDIT_SEQUENCER = True
    settings.DATABASE_TRANSACTION_POOLING = True  # polling: no listening connection to the proxy
    event = noted_event("unknown")
    submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
    params = connection.settings_dict
    saved = params["HOST"], params["PORT"]
    host, port = saved[0] or "", int(saved[1] or 5432)
    proxy = Cuttable(f"{host}/.s.PGSQL.{port}" if host.startswith("/") or not host else (host, port))
    connection.close()
    params["HOST"], params["PORT"] = "127.0.0.1", proxy.port
    try:
        connection.ensure_connection()
        proxy.cut()  # the session gone, and no new one until the deadline
        with pytest.raises(OutcomeUnknown, match=f"submission {submission.batch} is durable and its outcome unknown"):
            wait(submission, timeout=0.5)
    finally:
        connection.close()
        params["HOST"], params["PORT"] = saved
    assert PendingAppend.objects.filter(batch=submission.batch).exists()
    (recorded,) = wait(submission, timeout=0.1)  # no sequencer: its writer seals it, once
    assert recorded.event_id == submission.event_ids[0] and Event.objects.count() == 1


def test_a_submission_its_writer_sealed_itself_cannot_be_replayed(committed_log, settings):
    """The MAC stops whoever may insert into audit_pending from getting events signed. A writer
    that seals its own submission (no sequencer in time) seals it under the event ids it
    submitted, so its row, MAC and all, inserted again, is refused and not signed twice."""
    settings.AUDIT_SEQUENCER = True
    settings.AUDIT_SEQUENCER_WAIT_SECONDS = 0.2
    event = noted_event("once", summary="batch ingested")
    expected = {event.stream: None}  # as monitoring.ingestion appends a model's data batches
    submission = submit_validated([event], validate([event], expected), expected)
    seen = _pending_row(submission.batch)  # what SELECT on audit_pending shows anyone who may read it
    (first,) = wait(submission)  # no sequencer: its writer seals it
    assert first.event_id == submission.event_ids[0] and Event.objects.count() == 1
    _insert_pending(seen)  # the replay: insert rights only, no secret
    sequencer = Sequencer("replayed")
    try:
        assert sequencer.acquire()
        assert sequencer.seal_once() == 0
        assert sequencer.seal_once() == 0
        assert list(Event.objects.values_list("seq", "stream_version")) == [(1, 1)]
        refused = PendingAppend.objects.get(batch=submission.batch).refused
        assert refused == {"error": "its events are in the log already: a replay, refused"}
    finally:
        _clear_lease()


def test_a_replayed_submission_is_refused_alone_and_its_batch_sealed(committed_log, settings):
    """A replay of a submission the sequencer sealed fails its batch (nothing half-written); the
    batch sealed again submission by submission refuses the replay, as such, and seals the others."""
    settings.AUDIT_SEQUENCER = True

    def submitted(name: str) -> tuple:
        event = noted_event(name)
        expected = {event.stream: None}
        return submit_validated([event], validate([event], expected), expected)

    first = submitted("first")
    seen = _pending_row(first.batch)
    sequencer = Sequencer("replayed")
    try:
        assert sequencer.acquire() and sequencer.seal_once() == 1
        _insert_pending(seen)
        second = submitted("second")
        assert sequencer.seal_once() == 0  # the batch fails on the replay's event id: nothing written
        assert sequencer.seal_once() == 1  # again, submission by submission: the replay refused, the other sealed
        (sealed,) = wait(second, timeout=1)
        assert sealed.seq == 2
        assert PendingAppend.objects.get().refused["error"].startswith("its events are in the log already")
        assert Event.objects.count() == 2 and verify_log(workers=1).ok
    finally:
        _clear_lease()


def test_a_refusal_its_writer_finds_under_the_lock_is_forgotten(committed_log, settings):
    """The sequencer refused the submission after its writer last looked: the writer, sealing it
    itself, finds the refusal under the lock, raises it, and leaves no refused row behind."""
    from django.db import transaction

    from audit.sequencer import _seal_it_myself

    settings.AUDIT_SEQUENCER = True
    with transaction.atomic():  # sealed directly: the stream is at version 1
        append([noted_event("s")], expected={("note", "s"): 0})
    event = noted_event("s")
    submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
    sequencer = Sequencer("refusing")
    try:
        assert sequencer.acquire() and sequencer.seal_once() == 0
        assert PendingAppend.objects.get().refused is not None
        with pytest.raises(ConcurrencyConflict):
            _seal_it_myself(submission)
        assert not PendingAppend.objects.exists()
    finally:
        _clear_lease()


def test_a_writer_whose_own_seal_is_refused_withdraws_its_submission(committed_log, settings):
    """Its error means, as append's, that nothing was written: the submission must not stay
    pending for a sequencer to seal or refuse later."""
    from django.db import transaction

    settings.AUDIT_SEQUENCER = True
    event = noted_event("s")
    submission = submit_validated([event], validate([event], {event.stream: 0}), {event.stream: 0})
    with transaction.atomic():  # another writer, directly: the stream moves to version 1
        append([noted_event("s")], expected={("note", "s"): 0})
    with pytest.raises(ConcurrencyConflict):
        wait(submission, timeout=0.1)
    assert not PendingAppend.objects.exists() and Event.objects.count() == 1


def _pending_row(batch: str) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT batch, entries, expected, mac FROM audit_pending WHERE batch = %s", [batch])
        return cursor.fetchone()


def _insert_pending(row: tuple) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_pending (batch, entries, expected, mac, submitted_at) VALUES (%s, %s, %s, %s, now())",
            list(row),
        )


def test_a_writer_whose_row_was_replayed_and_refused_still_gets_its_sealed_events(committed_log, settings):
    """A replay of a sealed row is refused under the row's batch; the writer, looking after that,
    finds its events in the log and is told so, not that its append was refused."""
    settings.AUDIT_SEQUENCER = True
    event = noted_event("mine")
    expected = {event.stream: None}
    submission = submit_validated([event], validate([event], expected), expected)
    seen = _pending_row(submission.batch)
    sequencer = Sequencer("replayed")
    try:
        assert sequencer.acquire() and sequencer.seal_once() == 1
        _insert_pending(seen)  # replayed before its writer looked
        assert sequencer.seal_once() == 0 and sequencer.seal_once() == 0  # failed, then refused alone
        assert PendingAppend.objects.get(batch=submission.batch).refused
        (recorded,) = wait(submission, timeout=1)
        assert recorded.event_id == submission.event_ids[0]
    finally:
        _clear_lease()


def test_run_sequencer_refuses_a_name_the_lease_cannot_hold():
    """Else it would start, never take the lease, and log a traceback every second, forever."""
    with pytest.raises(CommandError, match="--name must be at most 200 characters"):
        call_command("run_sequencer", "--name", "s" * 201, stdout=io.StringIO())


@pytest.mark.parametrize("batch", ["0", "100001", str(10**20)])
def test_run_sequencer_refuses_a_batch_out_of_range(batch):
    """10**20 would fail every seal with "bigint out of range", and say so in a traceback a second."""
    with pytest.raises(CommandError, match="--batch must be 1 to 100,000"):
        call_command("run_sequencer", "--batch", batch, stdout=io.StringIO())
