"""The permission table, read off the declarations the views enforce: for every route and HTTP
method, who is let through (docs/permissions.md is this table, written by
`python manage.py permissions_table`; a test fails when they differ)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.views import APIView

from monitoring.access.domain import Role
from monitoring.access.permissions import Who

METHODS = ("get", "post", "put", "patch", "delete")
PRINCIPALS = ("anonymous", "model's key", *(role.value for role in Role))


@dataclass(frozen=True)
class Row:
    path: str  # under /api/v1/, e.g. models/{name}/deployment/
    method: str
    who: Who

    def admits(self, principal: str) -> bool:
        if self.who.anyone:
            return True
        if principal == "model's key":
            return self.who.model_key
        return principal in self.who.roles

    def cells(self) -> list[str]:
        return ["yes" if self.admits(principal) else "—" for principal in PRINCIPALS]


def permission_rows() -> list[Row]:
    rows = []
    for path, view in _routes(get_resolver().url_patterns, ""):
        if not path.startswith("api/v1/") or not isinstance(view, type) or not issubclass(view, APIView):
            continue
        for method in METHODS:
            if hasattr(view, method):
                rows.append(Row(path.removeprefix("api/v1/"), method.upper(), _declared(view, method.upper())))
    return rows


def render(rows: list[Row]) -> str:
    head = "| endpoint | " + " | ".join(PRINCIPALS) + " | rule |"
    lines = [head, "|" + "---|" * (len(PRINCIPALS) + 2)]
    for row in rows:
        lines.append(f"| `{row.method} {row.path}` | " + " | ".join(row.cells()) + f" | {row.who.note} |")
    return "\n".join(lines) + "\n"


def _declared(view: type[APIView], method: str) -> Who:
    """The Who of the permission class the view applies to `method`."""
    by_method = getattr(view, "permissions_by_method", None)
    configured = getattr(view, "configured_permissions", None)  # the audit API's, from settings
    if by_method:
        classes = [by_method.get(method)]
    elif configured is not None:
        classes = configured()
    else:
        classes = list(view.permission_classes)
    found = [getattr(cls, "who", None) for cls in classes if cls is not None]
    if any(cls is AllowAny for cls in classes):
        return Who(anyone=True, note="public")
    if found and found[0] is not None:
        return found[0]
    if classes == [IsAuthenticated]:
        return Who(note="any authenticated caller")
    raise LookupError(f"{view.__name__} {method}: no declared permission (use monitoring.access.permissions.allow)")


def _routes(patterns, prefix: str):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
            yield _readable(prefix + str(pattern.pattern)), view


def _readable(route: str) -> str:
    """models/<str:name>/ -> models/{name}/"""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
