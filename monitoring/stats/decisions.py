"""Drift decisions that hold at production sizes.

At a million rows every p-value is tiny, and at a thousand every effect is noisy. A feature is
flagged only when its test is significant after a correction for testing many features at once
AND its effect size clears a materiality floor. Defaults per method, overridable per feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class Correction(StrEnum):
    BONFERRONI = "bonferroni"
    HOLM = "holm"
    NONE = "none"


# Documented defaults: the effect floor under which a shift is immaterial, whatever the p-value.
DEFAULT_EFFECT_FLOORS = {
    "wasserstein_normed": 0.1,  # a tenth of the reference standard deviation
    "psi": 0.1,
    "jensen_shannon": 0.1,
    "l_infinity": 0.1,
    "hellinger": 0.1,
}
DEFAULT_ALPHA = 0.05

# Which test gives the p-value and which measure the effect, per kind of feature.
TESTS = {"numerical": ("ks", "anderson_darling", "cramer_von_mises"), "categorical": ("chi2",)}
EFFECTS = {
    "numerical": ("wasserstein_normed", "psi", "jensen_shannon", "hellinger"),
    "categorical": ("psi", "jensen_shannon", "l_infinity"),
}


@dataclass(frozen=True)
class Method:
    test: str
    effect: str

    def check(self, kind: str) -> None:
        if self.test not in TESTS[kind]:
            raise ValueError(f"test {self.test!r} is not one for {kind} features: {', '.join(TESTS[kind])}")
        if self.effect not in EFFECTS[kind]:
            raise ValueError(f"effect {self.effect!r} is not one for {kind} features: {', '.join(EFFECTS[kind])}")


DEFAULT_METHODS = {"numerical": Method("ks", "wasserstein_normed"), "categorical": Method("chi2", "psi")}


@dataclass(frozen=True)
class FeatureTest:
    feature: str
    p_value: float
    effect: float
    effect_measure: str


@dataclass(frozen=True)
class Policy:
    alpha: float = DEFAULT_ALPHA
    correction: Correction = Correction.HOLM
    effect_floors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_EFFECT_FLOORS))
    per_feature_floor: Mapping[str, float] = field(default_factory=dict)  # feature -> floor override
    per_feature_method: Mapping[str, Method] = field(default_factory=dict)  # feature -> method override

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), not {self.alpha}")
        for feature, floor in self.per_feature_floor.items():
            if not floor >= 0:
                raise ValueError(f"feature {feature!r}: the effect floor must be a number ≥ 0, not {floor}")
        missing = {m.effect for m in self.per_feature_method.values()} - set(self.effect_floors)
        if missing:
            raise ValueError(f"no effect floor for {', '.join(sorted(missing))}")

    def method(self, feature: str, kind: str) -> Method:
        method = self.per_feature_method.get(feature, DEFAULT_METHODS[kind])
        method.check(kind)
        return method

    def floor(self, test: FeatureTest) -> float:
        if test.feature in self.per_feature_floor:
            return self.per_feature_floor[test.feature]
        return self.effect_floors[test.effect_measure]


@dataclass(frozen=True)
class Decision:
    feature: str
    drifted: bool
    significant: bool
    material: bool
    adjusted_p_value: float
    effect: float
    effect_floor: float


def adjusted_p_values(p_values: np.ndarray, correction: Correction) -> np.ndarray:
    """Family-wise error control across features: Bonferroni, or Holm's step-down (uniformly
    more powerful, same guarantee)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if correction is Correction.NONE or m == 0:
        return p.copy()
    if correction is Correction.BONFERRONI:
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def decide(tests: list[FeatureTest], policy: Policy | None = None) -> list[Decision]:
    policy = policy or Policy()
    adjusted = adjusted_p_values(np.array([t.p_value for t in tests]), policy.correction)
    decisions = []
    for test, p_value in zip(tests, adjusted, strict=True):
        floor = policy.floor(test)
        significant = bool(p_value < policy.alpha)
        material = bool(test.effect >= floor)
        decisions.append(
            Decision(test.feature, significant and material, significant, material, float(p_value), test.effect, floor)
        )
    return decisions
