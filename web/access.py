"""Who sees which page. Each page names the permission class of the API it mirrors
(monitoring/access/permissions.py), so the browser and the API admit the same people, and the
navigation shows a person only the pages they may open."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import kombu.exceptions
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from rest_framework.permissions import BasePermission

from audit.blobs import StorageUnavailable
from audit.errors import InvalidCommand
from monitoring.access.permissions import CanAdminister, CanExportEvidence, CanRead, CanReadLog
from monitoring.access.roles import roles_of

log = logging.getLogger("driftledger.web")


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    url_name: str
    permission: type[BasePermission]


PAGES = [
    Page("models", "Models", "web:models", CanRead),
    Page("alerts", "Alerts", "web:alerts", CanRead),
    Page("remediations", "Remediations", "web:remediations", CanRead),
    Page("log", "Audit log", "web:log", CanReadLog),
    Page("evidence", "Evidence", "web:evidence", CanExportEvidence),
    Page("integrity", "Integrity", "web:integrity", CanRead),
    Page("people", "People", "web:people", CanAdminister),
]
PAGE = {page.name: page for page in PAGES}


class _NoView:
    kwargs: dict = {}


def may(request: HttpRequest, permission: type[BasePermission]) -> bool:
    return permission().has_permission(request, _NoView())


def may_open(request: HttpRequest) -> list[Page]:
    return [page for page in PAGES if may(request, page.permission)]


def navigation(request: HttpRequest) -> dict:
    """Template context: the pages this person may open, their roles, and whether they read the log."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"pages": [], "my_roles": [], "may_read_log": False}
    pages = may_open(request)
    return {
        "pages": pages,
        "my_roles": sorted(role.label for role in roles_of(user)),
        "may_read_log": PAGE["log"] in pages,  # web_tags.log_link: an event is a link for its readers only
    }


def signin_redirect(request: HttpRequest) -> HttpResponse:
    """To the sign-in page, then back here. An HTMX request is told to load it as a whole page."""
    target = reverse("web:signin") + "?" + urlencode({"next": request.get_full_path()})
    if getattr(request, "htmx", False):
        answer = HttpResponse(status=204)
        answer["HX-Redirect"] = target
        return answer
    return redirect(target)


def page_view(name: str) -> Callable:
    """A page for signed-in people who hold one of its roles; others get a 403 page that says
    which roles it needs."""
    page = PAGE[name]

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return signin_redirect(request)
            if not may(request, page.permission):
                return forbidden(request, page.permission.message)
            try:
                return view(request, *args, **kwargs)
            except (kombu.exceptions.OperationalError, StorageUnavailable) as error:
                log.error("page %s answered 503: %s", request.path, error)
                what = "task queue" if isinstance(error, kombu.exceptions.OperationalError) else "object store"
                message = f"The {what} is unreachable, so nothing was done. Try again in a minute."
                return render(request, "web/forbidden.html", {"message": message}, status=503)

        return wrapped

    return decorate


def signed_in(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return signin_redirect(request)
        return view(request, *args, **kwargs)

    return wrapped


def reason_given(request: HttpRequest) -> str:
    """The form's reason for a change. The API's serializers refuse a change without one (blank
    or spaces), and a page adds no door: the reason is signed with the change, and an approver's
    is the meaning of their signature."""
    reason = request.POST.get("reason", "").strip()
    if not reason:
        raise InvalidCommand("a reason is required: it is signed with the change")
    return reason


def forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "web/forbidden.html", {"message": message}, status=403)


def second_factor_middleware(get_response: Callable) -> Callable:
    """A session signed in before the person's roles came to need a second factor, without
    having shown one, ends: the next sign-in asks for the code (or to enrol)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not user.is_verified():
            from monitoring.access.second_factor import second_factor_required

            if second_factor_required(user):
                logout(request)
        return get_response(request)

    return middleware
