"""The remediation queue. Risk approvers see what waits for their decision with the cited
evidence inline, and approve or reject by re-entering their password (and their authenticator's
code when their role needs one); the page then shows the signature exactly as signed. Requesters
follow their requests live, and retry, abandon or withdraw them. Everything goes through the
remediation services with the API's permission declarations: no page decides anything itself."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from audit.envelope import format_time
from audit.errors import DomainError
from audit.log import log_summaries
from audit.models import Event
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import CanDecide, CanEngineer, CanRequest
from monitoring.access.roles import Role, has_role
from monitoring.access.second_factor import second_factor_required
from monitoring.alerting.models import Alert
from monitoring.registry.models import ModelVersion
from monitoring.remediation import api, services
from monitoring.remediation.domain import RemediationState
from monitoring.remediation.kinds import PARAMETERS, RemediationKind
from monitoring.remediation.models import Remediation
from monitoring.runs.models import Run
from web.access import forbidden, may, page_view, reason_given

STOP_POLLING = 286
OPEN = (RemediationState.REQUESTED, RemediationState.APPROVED, RemediationState.EXECUTING, RemediationState.FAILED)
FROM_A_RUN = [  # the kinds a page files; a policy change comes from the policy editor
    RemediationKind.ROLLBACK,
    RemediationKind.RETRAIN,
    RemediationKind.PROMOTE_CHALLENGER,
    RemediationKind.SET_CHALLENGER,
    RemediationKind.CANARY_START,
    RemediationKind.CANARY_STOP,
    RemediationKind.ACCEPT_RISK,
]


@page_view("remediations")
def queue(request: HttpRequest) -> HttpResponse:
    me = request.user.username
    approver = has_role(request.user, {Role.RISK_APPROVER})
    waiting = [
        r
        for r in Remediation.objects.filter(state=RemediationState.REQUESTED).order_by("requested_seq")
        if r.requested_by != me and all(a.get("by") != me for a in r.approvals)
    ]
    review_by = timezone.now() - dt.timedelta(minutes=settings.REMEDIATION_REVIEW_MINUTES)
    unreviewed = Remediation.objects.filter(break_glass=True, reviewed_by="").exclude(
        state__in=[
            RemediationState.REQUESTED,
            RemediationState.REJECTED,
            RemediationState.CANCELLED,
            RemediationState.EXPIRED,  # lapsed before it was made: nothing to review
        ]
    )
    context = {
        "approver": approver,
        "waiting": [(r, _evidence(r), _reason(r)) for r in waiting] if approver else [],
        "unreviewed": [(r, r.requested_at < review_by) for r in unreviewed.order_by("requested_seq")],
        "mine": Remediation.objects.filter(requested_by=me).order_by("-requested_seq")[:30],
        "recent": Remediation.objects.exclude(state__in=OPEN).order_by("-updated_seq")[:20],
        "open": Remediation.objects.filter(state__in=OPEN).order_by("-requested_seq")[:50],
    }
    return render(request, "web/remediations.html", context)


@page_view("remediations")
def detail(request: HttpRequest, request_id) -> HttpResponse:
    remediation = _remediation(request_id)
    if request.method == "POST":
        return _act(request, remediation)
    return render(request, "web/remediation.html", _detail_context(request, remediation))


@page_view("remediations")
def status(request: HttpRequest, request_id) -> HttpResponse:
    """The request's state, polled by its page while it moves on its own (approved, executing)."""
    remediation = _remediation(request_id)
    answer = render(request, "web/remediation_status.html", {"r": remediation})
    if remediation.state not in (RemediationState.APPROVED, RemediationState.EXECUTING):
        answer.status_code = STOP_POLLING
    return answer


