"""People and roles: every change is a signed event (who granted which role to whom, when and
why), recorded with the account change in one transaction."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.aggregates import aggregate_execute, aggregate_load
from audit.errors import InvalidCommand
from audit.events import Event
from audit.store import Actor, RecordedEvent
from monitoring.access.domain import USERNAME, PersonAggregate, Role


def person_load(username: str) -> PersonAggregate:
    return aggregate_load(PersonAggregate(username))


def person_execute(
    username: str, command: Callable[[PersonAggregate], Sequence[Event]], *, actor: Actor, reason: str
) -> list[RecordedEvent]:
    if not reason or not reason.strip():
        raise InvalidCommand("a reason is required: people and role changes are signed with it")
    new = functools.partial(PersonAggregate, username)
    return aggregate_execute(new, command, actor=actor, reason=reason).recorded


def person_register(
    *,
    username: str,
    full_name: str,
    email: str | None = None,
    password: str,
    roles: Iterable[str] = (),
    actor: Actor,
    reason: str,
) -> list[RecordedEvent]:
    """An account with its password (never in the log) and the roles given, all or nothing."""
    try:
        validate_password(password, User(username=username, email=email or ""))
    except ValidationError as error:
        raise InvalidCommand("password: " + " ".join(error.messages)) from error
    with transaction.atomic():
        recorded = person_execute(
            username, lambda p: p.register(full_name=full_name, email=email), actor=actor, reason=reason
        )
        user = User.objects.get(username=username)  # created by the projection
        user.set_password(password)
        user.save(update_fields=["password"])
        for role in dict.fromkeys(roles):
            recorded += role_grant(username=username, role=role, actor=actor, reason=reason)
    return recorded


def people_record_existing(*, actor: Actor, reason: str) -> list[str]:
    """Accounts made before people and roles were signed events: each is registered in the log
    with the roles it holds now (recorded now, by `actor`, not backdated). Returns their usernames."""
    users = [user for user in User.objects.order_by("username") if not person_load(user.username).version]
    _refuse_unrecordable(users, reason)
    with transaction.atomic():  # all or nothing: an upgrade is recorded once, whole
        for user in users:
            roles = [name for name in user.groups.values_list("name", flat=True) if name in set(Role)]
            name = user.get_full_name() or user.username
            register = functools.partial(PersonAggregate.register, full_name=name, email=user.email)
            person_execute(user.username, register, actor=actor, reason=reason)
            for role in roles:
                role_grant(username=user.username, role=role, actor=actor, reason=reason)
            if not user.is_active:
                person_deactivate(username=user.username, actor=actor, reason=reason)
    return [user.username for user in users]


def _refuse_unrecordable(users: Sequence[User], reason: str) -> None:
    """Before anything is recorded: Django let accounts be named with any letter, the log's rule
    is ASCII, and an account it cannot register must be renamed first."""
    if not reason or not reason.strip():
        raise InvalidCommand("a reason is required: people and role changes are signed with it")
    outside = [repr(user.username) for user in users if not USERNAME.match(user.username)]
    if outside:
        raise InvalidCommand(
            f"cannot record {', '.join(outside)}: a username is 1 to 150 letters, digits and @ . + - _; "
            "rename the account first (nothing was recorded)"
        )


def role_grant(*, username: str, role: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    return person_execute(username, lambda p: p.grant(role, by=actor.id), actor=actor, reason=reason)


def role_revoke(*, username: str, role: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    return person_execute(username, lambda p: p.revoke(role, by=actor.id), actor=actor, reason=reason)


def person_deactivate(*, username: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    return person_execute(username, lambda p: p.deactivate(by=actor.id), actor=actor, reason=reason)


def person_reactivate(*, username: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    return person_execute(username, lambda p: p.reactivate(), actor=actor, reason=reason)
