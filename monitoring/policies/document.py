"""Monitoring policies: which checks a run makes, on what window, how often, with which
methods and thresholds. Pure: a policy is a JSON document, validated and completed with the
statistics engine's defaults; `drift_policy` turns it into the engine's decision policy.

    {"window": {"hours": 24}, "schedule": {"every_minutes": 60},
     "checks": ["data_quality", "feature_drift", "prediction_drift", "performance",
                "estimated_performance", "segments"],
     "drift": {"alpha": 0.05, "correction": "holm", "effect_floors": {"psi": 0.1, ...},
               "features": {"income": {"test": "ks", "effect": "psi", "floor": 0.2}}},
     "performance": {"warning_drop": 0.02, "critical_drop": 0.05, "mode": "absolute"},
     "segments": {"min_support": 100, "new_share": 0.05}}
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any, TypeGuard

from monitoring.runs.domain import CheckKind
from monitoring.stats.decisions import DEFAULT_ALPHA, DEFAULT_EFFECT_FLOORS, EFFECTS, TESTS, Correction, Method, Policy

CHECKS = tuple(kind.value for kind in CheckKind)
DEFAULT_POLICY: dict[str, Any] = {
    "window": {"hours": 24},
    "schedule": {"every_minutes": 60},
    "checks": list(CHECKS),
    "drift": {
        "alpha": DEFAULT_ALPHA,
        "correction": "holm",
        "effect_floors": dict(DEFAULT_EFFECT_FLOORS),
        "warning_floors": {},  # effect measure -> floor of the warning level (none by default)
        "features": {},
        "multivariate": False,  # PCA reconstruction error of the numerical features together
    },
    "performance": {"warning_drop": 0.02, "critical_drop": 0.05, "mode": "absolute"},
    "segments": {"min_support": 100, "new_share": 0.05, "prediction_drift_floor": 0.1, "floors": {}},
    # KPIs against the previous period of the same length, or the same period a week earlier
    # (seasonal baseline); a relative drop of warning_drop or critical_drop grades them.
    "kpis": {"baseline": "previous_period", "warning_drop": 0.05, "critical_drop": 0.1, "lower_is_better": []},
    # What the window is compared with: the reference data set, or (seasonal baselines) the
    # model's own predictions over the previous period or the same period a week or a quarter earlier.
    "reference": "dataset",
    # Missing data: a window with fewer rows than warning_share (critical_share) of the median
    # of the history_windows windows before it; and a model that sent no batch for
    # heartbeat.expected_every_minutes (none: not watched).
    "volume": {"warning_share": 0.5, "critical_share": 0.1, "history_windows": 7},
    "heartbeat": {"expected_every_minutes": None},
    # How many rows (and what share of the window) a value finding (out of range, extreme, nulls
    # growing, new categories) must hold before it warns: the defaults report every one.
    "data_quality": {"min_rows": 1, "min_share": 0.0},
    "ranking": {"k": 10},
    # Label-free estimation: which metrics (CBPE for classifiers, DLE for regression), judged
    # against the fixed drops and against the reference chunks' mean ± sigmas standard deviations.
    "estimation": {
        "classification_metrics": ["roc_auc"],
        "regression_metrics": ["rmse"],
        "sigmas": 3.0,
    },  # ranking models: the depth of each list their figures read (NDCG@k, …)
    "notify": [],  # names of notifiers configured in settings.NOTIFIERS
    "escalate_after_minutes": None,  # escalate alerts nobody acknowledged in this time
}


WHOLE_SECTIONS = {"window"}  # given whole, not merged key by key: hours and last_rows exclude each other
BASELINES = ("previous_period", "same_period_last_week", "same_period_last_quarter")
BASELINE_SHIFTS_DAYS = {"same_period_last_week": 7, "same_period_last_quarter": 91}


class PolicyError(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def complete_policy(raw: Any, features: Mapping[str, str]) -> dict[str, Any]:
    """The policy with every default filled in, or PolicyError listing every problem."""
    if not isinstance(raw, Mapping):
        raise PolicyError(["the policy must be an object"])
    problems = _unknown(raw, DEFAULT_POLICY, "section ")
    policy = copy.deepcopy(DEFAULT_POLICY)
    for section, value in raw.items():
        if section in policy and isinstance(policy[section], dict) and section not in WHOLE_SECTIONS:
            if not isinstance(value, Mapping):
                problems.append(f"{section} must be an object")
                continue
            if section != "volume":  # volume names its own unknown keys
                problems += _unknown(value, policy[section], "key ", f"{section}: ")
            policy[section] = {**policy[section], **value}
        elif section in policy:
            policy[section] = value
    problems += _window_problems(policy["window"]) + _schedule_problems(policy["schedule"])
    problems += (
        [f"unknown check {c!r}" for c in policy["checks"] if c not in CHECKS]
        if isinstance(policy["checks"], list)
        else ["checks must be a list"]
    )
    problems += _drift_problems(policy["drift"], features)
    problems += _performance_problems(policy["performance"])
    segments = policy["segments"]
    if not (isinstance(segments.get("min_support"), int) and segments["min_support"] >= 1):
        problems.append("segments.min_support must be a whole number ≥ 1")
    if not _between(segments.get("new_share"), 0, 1):
        problems.append("segments.new_share must lie in (0, 1)")
    if not (_number(segments.get("prediction_drift_floor")) and segments["prediction_drift_floor"] >= 0):
        problems.append("segments.prediction_drift_floor must be a number ≥ 0")
    floors = segments.get("floors")
    if not isinstance(floors, Mapping) or not all(_number(v) and v >= 0 for v in floors.values()):
        problems.append('segments.floors must map segments ("region=north") to numbers ≥ 0')
    kpis = policy["kpis"]
    if kpis.get("baseline") not in BASELINES:
        problems.append(f"kpis.baseline must be one of {', '.join(BASELINES)}")
    if policy["reference"] not in ("dataset", *BASELINES):
        problems.append(f"reference must be dataset or one of {', '.join(BASELINES)}")
    if policy["performance"].get("mode", "absolute") not in ("absolute", "relative"):
        problems.append("performance.mode must be absolute or relative (to the reference's figure)")
    if not (
        _number(kpis.get("warning_drop"))
        and _number(kpis.get("critical_drop"))
        and 0 <= kpis["warning_drop"] <= kpis["critical_drop"]
    ):
        problems.append("kpis: warning_drop and critical_drop must be numbers with 0 ≤ warning_drop ≤ critical_drop")
    if not isinstance(kpis.get("lower_is_better"), list):
        problems.append("kpis.lower_is_better must be a list of KPI names")
    problems += _volume_problems(policy["volume"]) + _heartbeat_problems(policy["heartbeat"])
    problems += _data_quality_problems(policy["data_quality"])
    problems += _estimation_problems(policy["estimation"])
    depth = policy["ranking"].get("k")
    if not (isinstance(depth, int) and not isinstance(depth, bool) and 1 <= depth <= 1000):
        problems.append("ranking.k must be a whole number from 1 to 1000")
    notify = policy["notify"]
    if not (isinstance(notify, list) and all(isinstance(n, str) for n in notify)):
        problems.append("notify must be a list of notifier names")
    escalate = policy["escalate_after_minutes"]
    if escalate is not None and not (isinstance(escalate, int) and escalate >= 1):
        problems.append("escalate_after_minutes must be a whole number ≥ 1, or null")
    if problems:
        raise PolicyError(problems)
    return policy


def drift_policy(policy: Mapping[str, Any]) -> Policy:
    drift = policy["drift"]
    features = drift.get("features", {})
    return Policy(
        alpha=drift["alpha"],
        correction=Correction(drift["correction"]),
        effect_floors={**DEFAULT_EFFECT_FLOORS, **drift["effect_floors"]},
        per_feature_floor={name: spec["floor"] for name, spec in features.items() if "floor" in spec},
        per_feature_method={
            name: Method(spec["test"], spec["effect"]) for name, spec in features.items() if "test" in spec
        },
    )


def _window_problems(window: Mapping[str, Any]) -> list[str]:
    if set(window) == {"hours"} and isinstance(window["hours"], int) and 1 <= window["hours"] <= 24 * 366:
        return []
    if set(window) == {"last_rows"} and isinstance(window["last_rows"], int) and window["last_rows"] >= 100:
        return []
    return ['window must be {"hours": 1 to 8784} or {"last_rows": 100 or more}']


def _schedule_problems(schedule: Mapping[str, Any]) -> list[str]:
    minutes = schedule.get("every_minutes")
    if set(schedule) == {"every_minutes"} and (minutes is None or (isinstance(minutes, int) and minutes >= 1)):
        return []
    return ['schedule must be {"every_minutes": 1 or more} (or null to run only on request)']


def _drift_problems(drift: Mapping[str, Any], features: Mapping[str, str]) -> list[str]:
    problems = []
    if not _between(drift.get("alpha"), 0, 1):
        problems.append("drift.alpha must lie in (0, 1)")
    if drift.get("correction") not in {c.value for c in Correction}:
        problems.append(f"drift.correction must be one of {', '.join(c.value for c in Correction)}")
    floors = drift.get("effect_floors")
    if not isinstance(floors, Mapping) or not all(_number(v) and v >= 0 for v in floors.values()):
        problems.append("drift.effect_floors must map effect names to numbers ≥ 0")
    if not isinstance(drift.get("multivariate"), bool):
        problems.append("drift.multivariate must be true or false")
    warnings = drift.get("warning_floors")
    if not isinstance(warnings, Mapping) or not all(_number(v) and v >= 0 for v in warnings.values()):
        problems.append("drift.warning_floors must map effect names to numbers ≥ 0")
    specs = drift.get("features", {})
    if not isinstance(specs, Mapping):
        return [*problems, "drift.features must be an object"]
    for name, spec in specs.items():
        if name not in features:
            problems.append(f"drift.features: {name!r} is not a feature of the model")
            continue
        kind = features[name]
        if not isinstance(spec, Mapping) or set(spec) - {"test", "effect", "floor", "warning_floor"}:
            problems.append(f"drift.features.{name}: only test, effect, floor and warning_floor may be set")
            continue
        if ("test" in spec) != ("effect" in spec):
            problems.append(f"drift.features.{name}: give test and effect together")
        if "test" in spec and spec["test"] not in TESTS[kind]:
            problems.append(f"drift.features.{name}: test must be one of {', '.join(TESTS[kind])}")
        if "effect" in spec and spec["effect"] not in EFFECTS[kind]:
            problems.append(f"drift.features.{name}: effect must be one of {', '.join(EFFECTS[kind])}")
        if "floor" in spec and not (_number(spec["floor"]) and spec["floor"] >= 0):
            problems.append(f"drift.features.{name}: floor must be a number ≥ 0")
        if "warning_floor" in spec and not (_number(spec["warning_floor"]) and spec["warning_floor"] >= 0):
            problems.append(f"drift.features.{name}: warning_floor must be a number ≥ 0")
    return problems


def _unknown(given: Mapping[str, Any], known: Mapping[str, Any], what: str, where: str = "") -> list[str]:
    """A problem for each name not among `known`, with the closest known name when one is close:
    a misspelt threshold must not be stored while the real one silently stays."""
    problems = []
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
            problems.append(f"{where}unknown {what}{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return problems


def _data_quality_problems(quality: Mapping[str, Any]) -> list[str]:
    problems = []
    rows = quality.get("min_rows")
    if not (isinstance(rows, int) and not isinstance(rows, bool) and rows >= 1):
        problems.append("data_quality.min_rows must be a whole number ≥ 1")
    share = quality.get("min_share")
    if not (_number(share) and 0 <= share < 1):
        problems.append("data_quality.min_share must be a number with 0 ≤ min_share < 1")
    return problems


def _estimation_problems(estimation: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, known in (
        ("classification_metrics", ("roc_auc", "accuracy", "precision", "recall", "f1")),
        ("regression_metrics", ("mae", "rmse")),
    ):
        chosen = estimation.get(key)
        if not (
            isinstance(chosen, list) and chosen and all(m in known for m in chosen) and len(set(chosen)) == len(chosen)
        ):
            problems.append(f"estimation.{key} must list, once each, some of {', '.join(known)}")
    sigmas = estimation.get("sigmas")
    if not (sigmas is None or (_number(sigmas) and 1 <= sigmas <= 10)):
        problems.append("estimation.sigmas must be a number from 1 to 10, or null (fixed drops only)")
    return problems


def _volume_problems(volume: Mapping[str, Any]) -> list[str]:
    problems = _unknown(volume, DEFAULT_POLICY["volume"], "key ", "volume: ")
    warning, critical = volume.get("warning_share"), volume.get("critical_share")
    if not (_number(warning) and _number(critical) and 0 <= critical <= warning <= 1):
        problems.append("volume: warning_share and critical_share must be numbers with 0 ≤ critical ≤ warning ≤ 1")
    windows = volume.get("history_windows")
    if not (isinstance(windows, int) and not isinstance(windows, bool) and 1 <= windows <= 60):
        problems.append("volume.history_windows must be a whole number from 1 to 60")
    return problems


def _heartbeat_problems(heartbeat: Mapping[str, Any]) -> list[str]:
    minutes = heartbeat.get("expected_every_minutes")
    if set(heartbeat) == {"expected_every_minutes"} and (
        minutes is None or (isinstance(minutes, int) and not isinstance(minutes, bool) and 1 <= minutes <= 527_040)
    ):
        return []
    return ['heartbeat must be {"expected_every_minutes": 1 to 527040} (or null: not watched)']


def _performance_problems(performance: Mapping[str, Any]) -> list[str]:
    warning, critical = performance.get("warning_drop"), performance.get("critical_drop")
    if not (_number(warning) and _number(critical) and 0 <= warning <= critical):
        return ["performance: warning_drop and critical_drop must be numbers with 0 ≤ warning_drop ≤ critical_drop"]
    return []


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _between(value: Any, low: float, high: float) -> bool:
    return _number(value) and low < value < high
