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
        {"volume": {"warning_share": 0.8, "critical_share": 0.3}},  # a smaller drop is caught
        {"heartbeat": {"expected_every_minutes": 30}},  # watched from now on
        {"drift": {**BASE["drift"], "multivariate": True}},  # a multivariate check added
        {"estimation": {"classification_metrics": ["roc_auc", "f1"]}},  # an estimated metric added
        {"estimation": {"sigmas": 2.5}},  # a narrower range of chance
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
        (
            {"estimation": {"classification_metrics": ["f1"]}},
            "estimation.classification_metrics: ['roc_auc'] -> ['f1']",
        ),
        ({"estimation": {"sigmas": 4}}, "estimation.sigmas: 3.0 -> 4"),
        ({"ranking": {"k": 5}}, "ranking.k: 10 -> 5"),
        ({"performance": {"warning_drop": 0.02, "critical_drop": 0.05, "mode": "relative"}}, "performance.mode"),
        ({"kpis": {"baseline": "same_period_last_week"}}, "kpis.baseline"),
        ({"volume": {"warning_share": 0.2}}, "volume.warning_share: 0.5 -> 0.2"),
        ({"volume": {"history_windows": 30}}, "volume.history_windows: 7 -> 30"),
    ],
)
def test_anything_laxer_or_different_needs_approval(change, found):
    assert any(line.startswith(found) for line in loosenings(_policy(**BASE), _policy(**(BASE | change))))


def test_removing_a_notifier_needs_approval_and_adding_one_does_not(settings):
    settings.NOTIFIERS = {"ops": {}, "pager": {}}
    with_ops = _policy(**(BASE | {"notify": ["ops"]}))
    assert loosenings(with_ops, _policy(**(BASE | {"notify": ["ops", "pager"]}))) == []
    assert loosenings(with_ops, _policy(**(BASE | {"notify": ["pager"]}))) == ["notify: ['ops'] -> ['pager']"]


def test_a_heartbeat_made_later_or_removed_needs_approval():
    watched = _policy(**BASE, heartbeat={"expected_every_minutes": 15})
    assert loosenings(watched, _policy(**BASE, heartbeat={"expected_every_minutes": 5})) == []
    assert loosenings(watched, _policy(**BASE, heartbeat={"expected_every_minutes": 60})) == [
        "heartbeat.expected_every_minutes: 15 -> 60"
    ]
    assert loosenings(watched, _policy(**BASE)) == ["heartbeat.expected_every_minutes: 15 -> unset"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"volume": {"warning_share": 0.1, "critical_share": 0.5}}, "0 ≤ critical ≤ warning ≤ 1"),
        ({"volume": {"history_windows": 0}}, "history_windows must be a whole number from 1 to 60"),
        ({"volume": {"weekly": True}}, "volume: unknown key 'weekly'"),
        ({"heartbeat": {"expected_every_minutes": 0}}, "heartbeat must be"),
        ({"heartbeat": {"expected_every_minutes": "hourly"}}, "heartbeat must be"),
    ],
)
def test_bad_volume_and_heartbeat_sections_are_refused(section, message):
    from monitoring.policies.document import PolicyError

    with pytest.raises(PolicyError) as refused:
        complete_policy(section, FEATURES)
    assert message in str(refused.value)
