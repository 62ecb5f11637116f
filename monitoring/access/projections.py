"""Accounts and role memberships kept in step with the person streams. The membership table is
a projection (rebuilt by replay); the accounts themselves are not wiped on a rebuild, since their
password hashes are not in the log, but their names and active flags are replayed."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

from audit import projections
from audit.store import RecordedEvent
from monitoring.access.domain import (
    PersonDeactivated,
    PersonReactivated,
    PersonRegistered,
    RoleGranted,
    RoleRevoked,
)


def _registered(event: PersonRegistered, recorded: RecordedEvent) -> None:
    user, created = User.objects.get_or_create(
        username=event.username, defaults={"first_name": event.full_name, "email": event.email or ""}
    )
    if created:
        user.set_unusable_password()
    user.first_name, user.last_name, user.email, user.is_active = event.full_name, "", event.email or "", True
    user.save()


def _granted(event: RoleGranted, recorded: RecordedEvent) -> None:
    User.objects.get(username=event.username).groups.add(Group.objects.get(name=event.role))


def _revoked(event: RoleRevoked, recorded: RecordedEvent) -> None:
    User.objects.get(username=event.username).groups.remove(Group.objects.get(name=event.role))


def _active(event: PersonDeactivated | PersonReactivated, recorded: RecordedEvent) -> None:
    User.objects.filter(username=event.username).update(is_active=isinstance(event, PersonReactivated))


PEOPLE = projections.register(
    projections.Projection(
        name="monitoring.people",
        handlers={
            PersonRegistered: _registered,
            RoleGranted: _granted,
            RoleRevoked: _revoked,
            PersonDeactivated: _active,
            PersonReactivated: _active,
        },
        models=[User.groups.through],  # memberships; the accounts keep their password hashes
        touches=[(User, ["username", "first_name", "last_name", "email", "is_active"])],
    )
)
