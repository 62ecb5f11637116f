"""Evidence exports as people start and find them: one place for the API and the web pages.

Who may export is configured (AUDIT_EVIDENCE_PERMISSIONS); each person sees the exports they
started, and those admitted by AUDIT_EVIDENCE_ALL_PERMISSIONS (administrators) see everyone's."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import kombu.exceptions
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import FileResponse
from django.utils import timezone
from django.utils.module_loading import import_string

from audit.blobs import stored_open
from audit.envelope import format_time
from audit.evidence import EvidenceError, query_from_dict, query_matches, scopes
from audit.models import EvidenceExport


def export_start(*, attrs: dict[str, Any], user) -> EvidenceExport:
    """Queue an export of the validated scope `attrs` (EvidenceRequestSerializer's fields);
    the worker writes the bundle. Raises EvidenceError for a scope the log cannot export."""
    from audit.tasks import export_evidence_task

    query = {
        **{scope.name: attrs.get(scope.name) or None for scope in scopes()},
        "since": format_time(attrs["since"]) if attrs.get("since") else None,
        "until": format_time(attrs["until"]) if attrs.get("until") else None,
        "streams": list(attrs.get("streams") or []),
        "include_data": bool(attrs.get("include_data")),
    }
    if not query_matches(query_from_dict(query)):  # and a stream that is not TYPE:ID, before anything is stored
        raise EvidenceError("no event of the log matches this query: check the model, the streams and the period")
    export = EvidenceExport.objects.create(id=uuid.uuid4(), requested_by=user, query=query)

    def queue() -> None:
        try:
            export_evidence_task.delay(str(export.id))
        except kombu.exceptions.OperationalError:  # the caller answers 503; no export waits forever
            EvidenceExport.objects.filter(id=export.id).update(
                status=EvidenceExport.Status.FAILED,
                error="the task queue was unreachable: start the export again",
                finished_at=timezone.now(),
            )
            raise

    transaction.on_commit(queue)
    return export


def sees_every_export(request) -> bool:
    paths = getattr(settings, "AUDIT_EVIDENCE_ALL_PERMISSIONS", [])
    return any(import_string(path)().has_permission(request, None) for path in paths)


def exports_visible(request) -> QuerySet[EvidenceExport]:
    """The exports this caller may list and download: their own, or everyone's for those
    admitted by AUDIT_EVIDENCE_ALL_PERMISSIONS."""
    exports = EvidenceExport.objects.select_related("requested_by")
    return exports if sees_every_export(request) else exports.filter(requested_by=request.user)


def export_download(export: EvidenceExport) -> FileResponse:
    """The finished bundle as an attachment, with its SHA-256 in a Digest header."""
    # An absolute path: written before exports went to storage. FileResponse closes the file.
    legacy = Path(export.file).is_absolute()
    bundle = open(export.file, "rb") if legacy else stored_open(export.file)  # noqa: SIM115
    response = FileResponse(
        bundle,
        as_attachment=True,
        filename=f"evidence-{export.id}.zip",
        content_type="application/zip",
    )
    response["Digest"] = f"sha-256={export.sha256}"
    return response


__all__ = ["EvidenceError", "export_download", "export_start", "exports_visible", "sees_every_export"]
