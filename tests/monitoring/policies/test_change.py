"""Pure tightenings apply at once; everything else needs approval. Checked on complete policies."""

import pytest

from monitoring.policies.change import loosenings
from monitoring.policies.document import complete_policy

FEATURES = {"income": "numerical", "region": "categorical"}


def _policy(**sections) -> dict:
    return complete_policy(sections, FEATURES)


BASE = {
    "drift": {"alpha": 0.05, "features": {"income": {"floor": 0.2}}, "warning_floors": {"psi": 0.05}},
    "notify": [],
    "escalate_after_minutes": 60,
}


@pytest.mark.parametrize(
    "change",
    [
        {"drift": {**BASE["drift"], "features": {"income": {"floor": 0.1}}}},  # a floor lowered
        {"drift": {**BASE["drift"], "alpha": 0.1}},  # more sensitive tests
        {"drift": {**BASE["drift"], "effect_floors": {"psi": 0.05}}},  # a global floor lowered
        {"drift": {**BASE["drift"], "warning_floors": {"psi": 0.05, "hellinger": 0.05}}},  # a warning added
        {"drift": {**BASE["drift"], "correction": "none"}},  # holm -> none: more detections
        {"performance": {"warning_drop": 0.01, "critical_drop": 0.03}},
        {"escalate_after_minutes": 15},
        {"schedule": {"every_minutes": 15}},
        {"notify": []},  # unchanged
    ],
)
def test_pure_tightenings_need_no_approval(change, settings):
    settings.NOTIFIERS = {"ops": {}}
    assert loosenings(_policy(**BASE), _policy(**(BASE | change))) == []


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (
            {"drift": {**BASE["drift"], "features": {"income": {"floor": 5.0}}}},
            "drift.features.income.floor: 0.2 -> 5.0",
        ),
        ({"drift": {**BASE["drift"], "features": {}}}, "drift.features.income.floor: 0.2 -> unset"),
        ({"drift": {**BASE["drift"], "alpha": 0.01}}, "drift.alpha: 0.05 -> 0.01"),
        ({"drift": {**BASE["drift"], "correction": "bonferroni"}}, "drift.correction: 'holm' -> 'bonferroni'"),
        ({"drift": {**BASE["drift"], "warning_floors": {}}}, "drift.warning_floors.psi: 0.05 -> unset"),
        ({"drift": {**BASE["drift"], "effect_floors": {"psi": 0.3}}}, "drift.effect_floors.psi: 0.1 -> 0.3"),
        ({"checks": ["feature_drift"]}, "checks:"),
        ({"window": {"hours": 48}}, "window.hours: 24 -> 48"),
        ({"reference": "previous_period"}, "reference: 'dataset' -> 'previous_period'"),
        ({"escalate_after_minutes": None}, "escalate_after_minutes: 60 -> unset"),
        ({"escalate_after_minutes": 120}, "escalate_after_minutes: 60 -> 120"),
        ({"schedule": {"every_minutes": None}}, "schedule.every_minutes: 60 -> unset"),
        ({"performance": {"warning_drop": 0.02, "critical_drop": 0.05, "mode": "relative"}}, "performance.mode"),
        ({"kpis": {"baseline": "same_period_last_week"}}, "kpis.baseline"),
    ],
)
def test_anything_laxer_or_different_needs_approval(change, found):
    assert any(line.startswith(found) for line in loosenings(_policy(**BASE), _policy(**(BASE | change))))


def test_removing_a_notifier_needs_approval_and_adding_one_does_not(settings):
    settings.NOTIFIERS = {"ops": {}, "pager": {}}
    with_ops = _policy(**(BASE | {"notify": ["ops"]}))
    assert loosenings(with_ops, _policy(**(BASE | {"notify": ["ops", "pager"]}))) == []
    assert loosenings(with_ops, _policy(**(BASE | {"notify": ["pager"]}))) == ["notify: ['ops'] -> ['pager']"]
