"""The alert aggregate: one occurrence of a failing condition (model, check, feature or metric,
segment), from raised to resolved, and the events of its stream ("alert", id). Pure.

    open ──acknowledge──▶ acknowledged
      └──────────┴──resolve (by hand, or auto when its check passes)──▶ resolved
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar

from audit.envelope import format_time, parse_time
from audit.errors import InvalidCommand
from audit.events import Choice, Closed, Context, Event, Timestamp, event_type
from monitoring.remediation.kinds import ApprovalRequired, RemediationKind
from monitoring.runs.domain import Level

STREAM = "alert"


class AlertStatus(Closed):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Resolution(Closed):
    AUTO = "auto"  # its condition cleared on a later run, or its source resolved it
    MANUAL = "manual"  # a person resolved it, with a reason


def dedupe_key(model: str, check: str, subject: str, segment: str = "") -> str:
    """What makes two findings the same alert: at most one is unresolved at a time."""
    return f"{model}|{check}|{subject}|{segment}"


# Events ------------------------------------------------------------------------------------------


@event_type("monitoring.AlertRaised", schema=1)
class AlertRaisedV1(Event):
    """Schema 1: the condition's subject was recorded only for feature checks."""

    tone: ClassVar[str] = "alert"
    alert_id: str
    model: str
    check: str
    severity: Choice[Level]
    summary: str
    feature: str | None = None
    segment: str | None = None
    run_id: str | None = None

    def upcast(self) -> AlertRaised:
        return AlertRaised(**self.model_dump(), subject=self.feature or _subject_in(self.check, self.summary))


@event_type("monitoring.AlertRaised", schema=2)
class AlertRaised(Event):
    """A check crossed its threshold: a new alert for its condition (model, check, subject,
    segment), raised by the run `run_id` over a window ending at `window_end`."""

    tone: ClassVar[str] = "alert"
    alert_id: str
    model: str
    check: str
    severity: Choice[Level]
    summary: str
    subject: str  # the feature, metric or other thing the check is about
    feature: str | None = None
    segment: str | None = None
    run_id: str | None = None
    window_end: Timestamp | None = None

    @property
    def dedupe_key(self) -> str:
        return dedupe_key(self.model, self.check, self.subject, self.segment or "")

    def describe(self, about: Context) -> str:
        return f"A {self.severity.value} alert was raised on {self.model}: {self.summary}"


@event_type("monitoring.AlertUpdated", schema=1)
class AlertUpdatedV1(Event):
    """Schema 1: without the window of the run that found the condition again."""

    tone: ClassVar[str] = "alert"
    alert_id: str
    severity: Choice[Level]
    summary: str
    run_id: str | None = None

    def upcast(self) -> AlertUpdated:
        return AlertUpdated(**self.model_dump())


@event_type("monitoring.AlertUpdated", schema=2)
class AlertUpdated(Event):
    """An open alert's condition persists on a later run (window ending at `window_end`) with
    another severity or figure."""

    tone: ClassVar[str] = "alert"
    alert_id: str
    severity: Choice[Level]
    summary: str
    run_id: str | None = None
    window_end: Timestamp | None = None

    def describe(self, about: Context) -> str:
        return f"Alert {self.alert_id[:8]} is still {self.severity.value}: {self.summary}"


@event_type("monitoring.AlertAcknowledged")
class AlertAcknowledged(Event):
    """Someone took the alert on; who is the event's actor."""

    alert_id: str

    def describe(self, about: Context) -> str:
        return f"{about.who} acknowledged alert {_alert_title(self.alert_id, about)}{about.because}"


@event_type("monitoring.AlertResolved")
class AlertResolved(Event):
    """The alert ends: by hand (reason in the envelope) or automatically."""

    alert_id: str
    how: Choice[Resolution]
    run_id: str | None = None

    def describe(self, about: Context) -> str:
        if self.how is Resolution.AUTO:
            by = f" by run {self.run_id[:8]}" if self.run_id else ""
            return f"Alert {_alert_title(self.alert_id, about)} was resolved: its condition cleared{by}"
        return f"{about.who} resolved alert {_alert_title(self.alert_id, about)}{about.because}"


@event_type("monitoring.AlertEscalated")
class AlertEscalated(Event):
    """Nobody acknowledged the alert in the configured time."""

    tone: ClassVar[str] = "alert"
    alert_id: str
    unacknowledged_minutes: int

    def describe(self, about: Context) -> str:
        return (
            f"Alert {_alert_title(self.alert_id, about)} was escalated: unacknowledged for "
            f"{self.unacknowledged_minutes} minutes"
        )


@event_type("monitoring.AlertSilenced")
class AlertSilenced(Event):
    """Notifications for the alert are held until a time; the reason is in the envelope."""

    alert_id: str
    until: Timestamp

    def describe(self, about: Context) -> str:
        return f"{about.who} silenced alert {_alert_title(self.alert_id, about)} until {self.until}{about.because}"


