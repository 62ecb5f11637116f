"""Celery tasks of the audit log: thin, idempotent, by id."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from audit.checkpoints import checkpoint_create
from audit.models import EvidenceExport

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def checkpoint_if_grown() -> int | None:
    """Beat runs this every minute; it checkpoints only when the log has grown."""
    checkpoint = checkpoint_create()
    return checkpoint.tree_size if checkpoint else None


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
