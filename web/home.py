"""The first page after signing in: the pages this person may open, what each is for, and the
state of the log at a glance."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from audit.models import Checkpoint, LogVerification
from monitoring.access.second_factor import device_of, second_factor_required
from web.access import may_open, signed_in

PURPOSE = {
    "models": "Every model's health; a model's timelines, deployments and policy; a run's checks and diagnosis.",
    "alerts": "Open alerts grouped into incidents: acknowledge, resolve or silence them.",
    "remediations": "Requests for rollbacks, retraining and policy changes: decide, follow, retry.",
    "log": "Every signed event, newest first: filter, read its thread, verify it in your browser.",
    "evidence": "Export a signed bundle of a model or a period, and verify it offline.",
    "integrity": "The latest checkpoint, the witnesses, the signing keys and the last full verification.",
    "people": "Register people, grant and revoke roles, require a second factor.",
}


@signed_in
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "cards": [(page, PURPOSE.get(page.name, "")) for page in may_open(request)],
        "checkpoint": Checkpoint.objects.order_by("-tree_size").first(),
        "verification": LogVerification.objects.exclude(finished_at=None).first(),
        "has_device": device_of(user) is not None,
        "needs_device": second_factor_required(user),
    }
    return render(request, "web/home.html", context)
