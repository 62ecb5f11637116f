"""The audit log, for compliance officers, auditors and administrators: newest first, filtered,
a page at a time; and one event in full, with its thread and its inclusion proof, which the page
verifies in the browser itself (static/web/verify.js)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from audit import events
from audit.api import LogQuerySerializer
from audit.log import LogQueryError, log_event, log_page
from monitoring.registry.models import RegisteredModel
from web.access import page_view


@page_view("log")
def log_list(request: HttpRequest) -> HttpResponse:
    given = {name: value.strip() for name, value in request.GET.items() if value.strip()}
    form = LogQuerySerializer(data=given)
    found: list[dict] = []
    cursor: int | None = None
    problems: dict = {}
    if form.is_valid():
        try:
            found, cursor = log_page(form.log_filter())
        except LogQueryError as refusal:
            problems = {"detail": [str(refusal)]}
    else:
        problems = form.errors
    following = None
    if cursor is not None:
        params = request.GET.copy()
        params["before"] = str(cursor)
        following = f"{request.path}?{params.urlencode()}"
    context = {
        "events": found,
        "following": following,
        "problems": problems,
        "given": given,
        "filtered": any(name not in ("before", "limit") for name in given),
        "types": sorted({kind.type_name for kind in events.all_types()}),
        "models": RegisteredModel.objects.order_by("name").values_list("name", flat=True),
    }
    template = "web/log_results.html" if request.htmx and request.htmx.target == "log-results" else "web/log.html"
    return render(request, template, context, status=400 if problems else 200)


@page_view("log")
def log_detail(request: HttpRequest, seq: int) -> HttpResponse:
    found = log_event(seq)
    if found is None:
        raise Http404(f"no event with seq {seq}")
    check = {
        name: found[name] for name in ("seq", "canonical", "hash", "leaf_hash", "signature", "key_id", "public_key")
    } | {"proof": found["proof"]}
    return render(
        request,
        "web/log_event.html",
        {"event": found, "causes": list(reversed(found["causes"])), "check": check, "page": _page_of(found)},
    )


def _page_of(event: dict) -> str | None:
    """The monitoring page of the thing the event's stream is about, when there is one."""
    kind, ident = event["stream"]["type"], event["stream"]["id"]
    names = {"run": "web:run", "remediation": "web:remediation", "model": "web:model", "policy": "web:model"}
    if kind not in names:
        return None
    try:
        argument = {"run": "run_id", "remediation": "request_id"}.get(kind, "name")
        return reverse(names[kind], kwargs={argument: ident})
    except NoReverseMatch:
        return None
