"""Is a policy change a pure tightening? Pure.

A pure tightening only makes monitoring more watchful: a threshold lowered (or alpha or a volume
share raised), a check, notifier or warning floor added, runs made more frequent, escalation or
the heartbeat made sooner. It applies at once, recorded with its reason. Anything else (a
threshold made laxer, a check, feature, notifier or escalation removed, a window, baseline or
method changed) changes what alerts, and takes effect only through an approved remediation
request.

An override judged alone would mislead: a feature's floor or warning floor, or a segment's
floor, that is unset falls back to a global setting (the floor or warning floor of the feature's
effect measure, segments.prediction_drift_floor). So overrides are compared by the value in force
on each side, and setting one above what it replaces mutes alerts like any laxer threshold.

Conservative by construction: a change this module does not know to be tighter counts as one
that needs approval.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from monitoring.stats.decisions import DEFAULT_EFFECT_FLOORS, DEFAULT_METHODS

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


def loosenings(old: Mapping[str, Any], new: Mapping[str, Any], *, features: Mapping[str, str]) -> list[str]:
    """What the change from `old` to `new` (both complete policies of a model whose features are
    `features`, name -> kind) makes less watchful or changes in kind, one line each; empty when
    it is a pure tightening (or no change)."""
    changes = policy_diff(old, new, features=features)
    return [f"{path}: {was} -> {now}" for path, was, now, tighter in changes if not tighter]


def policy_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, features: Mapping[str, str]
) -> list[tuple[str, str, str, bool]]:
    """Every setting that differs between two complete policies: (path, before, after, whether
    the change is a tightening or leaves the value in force as it was), in path order.

    An override (a feature's floor or warning floor, a segment's floor) is judged by the value
    in force on each side: when unset, what it falls back to in that same document, so an
    override "added" above its fallback, or removed below a raised one, is a loosening."""
    before, after = _flat(_effective(old)), _flat(_effective(new))
    named = _overrides_named(old) | _overrides_named(new)
    falls_before, falls_after = _fallbacks(old, features, named), _fallbacks(new, features, named)
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) == after.get(path):
            continue
        was, now = _in_force(before, falls_before, path), _in_force(after, falls_after, path)
        shown = (_shown(before, falls_before, path), _shown(after, falls_after, path))
        changes.append((path, *shown, was == now or _tighter(path, was, now)))
    return changes


def _overrides_named(policy: Mapping[str, Any]) -> set[tuple[str, str]]:
    """("feature", name) and ("segment", name) for each override section the policy has."""
    features, segments = policy.get("drift", {}).get("features", {}), policy.get("segments", {}).get("floors", {})
    return {("feature", name) for name in features} | {("segment", name) for name in segments}


def _fallbacks(policy: Mapping[str, Any], features: Mapping[str, str], named: set[tuple[str, str]]) -> dict[str, str]:
    """Override path -> the path of the setting it falls back to in `policy` when unset, as the
    engine applies them (decisions.Policy.floor, runs.checks._drift_status and
    _segment_prediction_drift), for the `named` features and segments (those either side of a
    change overrides). A feature whose effect measure is unknown (no longer in the schema) gets
    none: unset, its override then counts as off, which is never tighter."""
    paths = {}
    for section, name in named:
        if section == "segment":
            paths[f"segments.floors.{name}"] = "segments.prediction_drift_floor"
            continue
        effect = _effect_measure(name, policy.get("drift", {}).get("features", {}).get(name, {}), features)
        if effect is not None:
            paths[f"drift.features.{name}.floor"] = f"drift.effect_floors.{effect}"
            paths[f"drift.features.{name}.warning_floor"] = f"drift.warning_floors.{effect}"
    return paths


def _effect_measure(feature: str, spec: Mapping[str, Any], features: Mapping[str, str]) -> str | None:
    """The effect measure the engine uses for the feature (decisions.Policy.method)."""
    if "effect" in spec:
        return str(spec["effect"])
    kind = features.get(feature)
    return DEFAULT_METHODS[kind].effect if kind in DEFAULT_METHODS else None


def _in_force(flat: Mapping[str, Any], fallbacks: Mapping[str, str], path: str) -> Any:
    """The setting's value, or when unset the value of what it falls back to (None: off)."""
    value = flat.get(path)
    return flat.get(fallbacks[path]) if value is None and path in fallbacks else value


def _shown(flat: Mapping[str, Any], fallbacks: Mapping[str, str], path: str) -> str:
    value = flat.get(path)
    if value is None and path in fallbacks:
        return f"unset ({fallbacks[path]}: {_show(flat.get(fallbacks[path]))})"
    return _show(value)


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
