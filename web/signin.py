"""Signing in and out: a password, then the authenticator's code when the person has one or their
roles need one (enrolling it first if they have none yet). Failed passwords and wrong codes count
alike towards the lockout (django-axes); a locked-out person is told until when."""

from __future__ import annotations

import base64
import datetime as dt
import math
import time

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login, logout, update_session_auth_hash
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from audit.errors import InvalidCommand
from monitoring.access import authentication
from monitoring.access.lockout import Lockout, lockout_of
from monitoring.access.passwords import password_change
from monitoring.access.second_factor import (
    code_verify,
    device_of,
    device_unconfirmed,
    second_factor_enrol,
    second_factor_required,
)
from web.access import forbidden, signed_in

PENDING = "web.pending_signin"
ENROLLING = "web.enrolling_device"  # the authenticator this session is enrolling
PENDING_SECONDS = 300  # a password shown is good for this long while the code is asked
REPLACING = (
    "You have an authenticator already. A lost or replaced one is reset by an administrator (with a reason); "
    "you then enrol the new one at your next sign-in."
)


@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    following = _next(request)
    if request.user.is_authenticated:
        return redirect(following)
    if request.method == "GET":
        return render(request, "web/signin.html", {"next": following})
    username = request.POST.get("username", "").strip()
    password = request.POST.get("password", "")
    if not username or not password:
        return _signin_page(request, following, username, "Enter your username and your password.", 400)
    user = authenticate(request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):
        return lockout_page(request)
    if user is None:
        return _signin_page(request, following, username, "That username and password do not match.", 401)
    if device_of(user) is None and not second_factor_required(user):
        login(request, user)
        return redirect(following)
    request.session[PENDING] = {"user": user.pk, "next": following, "since": time.time(), "tries": 0}
    return redirect("web:signin-enrol" if device_of(user) is None else "web:signin-code")


@require_http_methods(["GET", "POST"])
def signin_code(request: HttpRequest) -> HttpResponse:
    user, pending = _pending(request)
    if user is None:
        messages.info(request, "Sign in with your password first.")
        return redirect("web:signin")
    if request.method == "GET":
        return render(request, "web/signin_code.html", {"person": user})
    device = device_of(user)
    if device is not None and code_verify(user, request.POST.get("code", "")):
        return _complete(request, user, device, pending["next"])
    return _wrong_code(request, user, pending, "web/signin_code.html", "That is not the current code.")


