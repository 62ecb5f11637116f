"""Small filters the pages share: times as people read them, and short hashes."""

from __future__ import annotations

import datetime as dt

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString

from audit.envelope import parse_time

register = template.Library()


@register.filter
def moment(value) -> str:
    """An RFC 3339 time (text or datetime) as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if not value:
        return ""
    when = parse_time(value) if isinstance(value, str) else value
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def short(value: str, length: int = 12) -> str:
    """The start of a long hex hash, enough to tell two apart at a glance."""
    return f"{value[:length]}…" if value and len(value) > length else value or ""


@register.simple_tag(takes_context=True)
def log_link(context, seq: int, *words) -> SafeString:
    """The words as a link to the event's page for those who may read the log; as text alone
    for the others, whom the event page answers 403 (the navigation shows no page one may not open)."""
    text = " ".join(str(word) for word in words)
    if not context.get("may_read_log"):
        return conditional_escape(text)
    return format_html('<a href="{}">{}</a>', reverse("web:log-event", args=[seq]), text)


@register.filter
def percent(done: int, total: int) -> int:
    return int(100 * done / total) if total else 0


@register.filter
def join_if_list(value) -> str:
    return ", ".join(str(item) for item in value) if isinstance(value, list | tuple) else str(value)


@register.filter
def query_terms(query: dict) -> list[str]:
    """An export's query as the terms it was given (model=credit, include_data=yes); none: the whole log."""
    return [
        f"{name}={'yes' if value is True else join_if_list(value)}" for name, value in (query or {}).items() if value
    ]


@register.filter
def words(value) -> str:
    """A closed name as words: feature_drift -> feature drift."""
    return str(value or "").replace("_", " ")


@register.filter
def join_params(value) -> str:
    """A request's parameters as `name: value` pairs."""
    if not isinstance(value, dict):
        return str(value or "")
    return ", ".join(f"{name}: {item}" for name, item in value.items() if not isinstance(item, dict)) or (
        "a new policy" if "policy" in value else ""
    )