def _alert_title(alert_id: str, about: Context) -> str:
    raised = about.first(STREAM, alert_id)
    return f"{alert_id[:8]} ({raised.summary})" if isinstance(raised, AlertRaised) else alert_id[:8]


def _subject_in(check: str, summary: str) -> str:
    """The subject of a schema-1 alert without a feature, from the summary the product wrote:
    "<check> on <subject>: …", or "break-glass rollback <request id> …"."""
    found = re.match(rf"{re.escape(check)} on (.*?): ", summary) or re.match(r"break-glass rollback (\S+) ", summary)
    return found.group(1) if found else ""


# The aggregate -----------------------------------------------------------------------------------


def status_after(status: AlertStatus | None, event: Event) -> AlertStatus | None:
    """The alert's status once `event` happened: one state machine for the aggregate and its read model."""
    match event:
        case AlertRaised():
            return AlertStatus.OPEN
        case AlertAcknowledged():
            return AlertStatus.ACKNOWLEDGED
        case AlertResolved():
            return AlertStatus.RESOLVED
    return status


@dataclass
class AlertAggregate:
    alert_id: str
    stream_type: ClassVar[str] = STREAM
    version: int = 0
    status: AlertStatus | None = None
    model: str = ""
    severity: str = ""
    summary: str = ""
    silenced_until: str | None = None
    escalated: bool = False

    @property
    def stream_id(self) -> str:
        return self.alert_id

    def apply(self, event: Event, actor_id: str = "") -> None:
        self.version += 1
        self.status = status_after(self.status, event)
        match event:
            case AlertRaised():
                self.model, self.severity, self.summary = event.model, event.severity, event.summary
            case AlertUpdated():
                self.severity, self.summary = event.severity, event.summary
            case AlertEscalated():
                self.escalated = True
            case AlertSilenced():
                self.silenced_until = event.until

    def raise_(self, raised: AlertRaised) -> list[Event]:
        if self.version:
            raise InvalidCommand(f"alert {self.alert_id} exists already")
        return [raised]

    def update(
        self, *, severity: Level, summary: str, run_id: str | None, window_end: str | None = None
    ) -> list[Event]:
        self._require_unresolved()
        if (severity, summary) == (self.severity, self.summary):
            return []
        return [
            AlertUpdated(
                alert_id=self.alert_id, severity=severity, summary=summary, run_id=run_id, window_end=window_end
            )
        ]

    def acknowledge(self) -> list[Event]:
        self._require_unresolved()
        if self.status is AlertStatus.ACKNOWLEDGED:
            raise InvalidCommand("the alert is already acknowledged")
        return [AlertAcknowledged(alert_id=self.alert_id)]

    def resolve(self, *, how: Resolution, run_id: str | None = None) -> list[Event]:
        self._require_unresolved()
        return [AlertResolved(alert_id=self.alert_id, how=how, run_id=run_id or None)]

    def escalate(self, minutes: int) -> list[Event]:
        if self.status is not AlertStatus.OPEN or self.escalated:
            return []
        return [AlertEscalated(alert_id=self.alert_id, unacknowledged_minutes=minutes)]

    def silence(self, until: dt.datetime, now: dt.datetime, *, max_hours: float | None) -> list[Event]:
        """Hold notifications until `until`; longer than `max_hours` is accepting a risk, which
        takes an approved accept_risk request (that executes with no bound)."""
        self._require_unresolved()
        if until <= now:
            raise InvalidCommand("a silence must end in the future")
        if max_hours is not None:
            bound = dt.timedelta(hours=max_hours)
            parameters = {"alert_id": self.alert_id, "until": format_time(until)}
            if until - now > bound:
                raise ApprovalRequired(
                    RemediationKind.ACCEPT_RISK, parameters, f"a silence longer than {max_hours:g} h accepts a risk"
                )
            if (rested := self._silence_rested(until, now, bound)) is not None:
                raise ApprovalRequired(RemediationKind.ACCEPT_RISK, parameters, rested)
        return [AlertSilenced(alert_id=self.alert_id, until=format_time(until))]

    def _silence_rested(self, until: dt.datetime, now: dt.datetime, bound: dt.timedelta) -> str | None:
        """Why a silence by hand would extend the last one: before `bound` has passed since it
        ended, a later end accepts a risk too, or silences of a day each, chained, would hold an
        alert quiet for good without anyone's approval. Ending it sooner is always allowed."""
        if self.silenced_until is None:
            return None
        previous = parse_time(self.silenced_until)
        if until <= previous or now >= previous + bound:
            return None
        return (
            f"the alert was silenced until {self.silenced_until}: silencing it again by hand before "
            f"{format_time(previous + bound)} extends that silence, which accepts a risk"
        )

    def silenced_at(self, moment: dt.datetime) -> bool:
        return self.silenced_until is not None and parse_time(self.silenced_until) > moment

    def _require_unresolved(self) -> None:
        if self.version == 0:
            raise InvalidCommand(f"no alert {self.alert_id!r}")
        if self.status is AlertStatus.RESOLVED:
            raise InvalidCommand("the alert is resolved")
