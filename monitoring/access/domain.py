"""People and their roles, on the stream ("person", username): who was given which role, by
whom, when and why, and who was deactivated. Pure.

Passwords never enter the log: the account (its password hash) is Django's; the log records
that the person exists, the roles they hold and whether they may sign in.

Separation of duties lives in the roles themselves: administering people grants no approval
and no production change, and nobody grants or revokes their own roles. Whoever registers a
person chooses their first password, so could act as them: a role that changes or decides
anything (`POWER`) is given to them by another administrator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from audit.errors import AlreadyExists, InvalidCommand, NotFound
from audit.events import Choice, Closed, Context, Event, event_type

STREAM = "person"
OPERATOR_PREFIX = "cli:"  # the operator at the server's terminal, who holds the database already
SIGN_IN_CHANGED = "monitoring.PasswordChanged"
USERNAME = re.compile(r"^[A-Za-z0-9_.@+\-]{1,150}$")  # Django's own rule for usernames


class Role(Closed):
    ML_ENGINEER = "ml_engineer"  # registers models, sets policies, requests remediations
    RISK_APPROVER = "risk_approver"  # decides remediations (four eyes); requests break-glass only
    COMPLIANCE_OFFICER = "compliance_officer"  # reads the audit log, exports evidence
    AUDITOR = "auditor"  # exports evidence and verifies it offline
    ADMIN = "admin"  # manages people and their roles; no approval, no production change

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


# Roles that request, decide or grant changes; the others only read.
POWER = frozenset({Role.ML_ENGINEER, Role.RISK_APPROVER, Role.ADMIN})


@event_type("monitoring.PersonRegistered")
class PersonRegistered(Event):
    """A person gets an account (the password stays with the account, never in the log)."""

    username: str
    full_name: str
    email: str | None = None

    def describe(self, about: Context) -> str:
        return f"{about.who} registered {self.full_name} ({self.username}){about.because}"


@event_type("monitoring.RoleGranted")
class RoleGranted(Event):
    """A person is given a role."""

    tone: ClassVar[str] = "decision"
    username: str
    role: Choice[Role]

    def describe(self, about: Context) -> str:
        return f"{about.who} gave {self.username} the {self.role.label} role{about.because}"


@event_type("monitoring.RoleRevoked")
class RoleRevoked(Event):
    """A person loses a role."""

    tone: ClassVar[str] = "decision"
    username: str
    role: Choice[Role]

    def describe(self, about: Context) -> str:
        return f"{about.who} took the {self.role.label} role from {self.username}{about.because}"


@event_type("monitoring.PersonDeactivated")
class PersonDeactivated(Event):
    """A person may no longer sign in or act; their history stays."""

    tone: ClassVar[str] = "decision"
    username: str

    def describe(self, about: Context) -> str:
        return f"{about.who} deactivated {self.username}{about.because}"


@event_type("monitoring.PersonReactivated")
class PersonReactivated(Event):
    """A deactivated person may sign in again (with the roles they still hold)."""

    username: str

    def describe(self, about: Context) -> str:
        return f"{about.who} reactivated {self.username}{about.because}"


@dataclass
class PersonAggregate:
    username: str
    stream_type: ClassVar[str] = STREAM
    version: int = 0
    full_name: str = ""
    active: bool = False
    roles: set[Role] = field(default_factory=set)
    registered_by: str = ""  # the actor who chose the first password
    own_password: bool = False  # set a password of their own since (monitoring.PasswordChanged)

    @property
    def stream_id(self) -> str:
        return self.username

    def apply(self, event: Event, actor_id: str = "") -> None:
        self.version += 1
        match event:
            case PersonRegistered():
                self.full_name, self.active, self.registered_by = event.full_name, True, actor_id
            case RoleGranted():
                self.roles.add(event.role)
            case RoleRevoked():
                self.roles.discard(event.role)
            case PersonDeactivated():
                self.active = False
            case PersonReactivated():
                self.active = True
            case _ if event.type_name == SIGN_IN_CHANGED:  # defined beside the account (passwords.py)
                self.own_password = True

    def register(self, *, full_name: str, email: str | None) -> list[Event]:
        if self.version:
            raise AlreadyExists(f"a person named {self.username!r} exists already")
        if not USERNAME.match(self.username):
            raise InvalidCommand("a username is 1 to 150 letters, digits and @ . + - _")
        if not full_name.strip():
            raise InvalidCommand("the full name is required: approvals are signed with it")
        return [PersonRegistered(username=self.username, full_name=full_name.strip(), email=email or None)]

    def grant(self, role: str, *, by: str) -> list[Event]:
        self._require_active()
        self._not_self(by, "grant")
        if role not in set(Role):
            raise InvalidCommand(f"role must be one of {', '.join(Role)}, not {role!r}")
        if role in self.roles:
            raise InvalidCommand(f"{self.username} holds the {role} role already")
        operator = self.registered_by.startswith(OPERATOR_PREFIX) or by.startswith(OPERATOR_PREFIX)
        if role in POWER and not operator:
            if by == self.registered_by:
                raise InvalidCommand(
                    f"you registered {self.username}, so chose their first password: another administrator "
                    f"gives them the {role} role (a registrar may give only {', '.join(sorted(set(Role) - POWER))})"
                )
            if not self.own_password:
                raise InvalidCommand(
                    f"{self.username} still signs in with the password their registrar chose: they set their "
                    f"own first (the Password page), then another administrator gives them the {role} role"
                )
        return [RoleGranted(username=self.username, role=Role(role))]

    def revoke(self, role: str, *, by: str) -> list[Event]:
        self._require_exists()
        self._not_self(by, "revoke")
        if role not in self.roles:
            raise InvalidCommand(f"{self.username} does not hold the {role} role")
        return [RoleRevoked(username=self.username, role=Role(role))]

    def deactivate(self, *, by: str) -> list[Event]:
        self._require_active()
        if by == self.username:
            raise InvalidCommand("nobody deactivates themselves: ask another administrator")
        return [PersonDeactivated(username=self.username)]

    def reactivate(self) -> list[Event]:
        self._require_exists()
        if self.active:
            raise InvalidCommand(f"{self.username} is active")
        return [PersonReactivated(username=self.username)]

    def _require_exists(self) -> None:
        if not self.version:
            raise NotFound(f"no person named {self.username!r}")

    def _require_active(self) -> None:
        self._require_exists()
        if not self.active:
            raise InvalidCommand(f"{self.username} is deactivated")

    def _not_self(self, by: str, verb: str) -> None:
        if by == self.username:
            raise InvalidCommand(f"nobody may {verb} their own roles: ask another administrator")
