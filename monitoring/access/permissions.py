"""Who may call what: each endpoint declares it here, once, and the same declaration both
enforces it and writes the table in docs/permissions.md (`python manage.py permissions_table`).

`allow(...)` makes a DRF permission class that admits people holding one of the given roles
and, where said, the model's own reporting key. Rules that depend on the object (only the
requester cancels a request; an approver never decides their own) are the domain's, and the
class's `note` names them for the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rest_framework.permissions import BasePermission

from monitoring.access.authentication import ModelService
from monitoring.access.domain import Role
from monitoring.access.roles import has_role


@dataclass(frozen=True)
class Who:
    roles: frozenset[Role] = frozenset()
    model_key: bool = False  # the reporting key of the model named in the URL
    anyone: bool = False  # no credentials needed (public reads, or a shared secret checked by the view)
    note: str = ""

    @property
    def message(self) -> str:
        parts = [f"one of the roles {', '.join(sorted(self.roles))}" if self.roles else ""]
        if self.model_key:
            parts.append("this model's reporting key")
        return "This needs " + " or ".join(p for p in parts if p) + "." if any(parts) else "Nobody may do this."


def allow(*roles: Role, model_key: bool = False, note: str = "") -> type[BasePermission]:
    who = Who(frozenset(roles), model_key=model_key, note=note)

    class Allowed(BasePermission):
        message = who.message

        def has_permission(self, request, view) -> bool:
            user = request.user
            if isinstance(user, ModelService):
                return who.model_key and user.model_name == view.kwargs.get("name")
            return has_role(user, who.roles)

    Allowed.who = who
    Allowed.__name__ = Allowed.__qualname__ = "Allowed_" + "_".join([*sorted(roles), *(["key"] if model_key else [])])
    return Allowed


def anyone(note: str = "") -> type[BasePermission]:
    """No credentials needed: the view checks a shared secret, or the data is public."""

    class Anyone(BasePermission):
        def has_permission(self, request, view) -> bool:
            return True

    Anyone.who = Who(anyone=True, note=note)
    return Anyone


READERS = tuple(Role)
CanRead = allow(*READERS)
CanEngineer = allow(Role.ML_ENGINEER)
CanReport = allow(Role.ML_ENGINEER, model_key=True, note="a key reports for its own model only")
CanServe = allow(*READERS, model_key=True, note="a key reads its own model's pointer only")
CanDecide = allow(Role.RISK_APPROVER, note="password re-entered; never one's own request")
CanRequest = allow(Role.ML_ENGINEER, Role.RISK_APPROVER, note="a risk approver files break-glass rollbacks only")
CanAdminister = allow(Role.ADMIN)
CanExportEvidence = allow(Role.AUDITOR, Role.COMPLIANCE_OFFICER, Role.ADMIN)
CanReadLog = allow(Role.AUDITOR, Role.COMPLIANCE_OFFICER, Role.ADMIN)


class ByMethod:
    """Permissions per HTTP method: reads and writes of one resource need different roles."""

    request: Any  # set by the view
    permissions_by_method: dict[str, type[BasePermission]] = {}

    def get_permissions(self):
        return [self.permissions_by_method.get(self.request.method, CanRead)()]
