"""The policy aggregate: a model's monitoring policy, versioned by the events of its stream
("policy", model). Pure. Every event of the stream is a new version, so the policy in force at
any past moment is the fold of the events up to it, and each run records the version it used.

`monitoring.ThresholdChanged` (schema 1) changes one threshold: for feature_drift with a
feature, that feature's effect floor (and its effect measure when `metric` names another
one); for performance, the `level` (warning or critical) drop.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from audit.errors import InvalidCommand
from audit.events import Context, Event, event_type
from monitoring.policies.change import loosenings
from monitoring.policies.document import DEFAULT_POLICY, WHOLE_SECTIONS, PolicyError, complete_policy
from monitoring.remediation.kinds import ApprovalRequired, RemediationKind
from monitoring.stats.decisions import DEFAULT_METHODS, EFFECTS

STREAM = "policy"


@event_type("monitoring.PolicySet")
class PolicySet(Event):
    """A model's monitoring policy, complete with defaults; the reason is in the envelope."""

    tone: ClassVar[str] = "decision"
    model: str
    version: int
    policy: dict[str, Any]

    def describe(self, about: Context) -> str:
        return f"{about.who} set version {self.version} of the monitoring policy of {self.model}{about.because}"


@event_type("monitoring.ThresholdChanged")
class ThresholdChanged(Event):
    """A monitoring threshold is changed; the reason is in the envelope."""

    tone: ClassVar[str] = "decision"
    model: str
    check: str
    metric: str
    previous: float | None
    new: float
    feature: str | None = None
    level: str | None = None

    def describe(self, about: Context) -> str:
        where = f" on {self.feature}" if self.feature else ""
        before = "unset" if self.previous is None else f"{self.previous:g}"
        return (
            f"{about.who} changed the {self.check} {self.metric} threshold{where} of {self.model} "
            f"from {before} to {self.new:g}{about.because}"
        )


@dataclass
class PolicyAggregate:
    model: str
    features: Mapping[str, str]
    stream_type: ClassVar[str] = STREAM
    version: int = 0
    policy: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_POLICY))

    @property
    def stream_id(self) -> str:
        return self.model

    def apply(self, event: Event, actor_id: str = "") -> None:
        self.version += 1
        match event:
            case PolicySet():
                self.policy = _with_defaults(event.policy)
            case ThresholdChanged():
                self._threshold(event)

    def set(self, raw: Any, *, approved: bool = False) -> list[Event]:
        """A new version; unless `approved`, only a pure tightening of the policy in force."""
        policy = self.completed(raw)
        if policy == self.policy and self.version > 0:
            raise InvalidCommand("the policy is unchanged")
        laxer = loosenings(self.policy, policy, features=self.features)
        if laxer and not approved:
            why = "this change makes monitoring less watchful or changes it in kind (" + "; ".join(laxer) + ")"
            raise ApprovalRequired(RemediationKind.THRESHOLD_CHANGE, {"policy": raw}, why)
        return [PolicySet(model=self.model, version=self.version + 1, policy=policy)]

    def completed(self, raw: Any) -> dict[str, Any]:
        """`raw` with every default filled in, or InvalidCommand listing every problem."""
        try:
            return complete_policy(raw, self.features)
        except PolicyError as error:
            raise InvalidCommand(f"policy: {error}") from error

    def _threshold(self, event: ThresholdChanged) -> None:
        if event.check == "feature_drift" and event.feature:
            spec = self.policy["drift"]["features"].setdefault(event.feature, {})
            spec["floor"] = event.new
            kind = self.features.get(event.feature)
            if kind and event.metric in EFFECTS[kind] and event.metric != DEFAULT_METHODS[kind].effect:
                spec.update(test=spec.get("test", DEFAULT_METHODS[kind].test), effect=event.metric)
        elif event.check == "performance":
            self.policy["performance"][f"{event.level or 'critical'}_drop"] = event.new


def _with_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Sections and keys added to the defaults after a version was set take their defaults."""
    policy = copy.deepcopy(DEFAULT_POLICY)
    for section, value in copy.deepcopy(dict(stored)).items():
        if isinstance(value, dict) and isinstance(policy.get(section), dict) and section not in WHOLE_SECTIONS:
            policy[section] = {**policy[section], **value}
        else:
            policy[section] = value
    return policy
