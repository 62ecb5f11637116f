"""The alert aggregate: one occurrence of a failing condition (model, check, feature or metric,
segment), from raised to resolved. Pure: folded from the events of its stream ("alert", id)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from monitoring.aggregates import InvalidCommand

Change = tuple[str, dict[str, Any]]
SEVERITIES = ("warning", "critical")


def dedupe_key(model: str, check: str, subject: str, segment: str = "") -> str:
    """What makes two failing checks the same alert."""
    return f"{model}|{check}|{subject}|{segment}"


@dataclass
class AlertAggregate:
    alert_id: str
    version: int = 0
    status: str = ""  # open, acknowledged, resolved
    severity: str = ""
    summary: str = ""
    silenced_until: str | None = None
    escalated: bool = False

    @classmethod
    def replay(cls, alert_id: str, events: Iterable[tuple[str, Mapping[str, Any]]]) -> AlertAggregate:
        alert = cls(alert_id)
        for event_type, payload in events:
            alert.apply(event_type, payload)
        return alert

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.version += 1
        short = event_type.removeprefix("monitoring.")
        if short == "AlertRaised":
            self.status, self.severity, self.summary = "open", payload["severity"], payload["summary"]
        elif short == "AlertUpdated":
            self.severity, self.summary = payload["severity"], payload["summary"]
        elif short == "AlertAcknowledged":
            self.status = "acknowledged"
        elif short == "AlertResolved":
            self.status = "resolved"
        elif short == "AlertEscalated":
            self.escalated = True
        elif short == "AlertSilenced":
            self.silenced_until = payload["until"]

    def update(self, *, severity: str, summary: str, run_id: str | None) -> list[Change]:
        self._require_unresolved()
        if (severity, summary) == (self.severity, self.summary):
            return []
        payload = {"alert_id": self.alert_id, "severity": severity, "summary": summary}
        return [("monitoring.AlertUpdated", payload | ({"run_id": run_id} if run_id else {}))]

    def acknowledge(self) -> list[Change]:
        self._require_unresolved()
        if self.status == "acknowledged":
            raise InvalidCommand("the alert is already acknowledged")
        return [("monitoring.AlertAcknowledged", {"alert_id": self.alert_id})]

    def resolve(self, *, how: str, run_id: str | None = None) -> list[Change]:
        self._require_unresolved()
        payload = {"alert_id": self.alert_id, "how": how}
        return [("monitoring.AlertResolved", payload | ({"run_id": run_id} if run_id else {}))]

    def escalate(self, minutes: int) -> list[Change]:
        if self.status != "open" or self.escalated:
            return []
        return [("monitoring.AlertEscalated", {"alert_id": self.alert_id, "unacknowledged_minutes": minutes})]

    def silence(self, until: dt.datetime, now: dt.datetime) -> list[Change]:
        self._require_unresolved()
        if until <= now:
            raise InvalidCommand("a silence must end in the future")
        until_text = until.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        return [("monitoring.AlertSilenced", {"alert_id": self.alert_id, "until": until_text})]

    def _require_unresolved(self) -> None:
        if self.version == 0:
            raise InvalidCommand(f"no alert {self.alert_id!r}")
        if self.status == "resolved":
            raise InvalidCommand("the alert is resolved")
