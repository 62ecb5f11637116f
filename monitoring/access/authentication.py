"""Who is calling. Model services: their reporting key, `Authorization: Api-Key <key>`, checked
against its SHA-512 hash (djangorestframework-api-key); a revoked, expired or unknown key is
refused and the refusal logged; the principal can only act for its own model.

People: a password (HTTP Basic, or a session from the login page), refused while locked out
(access/lockout.py); or a short-lived token (`Authorization: Bearer <token>`) traded once for
the password at POST /api/v1/auth/token/, so scripts do not pay a password hash per call. A
token is signed with SECRET_KEY, names the person and expires after API_TOKEN_SECONDS; it stops
working at once when the person is deactivated or changes their password."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import math
from dataclasses import dataclass

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from audit.store import Actor
from monitoring.access.lockout import Lockout, lockout_message, lockout_of
from monitoring.registry.from_log import ReadModelDiverged, key_checked
from monitoring.registry.models import ModelApiKey

log = logging.getLogger("driftledger.security")
KEYWORD = "Api-Key"
BEARER = "Bearer"
TOKEN_SALT = "driftledger.api-token"  # noqa: S105 - a signing namespace, not a secret


@dataclass(frozen=True)
class ModelService:
    """The caller behind a model's reporting key."""

    model_name: str
    key_id: str
    is_authenticated: bool = True
    is_superuser: bool = False
    is_staff: bool = False
    is_active: bool = True

    @property
    def username(self) -> str:
        return f"key:{self.key_id}"

    def __str__(self) -> str:
        return f"{self.model_name} reporting key {self.key_id}"


class ModelKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        keyword, _, key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        key = key.strip()
        try:
            record = ModelApiKey.objects.get_from_key(key)
        except ModelApiKey.DoesNotExist:
            record = None
        if record is None or record.revoked or record.has_expired or not _issued_in_log(record):
            prefix = key.partition(".")[0][:8]
            log.warning("refused API key %r from %s: unknown, revoked or expired", prefix, _address(request))
            raise exceptions.AuthenticationFailed("API key unknown, revoked or expired")
        return ModelService(record.model_id, record.prefix), record

    def authenticate_header(self, request) -> str:
        return KEYWORD


def _issued_in_log(record: ModelApiKey) -> bool:
    """The row is only a copy: the key counts when the log's signed events issued it so and
    did not revoke it (a row written past the application is an integrity failure, recorded)."""
    try:
        return key_checked(record)
    except ReadModelDiverged:
        return False


class ModelKeyScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.access.authentication.ModelKeyAuthentication"
    name = "ModelApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}


class LockedOut(exceptions.Throttled):
    """429 with Retry-After: the password login is refused for a while."""

    def __init__(self, lockout: Lockout):
        super().__init__(detail=lockout_message(lockout))  # the message says the wait already
        self.wait = lockout.seconds  # Retry-After


class PasswordAuthentication(authentication.BasicAuthentication):
    """HTTP Basic, refused while the username (from this address) or the address is locked out."""

    def authenticate_credentials(self, userid, password, request=None):
        if not _plausible_username(userid):  # never sent to the database: a NUL or a novel is no one
            raise exceptions.AuthenticationFailed("Invalid username/password.")
        lockout = lockout_of(_address(request), userid) if request is not None else None
        if lockout is not None:
            log.warning("refused a login of %r from %s while locked out: %s", userid, _address(request), lockout.reason)
            raise LockedOut(lockout)
        user, auth = super().authenticate_credentials(userid, password, request)
        _second_factor_shown(user, request)
        return user, auth


