"""Model services authenticate with their reporting key: `Authorization: Api-Key <key>`.

The key is checked against its SHA-512 hash (djangorestframework-api-key); a revoked, expired
or unknown key is refused and the refusal logged. The principal it yields can only report
data for its own model (see access.permissions.ReportsForModel)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from audit.store import Actor
from monitoring.registry.models import ModelApiKey

log = logging.getLogger("driftledger.security")
KEYWORD = "Api-Key"


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
        if record is None or record.revoked or record.has_expired:
            prefix = key.partition(".")[0][:8]
            log.warning("refused API key %r from %s: unknown, revoked or expired", prefix, _address(request))
            raise exceptions.AuthenticationFailed("API key unknown, revoked or expired")
        return ModelService(record.model_id, record.prefix), record

    def authenticate_header(self, request) -> str:
        return KEYWORD


class ModelKeyScheme(OpenApiAuthenticationExtension):
    target_class = "monitoring.access.authentication.ModelKeyAuthentication"
    name = "ModelApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "?")


def actor_of(request) -> Actor:
    """Who is acting, as the log records it: a person, or a model's reporting key."""
    user = request.user
    if isinstance(user, ModelService):
        return Actor("service", user.username, str(user))
    return Actor("user", user.username, user.get_full_name() or user.username)
