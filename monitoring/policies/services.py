"""Policy commands and reads: the policy in force now, or at any past moment."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.conf import settings

from audit.aggregates import InvalidCommand, aggregate_execute, aggregate_load
from audit.store import Actor, RecordedEvent
from monitoring.policies.domain import PolicyAggregate
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.domain import ModelNotFound
from monitoring.registry.models import RegisteredModel
from monitoring.remediation.kinds import RemediationKind


def policy_load(model: str, *, at: dt.datetime | None = None) -> PolicyAggregate:
    """The model's policy aggregate, folded up to `at` (now when None)."""
    return aggregate_load(_empty(model), until=at)


def policy_set(
    *, model: str, policy: Any, actor: Actor, reason: str, approval: str | None = None
) -> list[RecordedEvent]:
    """A new version of the model's policy. A pure tightening applies at once; any other change
    of what alerts only as the execution of the approved request `approval`."""
    configured = getattr(settings, "NOTIFIERS", {})
    unknown = (
        [n for n in (policy.get("notify") or []) if isinstance(n, str) and n not in configured]
        if isinstance(policy, dict)
        else []
    )
    if unknown:
        raise InvalidCommand(f"policy: no notifier named {', '.join(map(repr, unknown))} in settings.NOTIFIERS")
    approved, cause = False, None
    if approval is not None:
        from monitoring.remediation.services import approval_event

        approved, cause = True, approval_event(approval, model=model, kind=RemediationKind.THRESHOLD_CHANGE)
    new = functools.partial(PolicyAggregate, model, _features(model))  # a fresh state for each attempt
    return aggregate_execute(
        new, lambda p: p.set(policy, approved=approved), actor=actor, reason=reason, causation=cause
    ).recorded


def _empty(model: str) -> PolicyAggregate:
    return PolicyAggregate(model, _features(model))


def _features(model: str) -> dict[str, str]:
    registered = RegisteredModel.objects.filter(name=model).first()
    if registered is None:
        raise ModelNotFound(f"no model named {model!r}")
    return parse_schema(registered.data_schema).features
