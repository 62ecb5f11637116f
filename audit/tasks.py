"""Celery tasks of the audit log: thin, idempotent, by id."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from audit.checkpoints import checkpoint_create
from audit.models import EvidenceExport
from audit.selfcheck import VerificationRunning, log_verify_recorded

logger = logging.getLogger(__name__)

# Generous, and shorter than the schedule: one core verifies about 10,000 events/s (docs/performance.md),
# so three hours cover some 100 million events. Killed at the hard limit, a verification stops counting.
VERIFY_SOFT_TIME_LIMIT = 3 * 3600
VERIFY_TIME_LIMIT = VERIFY_SOFT_TIME_LIMIT + 60


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_if_grown() -> int | None:
    """Beat runs this every minute; it checkpoints only when the log has grown."""
    checkpoint = checkpoint_create()
    return checkpoint.tree_size if checkpoint else None


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


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=3600, time_limit=3660)
def export_evidence_task(export_id: str) -> None:
    from audit.evidence import EvidenceError, evidence_export, query_from_dict
    from audit.store import Actor

    unfinished = (EvidenceExport.Status.QUEUED, EvidenceExport.Status.RUNNING)  # RUNNING: a worker died in it
    claimed = EvidenceExport.objects.filter(id=export_id, status__in=unfinished).update(
        status=EvidenceExport.Status.RUNNING
    )
    if not claimed:  # redelivered after it finished, or unknown: nothing to do
        return
    export = EvidenceExport.objects.get(id=export_id)
    out = Path(settings.DATA_DIR) / "evidence" / f"{export_id}.zip"

    def progress(done: int, total: int) -> None:
        EvidenceExport.objects.filter(id=export_id).update(events_done=done, events_total=total)

    user = export.requested_by
    try:
        summary = evidence_export(
            query=query_from_dict(export.query),
            out=out,
            created_by=Actor("user", user.get_username(), user.get_full_name() or user.get_username()),
            export_id=str(export.id),
            progress=progress,
        )
    except EvidenceError as exc:
        EvidenceExport.objects.filter(id=export_id).update(
            status=EvidenceExport.Status.FAILED, error=str(exc), finished_at=timezone.now()
        )
        return
    except Exception as exc:
        logger.exception("evidence export %s failed", export_id)
        EvidenceExport.objects.filter(id=export_id).update(
            status=EvidenceExport.Status.FAILED,
            error=f"internal error: {type(exc).__name__}",
            finished_at=timezone.now(),
        )
        raise
    EvidenceExport.objects.filter(id=export_id).update(
        status=EvidenceExport.Status.DONE,
        file=str(out),
        sha256=summary.sha256,
        finished_at=timezone.now(),
        events_done=F("events_total"),
    )
