"""The app's HTTP wiring shared by every concept's API: refusals turned into precise 4xx
answers (and authentication failures and permission refusals logged), input validation, and
the reason every change of state carries."""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from audit.errors import AlreadyExists, DomainError, NotFound
from audit.store import ConcurrencyConflict
from monitoring.ingestion.conform import BatchRejected
from monitoring.ingestion.parsing import UnreadableBody, UnsupportedContentType
from monitoring.registry.data_schema import SchemaError
from monitoring.remediation.kinds import ApprovalRequired
from monitoring.remediation.services import ReauthenticationFailed

log = logging.getLogger("driftledger.security")


class ReasonIn(serializers.Serializer):
    reason = serializers.CharField()


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def exception_handler(error: Exception, context: dict) -> Response | None:
    request = context.get("request")
    if isinstance(error, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        log.warning("authentication failed for %s %s from %s: %s", *_where(request), error.detail)
    elif isinstance(error, exceptions.PermissionDenied):
        log.warning("refused %s %s to %s: %s", *_where(request)[:2], _who(request), error.detail)
    answer = _domain_answer(error)
    if answer is not None:
        return answer
    return drf_exception_handler(error, context)


def _domain_answer(error: Exception) -> Response | None:
    if isinstance(error, ApprovalRequired):
        approval = {
            "kind": error.kind.value,
            "parameters": error.parameters,
            "required_approvals": settings.REMEDIATION_APPROVALS.get(error.kind.value, 1),
            "request_with": "POST /api/v1/remediations/ {model, kind, parameters, evidence, reason}",
        }
        return Response({"detail": str(error), "approval": approval}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, BatchRejected):
        body = {"detail": str(error), "problems": [p.as_dict() for p in error.problems]}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, UnsupportedContentType):
        return Response({"detail": str(error)}, status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
    if isinstance(error, UnreadableBody):
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, SchemaError):
        return Response({"detail": str(error), "problems": error.problems}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, NotFound):
        return Response({"detail": str(error)}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(error, AlreadyExists | ConcurrencyConflict):
        return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
    if isinstance(error, ReauthenticationFailed):
        log.warning("re-authentication failed: %s", error)
        return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(error, DomainError):
        return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)
    return None


def _where(request) -> tuple[str, str, str]:
    if request is None:
        return "?", "?", "?"
    return request.method, request.path, request.META.get("REMOTE_ADDR", "?")


def _who(request) -> str:
    user = getattr(request, "user", None)
    return str(getattr(user, "username", None) or user or "anonymous")
