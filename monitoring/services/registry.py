"""Registry commands: load the model aggregate, run the command, append its events with the
stream version it was loaded at. A concurrent writer makes the append conflict; the command
is then re-run on the fresh state (it is a pure function of it), a few times at most."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import transaction
from rest_framework_api_key.crypto import KeyGenerator

from audit.selectors import stream_events
from audit.store import Actor, ConcurrencyConflict, NewEvent, RecordedEvent, append
from monitoring.aggregates import Change, ModelAggregate

STREAM = "model"
ATTEMPTS = 3


def model_load(name: str) -> ModelAggregate:
    return ModelAggregate.replay(name, stream_events(STREAM, name))


def model_execute(
    name: str, command: Callable[[ModelAggregate], list[Change]], *, actor: Actor, reason: str | None = None
) -> list[RecordedEvent]:
    """Run `command` on the model's current state and record what it decides, atomically."""
    for attempt in range(ATTEMPTS):
        with transaction.atomic():
            aggregate = model_load(name)
            changes = command(aggregate)
            events = [NewEvent(STREAM, name, kind, payload, actor, reason=reason) for kind, payload in changes]
            try:
                return append(events, expected={(STREAM, name): aggregate.version})
            except ConcurrencyConflict:
                if attempt == ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")


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


def model_update(*, name: str, actor: Actor, reason: str | None = None, **changes: Any) -> list[RecordedEvent]:
    return model_execute(name, lambda m: m.update(**changes), actor=actor, reason=reason)


def model_retire(*, name: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    return model_execute(name, lambda m: m.retire(), actor=actor, reason=reason)


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


def version_retire(*, name: str, version: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    return model_execute(name, lambda m: m.retire_version(version), actor=actor, reason=reason)


DEPLOYMENT_ACTIONS: dict[str, Callable[..., list[Change]]] = {
    "promote": lambda m, version, share: m.promote(version),
    "rollback": lambda m, version, share: m.rollback(version),
    "challenger": lambda m, version, share: m.set_challenger(version),
    "canary": lambda m, version, share: m.start_canary(version, share),
    "canary_stop": lambda m, version, share: m.stop_canary(),
}


def deployment_change(
    *,
    name: str,
    action: str,
    version: str | None = None,
    share: float | None = None,
    actor: Actor,
    reason: str | None = None,
) -> list[RecordedEvent]:
    """Move the pointer serving systems read. The remediation workflow calls this with
    rollback once a request is approved; people with the right role call it directly."""
    step = DEPLOYMENT_ACTIONS[action]
    return model_execute(name, lambda m: step(m, version, share), actor=actor, reason=reason)


def api_key_issue(*, name: str, label: str, expires_at: dt.datetime | None, actor: Actor) -> tuple[str, str]:
    """A new reporting key for the model: (key id, the key). The key is returned once and only
    its SHA-512 hash is recorded."""
    key, prefix, hashed_key = KeyGenerator().generate()
    expires = expires_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if expires_at else None
    model_execute(
        name,
        lambda m: m.issue_key(key_id=prefix, label=label, hashed_key=hashed_key, expires_at=expires),
        actor=actor,
    )
    return prefix, key


def api_key_revoke(*, name: str, key_id: str, actor: Actor, reason: str | None = None) -> list[RecordedEvent]:
    return model_execute(name, lambda m: m.revoke_key(key_id), actor=actor, reason=reason)
