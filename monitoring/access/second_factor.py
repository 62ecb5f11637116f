"""A second factor (TOTP) at sign-in, required of the roles the sign-in policy names.

The policy is a stream of signed events ("sign-in-policy", "people"): an administrator says
which roles must show a code, with a reason. OTP_REQUIRED_ROLES in settings is a floor the
policy can add to and never lower, so that a deployment can insist on it whatever the app says.

The device's secret is the account's, like the password hash: it never enters the log. The log
records that a person enrolled a device, and that an administrator reset it (with a reason)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.aggregates import aggregate_execute, aggregate_load
from audit.errors import InvalidCommand
from audit.events import Choice, Context, Event, event_type
from audit.store import Actor, RecordedEvent
from monitoring.access.domain import Role
from monitoring.access.roles import roles_of
from monitoring.access.services import person_execute, person_load

POLICY_STREAM = ("sign-in-policy", "people")
DEVICE_NAME = "authenticator"


@event_type("monitoring.SignInPolicySet")
class SignInPolicySet(Event):
    """Which roles must show a second factor at sign-in (besides the deployment's floor)."""

    tone: ClassVar[str] = "decision"
    second_factor_roles: list[Choice[Role]]

    def describe(self, about: Context) -> str:
        roles = ", ".join(Role(role).label for role in self.second_factor_roles) or "no role"
        return f"{about.who} required a second factor at sign-in of {roles}{about.because}"


@event_type("monitoring.SecondFactorEnrolled")
class SecondFactorEnrolled(Event):
    """A person confirmed an authenticator app (its secret stays with the account)."""

    username: str

    def describe(self, about: Context) -> str:
        return f"{self.username} enrolled an authenticator app as a second factor"


@event_type("monitoring.SecondFactorReset")
class SecondFactorReset(Event):
    """An administrator removed a person's authenticator (lost phone): they enrol again."""

    tone: ClassVar[str] = "decision"
    username: str

    def describe(self, about: Context) -> str:
        return f"{about.who} reset the second factor of {self.username}{about.because}"


@dataclass
class SignInPolicyAggregate:
    stream_type: ClassVar[str] = POLICY_STREAM[0]
    version: int = 0
    roles: set[Role] = field(default_factory=set)

    @property
    def stream_id(self) -> str:
        return POLICY_STREAM[1]

    def apply(self, event: Event, actor_id: str = "") -> None:
        self.version += 1
        if isinstance(event, SignInPolicySet):
            self.roles = {Role(role) for role in event.second_factor_roles}

    def require(self, roles: Iterable[str]) -> list[Event]:
        wanted = set()
        for role in roles:
            if role not in set(Role):
                raise InvalidCommand(f"role must be one of {', '.join(Role)}, not {role!r}")
            wanted.add(Role(role))
        if wanted == self.roles:
            raise InvalidCommand("the sign-in policy says this already")
        return [SignInPolicySet(second_factor_roles=sorted(wanted))]


def second_factor_floor() -> frozenset[Role]:
    """The roles settings.OTP_REQUIRED_ROLES requires a second factor of (checked at start)."""
    return frozenset(Role(role) for role in settings.OTP_REQUIRED_ROLES)


def second_factor_roles() -> frozenset[Role]:
    """The roles that must show a second factor now: the policy's and the floor."""
    return frozenset(aggregate_load(SignInPolicyAggregate()).roles) | second_factor_floor()


def second_factor_required(user) -> bool:
    roles = roles_of(user)
    return bool(roles) and bool(roles & second_factor_roles())


def sign_in_policy_set(*, roles: Iterable[str], actor: Actor, reason: str) -> list[RecordedEvent]:
    if not reason or not reason.strip():
        raise InvalidCommand("a reason is required: the sign-in policy is signed with it")
    return aggregate_execute(
        SignInPolicyAggregate, lambda policy: policy.require(roles), actor=actor, reason=reason
    ).recorded


def device_of(user) -> TOTPDevice | None:
    """The person's confirmed authenticator, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def device_unconfirmed(user, enrolling: int | None = None) -> TOTPDevice:
    """The authenticator a person is enrolling: `enrolling`, the device this enrolment (one
    browser session) began, the same secret until they confirm it; else a new secret. Never
    one another enrolment showed: a secret seen by someone who had only the password must not
    become the owner's authenticator, so a new enrolment ends the others."""
    device = TOTPDevice.objects.filter(pk=enrolling, user=user, confirmed=False).first() if enrolling else None
    if device is not None:
        return device
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def code_verify(user, code: str) -> bool:
    """Whether `code` is the current code of the person's confirmed device (a code is accepted
    once: django-otp refuses a replay)."""
    device = device_of(user)
    return device is not None and _plausible(code) and device.verify_token(code.strip())


def second_factor_enrol(*, user, code: str, enrolling: int | None) -> list[RecordedEvent]:
    """Confirm the device this enrolment began (`enrolling`) with its first code, and record
    that it was. A person who has a confirmed device enrols none: only an administrator's reset
    removes it, so a password alone never replaces the owner's authenticator."""
    device = TOTPDevice.objects.filter(pk=enrolling, user=user, confirmed=False).first() if enrolling else None
    if device is None:
        raise InvalidCommand("no authenticator is being enrolled: start again")
    if not (_plausible(code) and device.verify_token(code.strip())):
        raise InvalidCommand("that code is not the app's current code: check the phone's clock and try the next one")
    actor = Actor("user", user.username, user.get_full_name() or user.username)
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()  # one enrolment at a time
        if device_of(user) is not None:
            raise InvalidCommand("you have an authenticator already: an administrator resets a lost one")
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return person_execute(
            user.username,
            lambda person: [SecondFactorEnrolled(username=user.username)],
            actor=actor,
            reason="enrolled at sign-in",
        )


def second_factor_reset(*, username: str, actor: Actor, reason: str) -> list[RecordedEvent]:
    """Remove a person's authenticator, so that they enrol a new one at their next sign-in."""
    person = person_load(username)
    if not person.version:
        raise InvalidCommand(f"no person named {username!r}")
    if actor.id == username:
        raise InvalidCommand("nobody resets their own second factor: ask another administrator")
    with transaction.atomic():
        removed, _ = TOTPDevice.objects.filter(user__username=username).delete()
        if not removed:
            raise InvalidCommand(f"{username} has no second factor to reset")
        return person_execute(
            username, lambda person: [SecondFactorReset(username=username)], actor=actor, reason=reason
        )


def _plausible(code: str) -> bool:
    code = (code or "").strip()
    return len(code) == 6 and code.isdigit()