@page_view("remediations")
def new_request(request: HttpRequest) -> HttpResponse:
    run = _cited_run(request)
    if not may(request, CanRequest):
        return forbidden(request, CanRequest.message)
    alerts = list(Alert.objects.filter(run_id=str(run.run_id)).order_by("-raised_seq"))
    context = {
        "run": run,
        "alerts": alerts,
        "kinds": FROM_A_RUN,
        "versions": ModelVersion.objects.filter(model_id=run.model_name, retired=False).order_by("registered_seq"),
        "approver": has_role(request.user, {Role.RISK_APPROVER}),
        "needs_code": second_factor_required(request.user),
        "given": request.POST,
    }
    if request.method != "POST":
        return render(request, "web/remediation_new.html", context)
    break_glass = request.POST.get("break_glass") == "on"
    refusal = services.requester_refusal(request.user, break_glass=break_glass)
    if refusal:
        return forbidden(request, refusal)
    try:
        kind = RemediationKind(request.POST.get("kind", ""))
        credentials = None
        if break_glass:  # carried out at once: the person signs it as they would an approval
            if not request.POST.get("password"):
                raise DomainError("A break-glass rollback is carried out at once: re-enter your password to file it.")
            credentials = services.Credentials(
                request.user, request.POST.get("password", ""), request.POST.get("code", ""), request
            )
        request_id = services.remediation_request(
            model=run.model_name,
            kind=kind,
            parameters=_parameters(kind, request.POST),
            evidence=request.POST.getlist("evidence"),
            actor=actor_of(request),
            reason=reason_given(request),
            break_glass=break_glass,
            credentials=credentials,
        )
    except (DomainError, ValueError) as refusal_:
        messages.error(request, str(refusal_))
        return render(request, "web/remediation_new.html", context, status=400)
    messages.success(request, "Requested: it waits for a risk approver's decision.")
    return redirect("web:remediation", request_id=request_id)


def _cited_run(request: HttpRequest) -> Run:
    """The run a request is filed from (?run= or the form's run). An id that is not a UUID
    names no run: 404, not the database's refusal of it."""
    try:
        run_id = uuid.UUID(request.GET.get("run") or request.POST.get("run") or "")
    except ValueError:
        run_id = None
    run = Run.objects.filter(run_id=run_id).first() if run_id else None
    if run is None:
        raise Http404("a request is filed from a run: open the run first")
    return run


