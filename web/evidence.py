"""Evidence exports for auditors and compliance officers: choose the scope, start the export,
watch its progress (HTMX polls the row until it is done), download it, and copy the command
that verifies it offline."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.api import EvidenceRequestSerializer
from audit.exports import EvidenceError, export_download, export_start, exports_visible, sees_every_export
from audit.models import EvidenceExport, LogInfo, SigningKeyRecord
from monitoring.registry.models import RegisteredModel
from web.access import page_view

STOP_POLLING = 286  # htmx stops an `every` trigger on this status


@page_view("evidence")
def evidence(request: HttpRequest) -> HttpResponse:
    problems: dict = {}
    given: dict = {}
    if request.method == "POST":
        given = {name: value.strip() for name, value in request.POST.items() if name != "csrfmiddlewaretoken"}
        data = {name: value for name, value in given.items() if value and name != "streams"}
        data["streams"] = [line.strip() for line in given.get("streams", "").splitlines() if line.strip()]
        data["include_data"] = given.get("include_data") == "on"
        form = EvidenceRequestSerializer(data=data)
        if form.is_valid():
            try:
                export = export_start(attrs=form.validated_data, user=request.user)
            except EvidenceError as refusal:
                problems = {"streams": [str(refusal)]}
            else:
                return redirect(f"{request.path}#export-{export.id}")
        else:
            problems = form.errors
    context = {
        "exports": exports_visible(request)[:50],
        "problems": problems,
        "given": given,
        "models": RegisteredModel.objects.order_by("name").values_list("name", flat=True),
        "log_id": _log_id(),
        "key_id": SigningKeyRecord.objects.order_by("valid_from_seq").values_list("key_id", flat=True).first(),
        "sees_all": sees_every_export(request),
    }
    return render(request, "web/evidence.html", context, status=400 if problems else 200)


@page_view("evidence")
def evidence_row(request: HttpRequest, export_id: uuid.UUID) -> HttpResponse:
    """One export's row, polled by the page while the export runs."""
    export = _visible(request, export_id)
    answer = render(request, "web/evidence_row.html", {"export": export, "log_id": _log_id()})
    if export.status in (EvidenceExport.Status.DONE, EvidenceExport.Status.FAILED):
        answer.status_code = STOP_POLLING
    return answer


@page_view("evidence")
def evidence_download(request: HttpRequest, export_id: uuid.UUID) -> HttpResponse:
    export = _visible(request, export_id)
    if export.status != EvidenceExport.Status.DONE:
        return render(
            request, "web/forbidden.html", {"message": f"The export is {export.status}, not done."}, status=409
        )
    return export_download(export)


def _visible(request: HttpRequest, export_id: uuid.UUID) -> EvidenceExport:
    export = exports_visible(request).filter(id=export_id).first()
    if export is None:
        raise Http404("no such evidence export among yours")
    return export


def _log_id() -> str:
    info = LogInfo.objects.first()
    return str(info.log_id) if info else ""
