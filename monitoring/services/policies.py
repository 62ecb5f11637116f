"""Policy commands and reads: the policy in force now, or at any past moment."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.selectors import stream_events
from audit.store import Actor, NewEvent, RecordedEvent, append
from monitoring.aggregates import InvalidCommand, ModelNotFound
from monitoring.data_schema import parse_schema
from monitoring.models import RegisteredModel
from monitoring.policies import PolicyAggregate

STREAM = "policy"


def policy_load(model: str, *, at: dt.datetime | None = None) -> PolicyAggregate:
    """The model's policy aggregate, folded up to `at` (now when None)."""
    registered = RegisteredModel.objects.filter(name=model).first()
    if registered is None:
        raise ModelNotFound(f"no model named {model!r}")
    rows = stream_events(STREAM, model, until=at)
    return PolicyAggregate.replay(model, parse_schema(registered.data_schema).features, rows)


def policy_set(*, model: str, policy: Any, actor: Actor, reason: str) -> list[RecordedEvent]:
    configured = getattr(settings, "NOTIFIERS", {})
    unknown = (
        [n for n in (policy.get("notify") or []) if isinstance(n, str) and n not in configured]
        if isinstance(policy, dict)
        else []
    )
    if unknown:
        raise InvalidCommand(f"policy: no notifier named {', '.join(map(repr, unknown))} in settings.NOTIFIERS")
    with transaction.atomic():
        aggregate = policy_load(model)
        events = [
            NewEvent(STREAM, model, kind, payload, actor, reason=reason) for kind, payload in aggregate.set(policy)
        ]
        return append(events, expected={(STREAM, model): aggregate.version})
