"""The policy editor, for ML engineers: propose a new version with a reason. Before submitting,
the page says what changes and whether it is a pure tightening (it applies at once) or needs
approval (it becomes a threshold_change request for risk approvers)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audit.errors import DomainError
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import CanEngineer
from monitoring.policies.change import loosenings, policy_diff
from monitoring.policies.services import policy_load, policy_set
from monitoring.registry.models import RegisteredModel
from monitoring.remediation.kinds import ApprovalRequired, RemediationKind
from monitoring.remediation.services import remediation_request
from web.access import forbidden, may, page_view, reason_given


@page_view("models")
def policy_editor(request: HttpRequest, name: str) -> HttpResponse:
    if not RegisteredModel.objects.filter(name=name).exists():
        raise Http404(f"no model named {name}")
    current = policy_load(name)
    if request.method == "GET":
        text = json.dumps(current.policy, indent=2, sort_keys=True)
        return render(request, "web/policy.html", {"name": name, "current": current, "text": text})
    if not may(request, CanEngineer):
        return forbidden(request, CanEngineer.message)
    text, reason = request.POST.get("policy", ""), request.POST.get("reason", "")
    preview = _preview(current, text)
    if request.POST.get("action") == "preview" or preview.get("problem"):
        template = "web/policy_preview.html" if request.htmx else "web/policy.html"
        context = {"name": name, "current": current, "text": text, "preview": preview, "reason": reason}
        return render(request, template, context, status=400 if preview.get("problem") else 200)
    try:
        reason = reason_given(request)
    except DomainError as refusal:
        return _refused(request, name, current, text, preview, reason, str(refusal))
    try:
        policy_set(model=name, policy=preview["raw"], actor=actor_of(request), reason=reason)
    except ApprovalRequired as needed:
        try:
            request_id = remediation_request(
                model=name,
                kind=RemediationKind.THRESHOLD_CHANGE,
                parameters={"policy": preview["raw"]},
                evidence=[],
                actor=actor_of(request),
                reason=reason,
            )
        except DomainError as refusal:
            return _refused(request, name, current, text, preview, reason, str(refusal))
        messages.info(request, f"This change needs approval ({needed}); it is now a request for risk approvers.")
        return redirect("web:remediation", request_id=request_id)
    except DomainError as refusal:
        return _refused(request, name, current, text, preview, reason, str(refusal))
    messages.success(request, "A pure tightening: the new policy applies now.")
    return redirect("web:model", name=name)


def _refused(request, name, current, text, preview, reason, problem: str) -> HttpResponse:
    context = {"name": name, "current": current, "text": text, "preview": {**preview, "problem": problem},
               "reason": reason}  # fmt: skip
    return render(request, "web/policy.html", context, status=400)


def _preview(current, text: str) -> dict[str, Any]:
    """What the proposed document changes, and whether it needs approval; or the problem."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        return {"problem": f"not JSON: {error}"}
    try:
        proposed = current.completed(raw)
    except DomainError as refusal:
        return {"problem": str(refusal)}
    return {
        "raw": raw,
        "changes": policy_diff(current.policy, proposed, features=current.features),
        "needs_approval": bool(loosenings(current.policy, proposed, features=current.features)),
    }
