"""Who may do what with the audit log (the full role matrix is in docs/permissions.md)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

EVIDENCE_ROLES = frozenset({"auditor", "compliance_officer", "admin"})


def has_role(user, roles: frozenset[str]) -> bool:
    if not user or not user.is_authenticated or not hasattr(user, "groups"):  # a model's API key has no roles
        return False
    return user.is_superuser or user.groups.filter(name__in=roles).exists()


class CanExportEvidence(BasePermission):
    message = "Exporting evidence needs the auditor, compliance_officer or admin role."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, EVIDENCE_ROLES)