@require_http_methods(["GET", "POST"])
def signin_enrol(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator: at a sign-in whose roles need one, or when a signed-in person adds one."""
    if request.user.is_authenticated:
        user, pending = request.user, {"next": reverse("web:home"), "tries": 0}
    else:
        user, pending = _pending(request)
        if user is None:
            messages.info(request, "Sign in with your password first.")
            return redirect("web:signin")
    # Neither a session left open nor a password alone swaps the factor: enrolling here would
    # replace the owner's authenticator and sign the enroller in without the owner's code.
    if device_of(user) is not None:
        return forbidden(request, REPLACING)
    device = device_unconfirmed(user, request.session.get(ENROLLING))
    request.session[ENROLLING] = device.pk  # this session's secret: no other session's is confirmed
    context = {"person": user, **_enrolment(device)}
    if request.method == "GET":
        return render(request, "web/signin_enrol.html", context)
    try:
        second_factor_enrol(user=user, code=request.POST.get("code", ""), enrolling=device.pk)
    except InvalidCommand as refusal:
        if request.user.is_authenticated:
            return render(request, "web/signin_enrol.html", {**context, "error": str(refusal)}, status=400)
        return _wrong_code(request, user, pending, "web/signin_enrol.html", str(refusal), context)
    messages.success(request, "Your authenticator is enrolled: sign-ins now ask for its code.")
    return _complete(request, user, device_of(user), pending["next"])


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("web:signin")


@signed_in
@require_http_methods(["GET", "POST"])
def password(request: HttpRequest) -> HttpResponse:
    """Change one's own password; a wrong current password counts as a failed sign-in."""
    if request.method == "GET":
        return render(request, "web/password.html")
    user = request.user
    current, new, again = (request.POST.get(name, "") for name in ("current", "new", "again"))
    if not current or not new:
        return render(request, "web/password.html", {"error": "Enter your current and your new password."}, status=400)
    if authenticate(request, username=user.username, password=current) is None:
        if getattr(request, "axes_locked_out", False):
            return lockout_page(request)
        return render(request, "web/password.html", {"error": "Your current password is not that."}, status=400)
    if new != again:
        return render(request, "web/password.html", {"error": "The two new passwords differ."}, status=400)
    try:
        password_change(user=user, new_password=new)
    except InvalidCommand as refusal:
        return render(request, "web/password.html", {"error": str(refusal)}, status=400)
    update_session_auth_hash(request, user)
    messages.success(request, "Your password is changed. Tokens issued before stop working.")
    return redirect("web:home")


def lockout_page(request: HttpRequest, lockout: Lockout | None = None) -> HttpResponse:
    found = lockout or getattr(request, "driftledger_lockout", None)
    if found is None:
        found = lockout_of(request.META.get("REMOTE_ADDR"), request.POST.get("username"))
    if found is None:  # axes' own count
        found = Lockout(int(settings.AXES_COOLOFF_TIME * 3600), "too many failed logins")
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=found.seconds)
    answer = render(
        request,
        "web/locked.html",
        {"until": until, "reason": found.reason, "minutes": math.ceil(found.seconds / 60)},
        status=429,
    )
    answer["Retry-After"] = str(found.seconds)
    return answer


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the web pages get a page that says until when; the API its JSON."""
    if request.path.startswith("/api/"):
        return authentication.lockout_response(request, original_response, credentials)
    return lockout_page(request)


def _signin_page(request, following: str, username: str, error: str, status: int) -> HttpResponse:
    context = {"next": following, "username": username, "error": error}
    return render(request, "web/signin.html", context, status=status)


def _pending(request: HttpRequest):
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["since"] > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        return None, None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    return user, pending


def _wrong_code(request, user, pending, template: str, error: str, context: dict | None = None) -> HttpResponse:
    user_login_failed.send(sender=__name__, credentials={"username": user.username}, request=request)
    pending["tries"] += 1
    if pending["tries"] >= settings.SECOND_FACTOR_MAX_TRIES:
        request.session.pop(PENDING, None)
        if getattr(request, "axes_locked_out", False) or lockout_of(request.META.get("REMOTE_ADDR"), user.username):
            return lockout_page(request, lockout_of(request.META.get("REMOTE_ADDR"), user.username))
        messages.error(request, "Too many wrong codes: sign in again.")
        return redirect("web:signin")
    request.session[PENDING] = pending
    left = settings.SECOND_FACTOR_MAX_TRIES - pending["tries"]
    context = {**(context or {}), "person": user, "error": f"{error} {left} tr{'ies' if left != 1 else 'y'} left."}
    return render(request, template, context, status=400)


def _complete(request, user, device, following: str) -> HttpResponse:
    request.session.pop(PENDING, None)
    request.session.pop(ENROLLING, None)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    otp_login(request, device)
    return redirect(following)


def _enrolment(device) -> dict:
    secret = base64.b32encode(bytes.fromhex(device.key)).decode().rstrip("=")
    qr = segno.make(device.config_url, error="m")
    return {
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "qr_svg": qr.svg_inline(scale=4, title="QR code of the authenticator secret"),
    }


def _next(request: HttpRequest) -> str:
    following = request.POST.get("next") or request.GET.get("next") or reverse("web:home")
    if not url_has_allowed_host_and_scheme(following, {request.get_host()}, require_https=request.is_secure()):
        return reverse("web:home")
    return following