def _parameters(kind: RemediationKind, form) -> dict[str, Any]:
    """The request's parameters from the form's fields of the same names."""
    parameters: dict[str, Any] = {}
    for name in sorted(PARAMETERS[kind]):
        value = form.get(name, "").strip()
        if not value:
            raise ValueError(f"{kind.value} needs {name}")
        if name == "share":
            parameters[name] = float(value)
        elif name in ("until", "data_start", "data_end"):
            moment = dt.datetime.fromisoformat(value)  # a time with an offset is read in UTC, never relabelled
            try:
                parameters[name] = format_time(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
            except OverflowError as error:  # year 1 or 9999 with an offset leaves datetime's range in UTC
                raise ValueError(f"{name} {value!r} is out of range") from error
        else:
            parameters[name] = value
    return parameters


def _act(request: HttpRequest, remediation: Remediation) -> HttpResponse:
    action = request.POST.get("action", "")
    request_id = str(remediation.request_id)
    checks = {
        "approve": CanDecide,
        "reject": CanDecide,
        "review": CanDecide,
        "cancel": api.RemediationCancelView.permission_classes[0],
        "retry": CanEngineer,
        "abandon": CanEngineer,
    }
    permission = checks.get(action)
    if permission is None:
        messages.error(request, "Unknown action.")
        return redirect("web:remediation", request_id=request_id)
    if not may(request, permission):
        return forbidden(request, permission.message)
    try:
        reason = reason_given(request) if action != "retry" else ""  # the API's retry takes none
        if action in ("approve", "reject", "review"):
            services.remediation_decide(
                request_id=request_id,
                decision=action,
                user=request.user,
                password=request.POST.get("password", ""),
                reason=reason,
                request=request,
                code=request.POST.get("code", ""),
            )
        elif action == "cancel":
            services.remediation_execute(
                request_id, lambda r: r.cancel(request.user.username), actor=actor_of(request), reason=reason
            )
        elif action == "abandon":
            services.remediation_execute(request_id, lambda r: r.abandon(), actor=actor_of(request), reason=reason)
        elif remediation.state == RemediationState.FAILED:
            services.remediation_run(request_id)
        else:
            raise DomainError("only a failed request is retried")
    except DomainError as refusal:
        messages.error(request, str(refusal))
        remediation.refresh_from_db()
        return render(request, "web/remediation.html", _detail_context(request, remediation), status=400)
    messages.success(request, f"Done: {action}.")
    return redirect("web:remediation", request_id=request_id)


def _remediation(request_id) -> Remediation:
    found = Remediation.objects.filter(request_id=request_id).first()
    if found is None:
        raise Http404(f"no remediation request {request_id}")
    return found


def _detail_context(request: HttpRequest, r: Remediation) -> dict[str, Any]:
    me = request.user.username
    history = log_summaries(
        Event.objects.filter(stream_type="remediation", stream_id=str(r.request_id)).order_by("seq")
    )
    signatures = [
        {**json.loads(event["canonical"])["payload"], "seq": event["seq"]}
        for event in history
        if event["type"] in ("monitoring.RemediationApproved", "monitoring.RemediationRejected",
                                       "monitoring.RemediationReviewed")
    ]  # fmt: skip
    return {
        "r": r,
        "reason": _reason(r),
        "evidence": _evidence(r),
        "history": history,
        "signatures": signatures,
        "may_decide": may(request, CanDecide)
        and r.requested_by != me
        and r.state == RemediationState.REQUESTED
        and all(a.get("by") != me for a in r.approvals),
        "may_review": may(request, CanDecide)
        and r.break_glass
        and not r.reviewed_by
        and r.requested_by != me
        and r.state not in (RemediationState.REQUESTED, RemediationState.REJECTED, RemediationState.CANCELLED),
        "may_cancel": r.requested_by == me and r.state == RemediationState.REQUESTED,
        "may_abandon": may(request, CanEngineer) and r.state == RemediationState.FAILED,
        "may_retry": may(request, CanEngineer)
        and r.state == RemediationState.FAILED
        and timezone.now() < (services.retry_deadline(str(r.request_id)) or timezone.now()),  # else refused
        "needs_code": second_factor_required(request.user),
        "polling": r.state in (RemediationState.APPROVED, RemediationState.EXECUTING),
        "own": r.requested_by == me,
    }


def _reason(r: Remediation) -> str:
    """Why the requester asked, as signed in the request's first event."""
    row = Event.objects.filter(stream_type="remediation", stream_id=str(r.request_id), stream_version=1).first()
    return (json.loads(bytes(row.canonical)).get("reason") or "") if row else ""


def _evidence(r: Remediation) -> list[dict[str, Any]]:
    """What the request cites, told inline: each event's sentence, and for a run its diagnosis
    and failing checks, for an alert its summary."""
    found = []
    rows = Event.objects.filter(event_id__in=r.evidence).order_by("seq")
    for row, told in zip(rows, log_summaries(rows), strict=True):
        item: dict[str, Any] = {"event": told}
        if row.stream_type == "run":
            item["run"] = Run.objects.filter(run_id=row.stream_id).first()
            if item["run"]:
                failing = [c for c in item["run"].checks or [] if c.get("status") != "ok"][:8]
                item["failing"] = [{**c, "subject": c.get("feature") or c.get("segment") or c.get("metric") or ""}
                                   for c in failing]  # fmt: skip
        elif row.stream_type == "alert":
            item["alert"] = Alert.objects.filter(alert_id=row.stream_id).first()
        found.append(item)
    return found
