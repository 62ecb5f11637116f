"""Is a policy change a pure tightening? Pure.

A pure tightening only makes monitoring more watchful: a threshold lowered (or alpha or a volume
share raised), a check, notifier or warning floor added, runs made more frequent, escalation or
the heartbeat made sooner. It applies at once, recorded with its reason. Anything else (a
threshold made laxer, a check, feature, notifier or escalation removed, a window, baseline or
method changed) changes what alerts, and takes effect only through an approved remediation
request.

Conservative by construction: a change this module does not know to be tighter counts as one
that needs approval.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from monitoring.stats.decisions import DEFAULT_EFFECT_FLOORS

LOWER_IS_STRICTER = (
    "drift.effect_floors.*",
    "drift.warning_floors.*",
    "drift.features.*.floor",
    "drift.features.*.warning_floor",
    "performance.warning_drop",
    "performance.critical_drop",
    "kpis.warning_drop",
    "kpis.critical_drop",
    "segments.min_support",
    "segments.new_share",
    "segments.prediction_drift_floor",
    "segments.floors.*",
    "schedule.every_minutes",  # none: never
    "escalate_after_minutes",  # none: never
    "heartbeat.expected_every_minutes",  # none: never
    "data_quality.min_rows",
    "data_quality.min_share",
    "estimation.sigmas",
)
HIGHER_IS_STRICTER = ("drift.alpha", "volume.warning_share", "volume.critical_share")
MORE_IS_STRICTER = (  # lists: keeping every member and adding is tighter
    "checks",
    "notify",
    "estimation.classification_metrics",
    "estimation.regression_metrics",
)
SWITCHED_ON_IS_STRICTER = ("drift.multivariate",)  # a check added
ORDERED = {"drift.correction": ("bonferroni", "holm", "none")}  # from fewest detections to most


def loosenings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What the change from `old` to `new` (both complete policies) makes less watchful or
    changes in kind, one line each; empty when it is a pure tightening (or no change)."""
    before, after = _flat(_effective(old)), _flat(_effective(new))
    found = []
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if was != now and not _tighter(path, was, now):
            found.append(f"{path}: {_show(was)} -> {_show(now)}")
    return found


def _tighter(path: str, was: Any, now: Any) -> bool:
    if _matches(path, LOWER_IS_STRICTER):
        return now is not None and (was is None or now < was)
    if _matches(path, HIGHER_IS_STRICTER):
        return was is not None and now is not None and now > was
    if _matches(path, MORE_IS_STRICTER):
        return isinstance(was, list) and isinstance(now, list) and set(was) <= set(now)
    if path in SWITCHED_ON_IS_STRICTER:
        return was is False and now is True
    if path in ORDERED:
        order = ORDERED[path]
        return was in order and now in order and order.index(now) > order.index(was)
    return False


def _effective(policy: Mapping[str, Any]) -> dict[str, Any]:
    """Effect floors as the engine applies them: the defaults, then the policy's own."""
    drift = dict(policy.get("drift", {}))
    drift["effect_floors"] = {**DEFAULT_EFFECT_FLOORS, **drift.get("effect_floors", {})}
    return {**policy, "drift": drift}


def _flat(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):  # an empty one adds nothing: its members are what count
            flat |= _flat(value, f"{path}.")
        else:
            flat[path] = value
    return flat


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def _show(value: Any) -> str:
    return "unset" if value is None else repr(value)


def policy_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Every setting that differs between two complete policies: (path, before, after, whether
    the change is a tightening), in path order."""
    before, after = _flat(_effective(old)), _flat(_effective(new))
    return [
        (path, _show(before.get(path)), _show(after.get(path)), _tighter(path, before.get(path), after.get(path)))
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path)
    ]
