"""Who may do what in the monitoring API (the matrix is in docs/permissions.md and is tested
endpoint by endpoint, role by role)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from audit.permissions import has_role
from monitoring.authentication import ModelService

READERS = frozenset({"ml_engineer", "risk_approver", "compliance_officer", "auditor", "admin"})
ENGINEERS = frozenset({"ml_engineer", "admin"})
ADMINS = frozenset({"admin"})


def _is_person(user) -> bool:
    return not isinstance(user, ModelService)


class CanRead(BasePermission):
    message = "Reading models needs one of the roles ml_engineer, risk_approver, compliance_officer, auditor, admin."

    def has_permission(self, request, view) -> bool:
        return _is_person(request.user) and has_role(request.user, READERS)


class CanEngineer(BasePermission):
    message = "This needs the ml_engineer or admin role."

    def has_permission(self, request, view) -> bool:
        return _is_person(request.user) and has_role(request.user, ENGINEERS)


class CanAdminister(BasePermission):
    message = "This needs the admin role."

    def has_permission(self, request, view) -> bool:
        return _is_person(request.user) and has_role(request.user, ADMINS)


class ReportsForModel(BasePermission):
    """A model's reporting key, for that model only."""

    message = "This API key reports for another model."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return isinstance(user, ModelService) and user.model_name == view.kwargs.get("name")


class ReportsOrEngineers(BasePermission):
    message = "Reporting data needs this model's API key, or the ml_engineer or admin role."

    def has_permission(self, request, view) -> bool:
        return ReportsForModel().has_permission(request, view) or CanEngineer().has_permission(request, view)


class ReadsOrServes(BasePermission):
    message = "Reading the deployment needs this model's API key or a reading role."

    def has_permission(self, request, view) -> bool:
        return ReportsForModel().has_permission(request, view) or CanRead().has_permission(request, view)