class LoginBackend(AxesStandaloneBackend):
    """django-axes' check, with the per-address limit of access/lockout.py, for every login
    (the login page and the admin too): a refused login ends in `lockout_response`."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is not None and not _plausible_username(username):
            raise PermissionDenied("not a username")  # no other backend may query with it
        lockout = lockout_of(_address(request), username) if request is not None else None
        if lockout is not None:
            request.axes_locked_out = True
            request.driftledger_lockout = lockout
            raise AxesBackendPermissionDenied(lockout.reason)
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(request, original_response=None, credentials=None) -> JsonResponse:
    """What a locked-out login gets outside the API (AXES_LOCKOUT_CALLABLE): a JSON problem, 429
    with Retry-After."""
    username = (credentials or {}).get("username")
    lockout = getattr(request, "driftledger_lockout", None) or lockout_of(_address(request), username)
    if lockout is None:  # locked by axes' own count: its cool-off from now
        lockout = Lockout(math.ceil(settings.AXES_COOLOFF_TIME * 3600), "too many failed logins")
    detail = lockout_message(lockout)
    body = {"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": detail}
    answer = JsonResponse(body, status=429, content_type="application/problem+json")
    answer["Retry-After"] = str(lockout.seconds)
    return answer


def _second_factor_shown(user, request) -> None:
    """A person whose roles need a second factor sends the app's current code with the password
    (`X-Second-Factor: 123456`), as the sign-in page asks for it."""
    from monitoring.access.second_factor import code_verify, second_factor_required

    if not second_factor_required(user):
        return
    code = request.META.get("HTTP_X_SECOND_FACTOR", "") if request is not None else ""
    if not code_verify(user, code):
        log.warning("refused %r from %s: second factor missing or wrong", user.username, _address(request))
        raise exceptions.AuthenticationFailed(
            "your role needs a second factor: send the authenticator's current code as X-Second-Factor"
            " (enrol one by signing in to the web app)"
        )


def token_issue(user) -> tuple[str, dt.datetime]:
    """A token for `user` and when it expires. It says whether the second factor was shown, so
    that it stops working if the person's roles come to need one."""
    from monitoring.access.second_factor import second_factor_required

    claims = {"u": user.pk, "h": _password_mark(user), "f": second_factor_required(user)}
    token = signing.TimestampSigner(salt=TOKEN_SALT).sign_object(claims)
    return token, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.API_TOKEN_SECONDS)


class TokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        keyword, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if keyword != BEARER:
            return None
        try:
            claims = signing.TimestampSigner(salt=TOKEN_SALT).unsign_object(
                token.strip(), max_age=settings.API_TOKEN_SECONDS
            )
        except signing.SignatureExpired as error:
            log.warning("refused an expired token from %s", _address(request))
            detail = f"token expired: {error}; POST /api/v1/auth/token/ for a new one"
            raise exceptions.AuthenticationFailed(detail) from None
        except signing.BadSignature:
            log.warning("refused an invalid token from %s", _address(request))
            raise exceptions.AuthenticationFailed("token invalid") from None
        user = get_user_model().objects.filter(pk=claims.get("u"), is_active=True).first()
        if user is None or claims.get("h") != _password_mark(user):
            log.warning("refused a token of a deactivated person or a changed password from %s", _address(request))
            raise exceptions.AuthenticationFailed(
                "token no longer valid: the person was deactivated or changed password"
            )
        if not claims.get("f"):
            from monitoring.access.second_factor import second_factor_required

            if second_factor_required(user):
                raise exceptions.AuthenticationFailed(
                    "token issued without a second factor, which your role now needs: request a new one"
                )
        return user, None

    def authenticate_header(self, request) -> str:
        return BEARER


def _password_mark(user) -> str:
    """Changes when the password does, so a new password ends every token issued before."""
    return user.get_session_auth_hash()[:16]


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.access.authentication.TokenAuthentication"
    name = "Token"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "a token from POST /api/v1/auth/token/"}


class PasswordScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.access.authentication.PasswordAuthentication"
    name = "Basic"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic"}


def username_tried(request) -> str | None:
    """The username of a request's Basic credentials (never the password), for the security log."""
    keyword, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if keyword.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode("utf-8", "replace").partition(":")[0][:150]
    except (binascii.Error, ValueError):
        return None


def axes_username(request, credentials) -> str | None:
    """The username django-axes records (AXES_USERNAME_CALLABLE): as tried, but without NUL and
    cut to what its column holds, so a hostile one is still counted rather than crashing."""
    username = (credentials or {}).get("username")
    return None if username is None else str(username).replace("\x00", "\ufffd")[:150]


def _plausible_username(username: str) -> bool:
    """What a username can be (Django's are at most 150 characters); anything else is refused
    before it reaches a query or the failure log."""
    return 0 < len(username) <= 150 and "\x00" not in username


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "?")


def actor_of(request) -> Actor:
    """Who is acting, as the log records it: a person, or a model's reporting key."""
    user = request.user
    if isinstance(user, ModelService):
        return Actor("service", user.username, str(user))
    return Actor("user", user.username, user.get_full_name() or user.username)
