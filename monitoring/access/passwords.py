"""A person changes their own password: the new hash stays with the account, the log records
that it changed (every token issued before stops working)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.errors import InvalidCommand
from audit.events import Context, Event, event_type
from audit.store import Actor, RecordedEvent
from monitoring.access.services import person_execute


@event_type("monitoring.PasswordChanged")
class PasswordChanged(Event):
    """A person set a new password (never in the log)."""

    username: str

    def describe(self, about: Context) -> str:
        return f"{self.username} changed their password"


def password_change(*, user, new_password: str) -> list[RecordedEvent]:
    """Set `user`'s new password after the rules (AUTH_PASSWORD_VALIDATORS) and record it."""
    try:
        validate_password(new_password, user)
    except ValidationError as error:
        raise InvalidCommand(" ".join(error.messages)) from error
    actor = Actor("user", user.username, user.get_full_name() or user.username)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        return person_execute(
            user.username,
            lambda person: [PasswordChanged(username=user.username)],
            actor=actor,
            reason="changed by the person",
        )
