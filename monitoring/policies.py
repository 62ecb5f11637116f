"""The policy aggregate: a model's monitoring policy, versioned by the events of its stream
("policy", model). Pure. Every event of the stream is a new version, so the policy in force at
any past moment is the fold of the events up to it, and each run records the version it used.

`monitoring.ThresholdChanged` (schema 1) changes one threshold: for feature_drift with a
feature, that feature's effect floor (and its effect measure when `metric` names another
one); for performance, the `level` (warning or critical) drop.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitoring.aggregates import InvalidCommand
from monitoring.policy import DEFAULT_POLICY, WHOLE_SECTIONS, PolicyError, complete_policy
from monitoring.stats.decisions import DEFAULT_METHODS, EFFECTS


@dataclass
class PolicyAggregate:
    model: str
    features: Mapping[str, str]
    version: int = 0
    policy: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_POLICY))

    @classmethod
    def replay(cls, model: str, features: Mapping[str, str], events: Iterable[tuple[str, Mapping]]) -> PolicyAggregate:
        aggregate = cls(model, features)
        for event_type, payload in events:
            aggregate.apply(event_type, payload)
        return aggregate

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.version += 1
        if event_type == "monitoring.PolicySet":
            self.policy = _with_defaults(payload["policy"])
        elif event_type == "monitoring.ThresholdChanged":
            self._threshold(payload)

    def set(self, raw: Any) -> list[tuple[str, dict]]:
        try:
            policy = complete_policy(raw, self.features)
        except PolicyError as error:
            raise InvalidCommand(f"policy: {error}") from error
        if policy == self.policy and self.version > 0:
            raise InvalidCommand("the policy is unchanged")
        return [("monitoring.PolicySet", {"model": self.model, "version": self.version + 1, "policy": policy})]

    def _threshold(self, payload: Mapping[str, Any]) -> None:
        check, metric, new = payload["check"], payload["metric"], payload["new"]
        feature = payload.get("feature")
        if check == "feature_drift" and feature:
            spec = self.policy["drift"]["features"].setdefault(feature, {})
            spec["floor"] = new
            kind = self.features.get(feature)
            if kind and metric in EFFECTS[kind] and metric != DEFAULT_METHODS[kind].effect:
                spec.update(test=spec.get("test", DEFAULT_METHODS[kind].test), effect=metric)
        elif check == "performance":
            self.policy["performance"][f"{payload.get('level', 'critical')}_drop"] = new


def _with_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Sections and keys added to the defaults after a version was set take their defaults."""
    policy = copy.deepcopy(DEFAULT_POLICY)
    for section, value in copy.deepcopy(dict(stored)).items():
        if isinstance(value, dict) and isinstance(policy.get(section), dict) and section not in WHOLE_SECTIONS:
            policy[section] = {**policy[section], **value}
        else:
            policy[section] = value
    return policy
