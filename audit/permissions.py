"""Who may export evidence or read the log is the domain's to say: the audit API takes its
permission classes from settings (AUDIT_EVIDENCE_PERMISSIONS, AUDIT_LOG_PERMISSIONS: dotted
paths), so the event store names no role."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework.permissions import BasePermission, IsAuthenticated


class ConfiguredPermissions:
    """A view mixin: the permission classes named (dotted paths) by the setting `setting`;
    authenticated callers when it is unset."""

    setting = ""

    @classmethod
    def configured_permissions(cls) -> list[type[BasePermission]]:
        paths = getattr(settings, cls.setting, None)
        return [import_string(path) for path in paths] if paths else [IsAuthenticated]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in self.configured_permissions()]


class EvidencePermissions(ConfiguredPermissions):
    """Who may export evidence: settings.AUDIT_EVIDENCE_PERMISSIONS."""

    setting = "AUDIT_EVIDENCE_PERMISSIONS"


class LogReadPermissions(ConfiguredPermissions):
    """Who may read events one by one (the audit log): settings.AUDIT_LOG_PERMISSIONS."""

    setting = "AUDIT_LOG_PERMISSIONS"
