"""The roles people act in, defined once. A role is a Django group of the same name; which role
may do what is declared beside each endpoint (access/permissions.py) and listed in
docs/permissions.md."""

from __future__ import annotations

from collections.abc import Collection

from audit.events import Closed


class Role(Closed):
    ML_ENGINEER = "ml_engineer"  # registers models, sets policies, requests remediations
    RISK_APPROVER = "risk_approver"  # decides remediations (four eyes)
    COMPLIANCE_OFFICER = "compliance_officer"  # reads the audit log, exports evidence
    AUDITOR = "auditor"  # exports evidence and verifies it offline
    ADMIN = "admin"  # manages people and models


def roles_of(user) -> frozenset[Role]:
    """The roles a person holds now (none for a model's reporting key or an anonymous caller)."""
    if not user or not user.is_authenticated or not hasattr(user, "groups"):
        return frozenset()
    names = set(user.groups.values_list("name", flat=True))
    return frozenset(role for role in Role if role.value in names)


def has_role(user, roles: Collection[Role]) -> bool:
    if not user or not user.is_authenticated or not hasattr(user, "groups"):  # a model's API key has no roles
        return False
    return user.is_superuser or bool(roles_of(user) & set(roles))
