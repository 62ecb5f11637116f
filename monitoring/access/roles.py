"""Which roles a person holds now: Django groups of the same names, kept by the access
projection from the signed role events. The superuser flag grants nothing here."""

from __future__ import annotations

from collections.abc import Collection

from monitoring.access.domain import Role

__all__ = ["Role", "has_role", "roles_of"]


def roles_of(user) -> frozenset[Role]:
    """The roles a person holds now (none for a model's reporting key, an anonymous caller or a
    deactivated account)."""
    if not user or not user.is_authenticated or not hasattr(user, "groups") or not user.is_active:
        return frozenset()
    names = set(user.groups.values_list("name", flat=True))
    return frozenset(role for role in Role if role.value in names)


def has_role(user, roles: Collection[Role]) -> bool:
    return bool(roles_of(user) & set(roles))
