"""Celery tasks of the audit log: thin, idempotent, by id."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from audit.blobs import StorageUnavailable, export_path, export_save
from audit.checkpoints import CheckpointError, checkpoint_create
from audit.cosigning import cosign
from audit.events import ReadModelsDiverged
from audit.models import EvidenceExport
from audit.read_model_check import read_models_diverged
from audit.selfcheck import (
    VerificationRunning,
    integrity_failure_is_latest,
    integrity_failure_record,
    log_verify_recorded,
)
from audit.store import SYSTEM_ACTOR, NewEvent, append

logger = logging.getLogger(__name__)

# Generous, and shorter than the schedule: one core verifies about 10,000 events/s (docs/performance.md),
# so three hours cover some 100 million events. Killed at the hard limit, a verification stops counting.
VERIFY_SOFT_TIME_LIMIT = 3 * 3600
VERIFY_TIME_LIMIT = VERIFY_SOFT_TIME_LIMIT + 60


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_if_grown() -> int | None:
    """Beat runs this every minute; it checkpoints only when the log has grown. When the log no
    longer matches what was signed, it signs nothing and the failure is recorded and notified.
    A witness that missed the latest checkpoint (it was down) is asked again."""
    try:
        checkpoint = checkpoint_create()
    except CheckpointError as refusal:
        integrity_failure_record(f"the checkpointer refused to sign: {refusal}")
        raise
    if checkpoint is not None:
        cosign(checkpoint)
    return checkpoint.tree_size if checkpoint else None


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=VERIFY_SOFT_TIME_LIMIT, time_limit=VERIFY_TIME_LIMIT)
def check_read_models() -> int:
    """Beat runs this every AUDIT_READ_MODEL_CHECK_EVERY_MINUTES: every read model replayed from
    the log and compared. A difference is an integrity failure (the Integrity page, /metrics,
    every notifier: once while it lasts) and a signed audit.ReadModelsDiverged naming the tables
    and rows. Returns how many tables differ."""
    found = read_models_diverged()
    if not found:
        return 0
    problem = "the read models differ from the log: " + "; ".join(str(divergence) for divergence in found)
    if not integrity_failure_is_latest(problem):
        diverged = ReadModelsDiverged(tables=[asdict(divergence) for divergence in found])
        append(
            [NewEvent("integrity", "read-models", diverged, SYSTEM_ACTOR)],
            expected={("integrity", "read-models"): None},
        )
        integrity_failure_record(problem)
    return len(found)


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=VERIFY_SOFT_TIME_LIMIT, time_limit=VERIFY_TIME_LIMIT)
def verify_log() -> int | None:
    """Beat runs this every AUDIT_VERIFY_EVERY_HOURS: the full verification, recorded (see
    audit.selfcheck). A copy that arrives while another verification is running (a redelivery,
    an overlap) skips."""
    try:
        verification = log_verify_recorded(unless_running_within=dt.timedelta(seconds=VERIFY_TIME_LIMIT))
    except VerificationRunning as running:
        logger.info("audit log verification skipped: %s", running)
        return None
    return verification.id


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=VERIFY_SOFT_TIME_LIMIT, time_limit=VERIFY_TIME_LIMIT)
def verify_new_events() -> int | None:
    """Beat runs this every AUDIT_VERIFY_NEW_EVERY_MINUTES: the events appended since the head of
    the latest verification that passed, chained to it (incremental, recorded). Skips while
    another verification runs."""
    try:
        verification = log_verify_recorded(
            unless_running_within=dt.timedelta(seconds=VERIFY_TIME_LIMIT), incremental=True
        )
    except VerificationRunning as running:
        logger.info("incremental verification skipped: %s", running)
        return None
    return verification.id


EXPORT_STORAGE_RETRIES = 8  # about 10 minutes of backoff before an unreachable store fails the export


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    soft_time_limit=3600,
    time_limit=3660,
    max_retries=EXPORT_STORAGE_RETRIES,
)
def export_evidence_task(self, export_id: str) -> None:
    """Writes the bundle in a scratch file and puts it in storage before the log records it. When
    the storage cannot be reached (its data files to read, or the bundle to write), nothing is
    recorded: the export waits in the queue and tries again with backoff, and fails only after
    EXPORT_STORAGE_RETRIES retries."""
    from audit.evidence import EvidenceError, evidence_export, query_from_dict
    from audit.store import Actor

    unfinished = (EvidenceExport.Status.QUEUED, EvidenceExport.Status.RUNNING)  # RUNNING: a worker died in it
    claimed = EvidenceExport.objects.filter(id=export_id, status__in=unfinished).update(
        status=EvidenceExport.Status.RUNNING
    )
    if not claimed:  # redelivered after it finished, or unknown: nothing to do
        return
    export = EvidenceExport.objects.get(id=export_id)
    if _finished_before(export):
        return

    def failed(error: str) -> None:
        EvidenceExport.objects.filter(id=export_id).update(
            status=EvidenceExport.Status.FAILED, error=error, finished_at=timezone.now()
        )

    user = export.requested_by
    scratch = Path(settings.DATA_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as workdir, _progress_seen(export_id) as progress:
        out = Path(workdir) / "bundle.zip"
        try:
            summary = evidence_export(
                query=query_from_dict(export.query),
                out=out,
                created_by=Actor("user", user.get_username(), user.get_full_name() or user.get_username()),
                export_id=str(export.id),
                progress=progress,
                deliver=lambda bundle: export_save(export_id, bundle),
            )
        except EvidenceError as exc:
            failed(str(exc))
            return
        except StorageUnavailable as exc:
            reason = str(exc)
            if self.request.retries >= EXPORT_STORAGE_RETRIES:
                failed(reason)
                return
            logger.warning("evidence export %s waits: %s", export_id, reason)
            EvidenceExport.objects.filter(id=export_id).update(
                status=EvidenceExport.Status.QUEUED, error=f"{reason}; trying again"
            )
            raise self.retry(countdown=min(120, 5 * 2**self.request.retries)) from exc
        except Exception as exc:
            logger.exception("evidence export %s failed", export_id)
            failed(f"internal error: {type(exc).__name__}")
            raise
    EvidenceExport.objects.filter(id=export_id).update(
        status=EvidenceExport.Status.DONE,
        file=export_path(export_id),
        sha256=summary.sha256,
        error="",
        finished_at=timezone.now(),
        events_done=summary.events,
        events_total=summary.events,
        missing_data=summary.missing_data,
    )


def _finished_before(export: EvidenceExport) -> bool:
    """A redelivered export (its worker died after the log recorded it) is done: exporting again
    would store a bundle other than the one the log names, under the same name."""
    from audit.models import Event

    recorded = (
        Event.objects.filter(stream_type="evidence", stream_id=str(export.id), event_type="audit.EvidenceExported")
        .values_list("payload", flat=True)
        .first()
    )
    if recorded is None:
        return False
    EvidenceExport.objects.filter(id=export.id).update(
        status=EvidenceExport.Status.DONE,
        file=export_path(str(export.id)),
        sha256=recorded["bundle_sha256"],
        error="",
        finished_at=timezone.now(),
        events_done=recorded["events"],
        events_total=recorded["events"],
    )
    return True


@contextlib.contextmanager
def _progress_seen(export_id: str) -> Iterator[Callable[[int, int], None]]:
    """How far the export is, written on a connection of its own: the export reads the log in one
    transaction, and what it wrote there no one would see before it ends."""
    side = None

    def progress(done: int, total: int) -> None:
        nonlocal side
        side = side or connections.create_connection(DEFAULT_DB_ALIAS)
        with side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {EvidenceExport._meta.db_table} SET events_done = %s, events_total = %s WHERE id = %s",
                [done, total, export_id],
            )

    try:
        yield progress
    finally:
        if side is not None:
            side.close()
