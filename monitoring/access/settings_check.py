"""A Django system check: OTP_REQUIRED_ROLES names roles that exist (a misspelt role would
silently require nothing)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error

from monitoring.access.domain import Role


def check_second_factor_floor(app_configs=None, **kwargs) -> list[Error]:
    return [
        Error(f"OTP_REQUIRED_ROLES names an unknown role {role!r}; roles: {', '.join(Role)}", id="monitoring.E003")
        for role in getattr(settings, "OTP_REQUIRED_ROLES", [])
        if role not in set(Role)
    ]
