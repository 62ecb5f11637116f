"""Who may do what in the API: each permission class states the roles (or the model's reporting
key) it admits; docs/permissions.md lists them endpoint by endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from monitoring.access.authentication import ModelService
from monitoring.access.roles import Role, has_role

READERS = frozenset(Role)
ENGINEERS = frozenset({Role.ML_ENGINEER, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})
APPROVERS = frozenset({Role.RISK_APPROVER})
REQUESTERS = frozenset({Role.ML_ENGINEER, Role.ADMIN, Role.RISK_APPROVER})
EVIDENCE = frozenset({Role.AUDITOR, Role.COMPLIANCE_OFFICER, Role.ADMIN})


def _is_person(user) -> bool:
    return not isinstance(user, ModelService)


def _names(roles: frozenset[Role]) -> str:
    return ", ".join(sorted(roles))


class _RolePermission(BasePermission):
    roles: frozenset[Role] = frozenset()

    def has_permission(self, request, view) -> bool:
        return _is_person(request.user) and has_role(request.user, self.roles)


class CanRead(_RolePermission):
    roles = READERS
    message = f"Reading models needs one of the roles {_names(READERS)}."


class CanEngineer(_RolePermission):
    roles = ENGINEERS
    message = f"This needs one of the roles {_names(ENGINEERS)}."


class CanAdminister(_RolePermission):
    roles = ADMINS
    message = "This needs the admin role."


class CanDecide(_RolePermission):
    roles = APPROVERS
    message = "Deciding on a remediation needs the risk_approver role."


class CanRequest(_RolePermission):
    roles = REQUESTERS
    message = "Requesting a remediation needs the ml_engineer role (or risk_approver for break-glass)."


class CanExportEvidence(_RolePermission):
    roles = EVIDENCE
    message = f"Exporting evidence needs one of the roles {_names(EVIDENCE)}."


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


class ByMethod:
    """Permissions per HTTP method: reads and writes of one resource need different roles."""

    request: Any  # set by the view
    permissions_by_method: dict[str, list] = {}

    def get_permissions(self):
        return [permission() for permission in self.permissions_by_method.get(self.request.method, [CanRead])]
