"""Registry commands: every change of a model, its versions, its deployment pointer and its
reporting keys goes through the model aggregate and the one aggregate runner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from rest_framework_api_key.crypto import KeyGenerator

from audit.aggregates import aggregate_execute, aggregate_load
from audit.envelope import format_time
from audit.events import Event
from audit.store import Actor, RecordedEvent
from monitoring.registry.domain import APPROVED_BY, DeploymentAction, ModelAggregate
from monitoring.remediation.kinds import RemediationKind


def model_load(name: str) -> ModelAggregate:
    return aggregate_load(ModelAggregate(name))


def model_execute(
    name: str,
    command: Callable[[ModelAggregate], Sequence[Event]],
    *,
    actor: Actor,
    reason: str | None = None,
    causation: str | None = None,
) -> list[RecordedEvent]:
    """Run `command` on the model's current state and record what it decides, atomically."""
    return aggregate_execute(
        lambda: ModelAggregate(name), command, actor=actor, reason=reason, causation=causation
    ).recorded


def _approval(request_id: str | None, model: str, kind: RemediationKind) -> tuple[bool, str | None]:
    """(approved, the event the change follows from): a change of what serves or alerts carries
    the id of the approved request being executed, verified against the log, never trusted."""
    if request_id is None:
        return False, None
    from monitoring.remediation.services import approval_event

    return True, approval_event(request_id, model=model, kind=kind)


def model_register(
    *,
    name: str,
    task: str,
    owner: str,
    description: str = "",
    data_schema: Any,
    actor: Actor,
    reason: str | None = None,
) -> list[RecordedEvent]:
    return model_execute(
        name,
        lambda m: m.register(task=task, owner=owner, description=description, data_schema=data_schema),
        actor=actor,
        reason=reason,
    )


def model_update(
    *, name: str, actor: Actor, reason: str | None = None, approval: str | None = None, **changes: Any
) -> list[RecordedEvent]:
    approved, cause = _approval(approval, name, RemediationKind.SCHEMA_CHANGE)
    return model_execute(
        name, lambda m: m.update(**changes, approved=approved), actor=actor, reason=reason, causation=cause
    )


def model_retire(*, name: str, actor: Actor, reason: str, approval: str | None = None) -> list[RecordedEvent]:
    approved, cause = _approval(approval, name, RemediationKind.RETIRE_MODEL)
    return model_execute(name, lambda m: m.retire(approved=approved), actor=actor, reason=reason, causation=cause)


def version_register(
    *, name: str, version: str, artifact_uri: str, training_data_digest: str = "", notes: str = "", actor: Actor
) -> list[RecordedEvent]:
    return model_execute(
        name,
        lambda m: m.register_version(
            version=version, artifact_uri=artifact_uri, training_data_digest=training_data_digest, notes=notes
        ),
        actor=actor,
    )


def version_retire(
    *, name: str, version: str, actor: Actor, reason: str, approval: str | None = None
) -> list[RecordedEvent]:
    approved, cause = _approval(approval, name, RemediationKind.RETIRE_VERSION)
    return model_execute(
        name, lambda m: m.retire_version(version, approved=approved), actor=actor, reason=reason, causation=cause
    )


def deployment_change(
    *,
    name: str,
    action: str,
    version: str | None = None,
    share: float | None = None,
    actor: Actor,
    reason: str | None = None,
    approval: str | None = None,
) -> list[RecordedEvent]:
    """Move the pointer serving systems read: directly only for the first champion of a model
    that never served; otherwise as the execution of the approved request `approval`."""
    kind = APPROVED_BY[DeploymentAction(action)] if action in set(DeploymentAction) else None
    approved, cause = _approval(approval, name, kind) if kind else (False, None)
    return model_execute(
        name,
        lambda m: m.change_deployment(action, version, share, approved=approved),
        actor=actor,
        reason=reason,
        causation=cause,
    )


def api_key_issue(*, name: str, label: str, expires_at: dt.datetime | None, actor: Actor) -> tuple[str, str]:
    """A new reporting key for the model: (key id, the key). The key is returned once and only
    its SHA-512 hash is recorded."""
    key, prefix, hashed_key = KeyGenerator().generate()
    expires = format_time(expires_at) if expires_at else None
    model_execute(
        name,
        lambda m: m.issue_key(key_id=prefix, label=label, hashed_key=hashed_key, expires_at=expires),
        actor=actor,
    )
    return prefix, key


def api_key_revoke(*, name: str, key_id: str, actor: Actor, reason: str | None = None) -> list[RecordedEvent]:
    return model_execute(name, lambda m: m.revoke_key(key_id), actor=actor, reason=reason)
