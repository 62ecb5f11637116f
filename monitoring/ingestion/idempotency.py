"""`Idempotency-Key`: a retried POST gets the first answer back and changes nothing.

The first successful answer is stored with the key, scoped to the caller and the path, in the
same transaction as whatever the request wrote; a transaction-scoped advisory lock on the key
makes a concurrent duplicate wait for the first and then replay it. The same key with a
different body is refused (422), as the IETF draft on the header asks."""

from __future__ import annotations

import functools
import hashlib

from django.db import connection, transaction
from rest_framework import status
from rest_framework.response import Response

from monitoring.ingestion.models import IdempotentResponse

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def idempotent(handler):
    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            detail = f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters"
            return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)
        scope = f"{request.user.username}:{request.path}"
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", [f"{scope}\n{key}"])
            earlier = IdempotentResponse.objects.filter(scope=scope, key=key).first()
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    detail = f"this {HEADER} was used for a different request"
                    return Response({"detail": detail}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
                return Response(earlier.body, status=earlier.status, headers={"Idempotent-Replayed": "true"})
            response = handler(view, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                IdempotentResponse.objects.create(
                    scope=scope, key=key, fingerprint=fingerprint, status=response.status_code, body=response.data
                )
            return response

    return wrapper


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.content_type or ""):
        digest.update(part.encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()
