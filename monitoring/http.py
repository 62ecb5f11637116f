"""The app's HTTP wiring shared by every concept's API: refusals turned into precise 4xx
answers (and authentication failures and permission refusals logged), input validation, and
the reason every change of state carries."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from http import HTTPStatus

import django.db
import django.views.defaults
import kombu.exceptions
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from audit.blobs import StorageUnavailable
from audit.errors import AlreadyExists, DomainError, NotFound
from audit.sequencer import OutcomeUnknown
from audit.store import ConcurrencyConflict
from monitoring.access.authentication import username_tried
from monitoring.ingestion.conform import BatchRejected
from monitoring.ingestion.parsing import TooLarge, UnreadableBody, UnsupportedContentType
from monitoring.registry.data_schema import SchemaError
from monitoring.registry.from_log import ReadModelDiverged
from monitoring.remediation.domain import RequestConflict
from monitoring.remediation.kinds import ApprovalRequired
from monitoring.remediation.services import ReauthenticationFailed

log = logging.getLogger("driftledger.security")


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField()


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def body_limit(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: a request that announces a body over INGEST_MAX_BODY_BYTES is answered 413
    with a JSON problem before a byte of it is read."""

    def middleware(request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.INGEST_MAX_BODY_BYTES
        if length > limit:
            detail = f"the body is {length:,} bytes, over the limit of {limit:,} (INGEST_MAX_BODY_BYTES)"
            return _problem(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail)
        return get_response(request)

    return middleware


def nul_refused(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware: PostgreSQL holds no NUL character, so an address, a query or a page's form
    carrying one failed in the database (500) or was signed into the log where the API refuses
    it; it is answered 400 before any view reads it. A page's form is read as CSRF does; an API
    body is left to its parser (its serializers refuse NUL)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        api = request.path.startswith("/api/")
        given = [request.path, *_texts(request.GET)]
        if not api and request.method == "POST":
            given += _texts(request.POST)
        if not any("\x00" in text for text in given):
            return get_response(request)
        detail = "the request holds a NUL character, which no name, filter or field may hold"
        if api:
            return _problem(status.HTTP_400_BAD_REQUEST, detail)
        return HttpResponse(f"400 Bad Request: {detail}\n", status=400, content_type="text/plain")

    return middleware


def _texts(query) -> list[str]:
    return [text for name, values in query.lists() for text in (name, *values)]


def _problem(code: int, detail: str, **extra) -> JsonResponse:
    """An RFC 9457 problem document outside DRF (middleware)."""
    body = {"type": "about:blank", "title": HTTPStatus(code).phrase, "status": code, "detail": detail, **extra}
    return JsonResponse(body, status=code, content_type="application/problem+json")


def exception_handler(error: Exception, context: dict) -> Response | None:
    request = context.get("request")
    if isinstance(error, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        tried = username_tried(request) if request is not None else None
        log.warning(
            "authentication failed for %s %s from %s%s: %s",
            *_where(request),
            f" as {tried!r}" if tried is not None else "",
            error.detail,
        )
    elif isinstance(error, exceptions.PermissionDenied):
        log.warning("refused %s %s to %s: %s", *_where(request)[:2], _who(request), error.detail)
    answer = _domain_answer(error)
    if answer is not None:
        return answer
    return drf_exception_handler(error, context)


def _domain_answer(error: Exception) -> Response | None:
    """Refusals of the domain as RFC 9457 problem members (type, title, status, detail, and
    what else says precisely what to change)."""
    if isinstance(error, ApprovalRequired):
        approval = {
            "kind": error.kind.value,
            "parameters": error.parameters,
            "required_approvals": settings.REMEDIATION_APPROVALS.get(error.kind.value, 1),
            "request_with": "POST /api/v1/remediations/ {model, kind, parameters, evidence, reason}",
        }
        return _answer(status.HTTP_409_CONFLICT, str(error), approval=approval)
    if isinstance(error, BatchRejected):
        return _answer(status.HTTP_400_BAD_REQUEST, str(error), problems=[p.as_dict() for p in error.problems])
    if isinstance(error, TooLarge | RequestDataTooBig):
        detail = str(error) if isinstance(error, TooLarge) else "the body is over INGEST_MAX_BODY_BYTES"
        return _answer(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail)
    if isinstance(error, UnsupportedContentType):
        return _answer(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, str(error))
    if isinstance(error, UnreadableBody):
        return _answer(status.HTTP_400_BAD_REQUEST, str(error))
    if isinstance(error, SchemaError):
        return _answer(status.HTTP_400_BAD_REQUEST, str(error), problems=error.problems)
    if isinstance(error, NotFound):
        return _answer(status.HTTP_404_NOT_FOUND, str(error))
    if isinstance(error, AlreadyExists | ConcurrencyConflict | RequestConflict):
        return _answer(status.HTTP_409_CONFLICT, str(error))
    if isinstance(error, ReauthenticationFailed):
        log.warning("%s", error)  # the message says it failed
        return _answer(status.HTTP_403_FORBIDDEN, str(error))
    if isinstance(error, DomainError):
        return _answer(status.HTTP_400_BAD_REQUEST, str(error))
    if isinstance(error, ReadModelDiverged):
        return _answer(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{error}: nothing is answered from it until it is repaired"
        )
    if isinstance(error, kombu.exceptions.OperationalError):
        return _unavailable("the task queue is unreachable; nothing was queued, try again", error)
    if isinstance(error, StorageUnavailable):
        return _unavailable("the object store is unreachable; nothing was stored, try again", error)
    if isinstance(error, OutcomeUnknown):  # not "nothing was stored": it may be in the log
        return _unavailable(f"the database became unreachable while the change was recorded: {error}", error)
    return None


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500. While the database is unreachable (or PgBouncer cannot reach it),
    every request fails wherever it first touches it, a middleware included: those failures
    answer 503 with Retry-After, which clients retry, instead of a 500, which they do not."""
    error = sys.exc_info()[1]
    if not isinstance(error, django.db.OperationalError | django.db.InterfaceError):
        return django.views.defaults.server_error(request)
    log.error("answered 503: %s %s: %s", request.method, request.path, error)
    detail = "the database is unreachable; nothing was stored, try again"
    if request.path.startswith("/api/"):
        answer: HttpResponse = _problem(status.HTTP_503_SERVICE_UNAVAILABLE, detail)
    else:
        answer = HttpResponse(f"503 Service Unavailable: {detail}\n", status=503, content_type="text/plain")
    answer["Retry-After"] = "10"  # a database failover or restart takes seconds, not minutes
    return answer


def _unavailable(detail: str, error: Exception) -> Response:
    """A dependency (the object store, the broker) is down: 503, worth retrying. Its own message
    (addresses, bucket and key names) goes to the log, not to the caller."""
    log.error("answered 503: %s", error)
    answer = _answer(status.HTTP_503_SERVICE_UNAVAILABLE, detail)
    answer["Retry-After"] = "30"
    return answer


def _answer(code: int, detail: str, **extra) -> Response:
    body = {"type": "about:blank", "title": HTTPStatus(code).phrase, "status": code, "detail": detail, **extra}
    return Response(body, status=code)


def _where(request) -> tuple[str, str, str]:
    if request is None:
        return "?", "?", "?"
    return request.method, request.path, request.META.get("REMOTE_ADDR", "?")


def _who(request) -> str:
    user = getattr(request, "user", None)
    return str(getattr(user, "username", None) or user or "anonymous")
