"""People and roles, for administrators: register a person with roles, grant and revoke roles,
deactivate and reactivate, reset a lost second factor, and say which roles need one. Every
change takes a reason and is a signed event (monitoring/access/services.py); the page only
gathers the form."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.errors import DomainError
from monitoring.access import services
from monitoring.access.authentication import actor_of
from monitoring.access.domain import Role
from monitoring.access.second_factor import (
    second_factor_floor,
    second_factor_reset,
    second_factor_roles,
    sign_in_policy_set,
)
from web.access import page_view

User = get_user_model()


@page_view("people")
def people(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = request.POST
        done = _attempt(
            request,
            lambda: services.person_register(
                username=form.get("username", "").strip(),
                full_name=form.get("full_name", ""),
                email=form.get("email", "").strip() or None,
                password=form.get("password", ""),
                roles=form.getlist("roles"),
                actor=actor_of(request),
                reason=form.get("reason", ""),
            ),
            f"Registered {form.get('username', '').strip()}.",
        )
        if done:
            return redirect("web:person", username=form.get("username", "").strip())
    return _people_page(request, status=400 if request.method == "POST" else 200)


@page_view("people")
def sign_in_policy(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("web:people")
    roles = request.POST.getlist("roles")
    done = _attempt(
        request,
        lambda: sign_in_policy_set(roles=roles, actor=actor_of(request), reason=request.POST.get("reason", "")),
        "The sign-in policy is changed: the roles it names enrol or show a code at their next sign-in.",
    )
    return redirect("web:people") if done else _people_page(request, status=400)


@page_view("people")
def person(request: HttpRequest, username: str) -> HttpResponse:
    account = User.objects.filter(username=username).first()
    if account is None:
        raise Http404(f"no person named {username}")
    if request.method == "POST":
        actor, reason, role = actor_of(request), request.POST.get("reason", ""), request.POST.get("role", "")
        actions: dict[str, tuple[Callable, str]] = {
            "grant": (
                lambda: services.role_grant(username=username, role=role, actor=actor, reason=reason),
                f"Gave {username} the {role} role.",
            ),
            "revoke": (
                lambda: services.role_revoke(username=username, role=role, actor=actor, reason=reason),
                f"Took the {role} role from {username}.",
            ),
            "deactivate": (
                lambda: services.person_deactivate(username=username, actor=actor, reason=reason),
                f"Deactivated {username}: they can no longer sign in or act.",
            ),
            "reactivate": (
                lambda: services.person_reactivate(username=username, actor=actor, reason=reason),
                f"Reactivated {username}.",
            ),
            "reset_second_factor": (
                lambda: second_factor_reset(username=username, actor=actor, reason=reason),
                f"Reset the second factor of {username}: they enrol a new one at their next sign-in.",
            ),
        }
        chosen = actions.get(request.POST.get("action", ""))
        if chosen is None:
            messages.error(request, "Unknown action.")
        elif _attempt(request, *chosen):
            return redirect("web:person", username=username)
        account.refresh_from_db()
        return _person_page(request, account, status=400)
    return _person_page(request, account)


def _attempt(request: HttpRequest, change: Callable, success: str) -> bool:
    """Run one change; a refusal of the domain becomes the page's error message."""
    try:
        change()
    except DomainError as refusal:
        messages.error(request, str(refusal))
        return False
    messages.success(request, success)
    return True


def _people_page(request: HttpRequest, status: int = 200) -> HttpResponse:
    accounts = User.objects.order_by("username").prefetch_related("groups")
    enrolled = set(TOTPDevice.objects.filter(confirmed=True).values_list("user__username", flat=True))
    rows = [
        (
            account,
            sorted(group.name for group in account.groups.all() if group.name in set(Role)),
            account.username in enrolled,
        )
        for account in accounts
    ]
    context = {
        "rows": rows,
        "roles": list(Role),
        "required": second_factor_roles(),
        "floor": second_factor_floor(),
        "given": request.POST if request.method == "POST" else {},
    }
    return render(request, "web/people.html", context, status=status)


def _person_page(request: HttpRequest, account, status: int = 200) -> HttpResponse:
    held = sorted(group.name for group in account.groups.all() if group.name in set(Role))
    context = {
        "account": account,
        "held": held,
        "grantable": [role for role in Role if role not in held],
        "enrolled": TOTPDevice.objects.filter(user=account, confirmed=True).exists(),
        "is_me": account.username == request.user.username,
    }
    return render(request, "web/person.html", context, status=status)
