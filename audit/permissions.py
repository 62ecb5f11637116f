"""Who may export evidence is the domain's to say: the audit API takes its permission classes
from settings.AUDIT_EVIDENCE_PERMISSIONS (dotted paths), so the event store names no role."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission, IsAuthenticated


class EvidencePermissions:
    """A view mixin: the configured permission classes (authenticated people only by default)."""

    @classmethod
    def configured_permissions(cls) -> list[type[BasePermission]]:
        paths = getattr(settings, "AUDIT_EVIDENCE_PERMISSIONS", None)
        return [import_string(path) for path in paths] if paths else [IsAuthenticated]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in self.configured_permissions()]


class LogReadPermissions:
    """A view mixin for reading events one by one (the audit log): settings.AUDIT_LOG_PERMISSIONS."""

    @classmethod
    def configured_permissions(cls) -> list[type[BasePermission]]:
        paths = getattr(settings, "AUDIT_LOG_PERMISSIONS", None)
        return [import_string(path) for path in paths] if paths else [IsAuthenticated]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in self.configured_permissions()]
