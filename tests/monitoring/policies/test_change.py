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
    assert loosenings(_policy(**BASE), _policy(**(BASE | change)), features=FEATURES) == []


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (
            {"drift": {**BASE["drift"], "features": {"income": {"floor": 5.0}}}},
            "drift.features.income.floor: 0.2 -> 5.0",
        ),
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
    laxer = loosenings(_policy(**BASE), _policy(**(BASE | change)), features=FEATURES)
    assert any(line.startswith(found) for line in laxer)


OVERRIDES_JUDGED_BY_WHAT_THEY_REPLACE = [
    # (old drift/segments sections, new ones, the loosening found or None for a pure tightening)
    (
        {"drift": {}},
        {"drift": {"features": {"income": {"floor": 1000.0}}}},
        "drift.features.income.floor: unset (drift.effect_floors.wasserstein_normed: 0.1) -> 1000.0",
    ),
    ({"drift": {}}, {"drift": {"features": {"income": {"floor": 0.05}}}}, None),
    (  # region is categorical: its floor replaces psi's, not wasserstein's
        {"drift": {"effect_floors": {"psi": 0.3}}},
        {"drift": {"effect_floors": {"psi": 0.3}, "features": {"region": {"floor": 0.2}}}},
        None,
    ),
    (  # a feature's own effect measure decides what its floor replaces
        {"drift": {"effect_floors": {"psi": 0.02}, "features": {"income": {"test": "ks", "effect": "psi"}}}},
        {
            "drift": {
                "effect_floors": {"psi": 0.02},
                "features": {"income": {"test": "ks", "effect": "psi", "floor": 0.05}},
            }
        },
        "drift.features.income.floor: unset (drift.effect_floors.psi: 0.02) -> 0.05",
    ),
    (  # the global lowered and the old value kept for one feature: nothing laxer
        {"drift": {}},
        {"drift": {"effect_floors": {"wasserstein_normed": 0.05}, "features": {"income": {"floor": 0.1}}}},
        None,
    ),
    (  # removing an override: compared with what it falls back to in the new policy
        {"drift": {"features": {"income": {"floor": 0.2}}}},
        {"drift": {}},
        None,
    ),
    (
        {"drift": {"features": {"income": {"floor": 0.05}}}},
        {"drift": {"effect_floors": {"wasserstein_normed": 0.08}}},
        "drift.features.income.floor: 0.05 -> unset (drift.effect_floors.wasserstein_normed: 0.08)",
    ),
    (
        {"drift": {"warning_floors": {"psi": 0.05}}},
        {"drift": {"warning_floors": {"psi": 0.05}, "features": {"region": {"warning_floor": 1000.0}}}},
        "drift.features.region.warning_floor: unset (drift.warning_floors.psi: 0.05) -> 1000.0",
    ),
    (
        {"drift": {"warning_floors": {"psi": 0.05}}},
        {"drift": {"warning_floors": {"psi": 0.05}, "features": {"region": {"warning_floor": 0.02}}}},
        None,
    ),
    (  # a warning where there was none at all is more watchful, whatever its floor
        {"drift": {"warning_floors": {"psi": 0.05}}},
        {"drift": {"warning_floors": {"psi": 0.05}, "features": {"income": {"warning_floor": 1000.0}}}},
        None,
    ),
    (  # and removing it again, with no warning floor to fall back to, ends the warnings
        {"drift": {"features": {"income": {"warning_floor": 0.05}}}},
        {"drift": {}},
        "drift.features.income.warning_floor: 0.05 -> unset (drift.warning_floors.wasserstein_normed: unset)",
    ),
    (
        {"drift": {"features": {"income": {"warning_floor": 0.05}}}},
        {"drift": {"warning_floors": {"wasserstein_normed": 0.03}}},
        None,
    ),
    (
        {},
        {"segments": {"floors": {"region=north": 1000.0}}},
        "segments.floors.region=north: unset (segments.prediction_drift_floor: 0.1) -> 1000.0",
    ),
    ({}, {"segments": {"floors": {"region=north": 0.05}}}, None),
    (
        {"segments": {"floors": {"region=north": 0.05}}},
        {},
        "segments.floors.region=north: 0.05 -> unset (segments.prediction_drift_floor: 0.1)",
    ),
    (
        {"segments": {"floors": {"region=north": 0.05}}},
        {"segments": {"prediction_drift_floor": 0.04}},
        None,
    ),
]


@pytest.mark.parametrize(("old", "new", "found"), OVERRIDES_JUDGED_BY_WHAT_THEY_REPLACE)
def test_an_override_is_judged_against_the_value_it_replaces(old, new, found):
    laxer = loosenings(_policy(**old), _policy(**new), features=FEATURES)
    assert laxer == ([found] if found else [])


def test_the_diff_shows_what_an_unset_override_falls_back_to():
    from monitoring.policies.change import policy_diff

    diff = policy_diff(_policy(), _policy(segments={"floors": {"region=north": 0.3}}), features=FEATURES)
    assert diff == [("segments.floors.region=north", "unset (segments.prediction_drift_floor: 0.1)", "0.3", False)]


def test_removing_a_notifier_needs_approval_and_adding_one_does_not(settings):
    settings.NOTIFIERS = {"ops": {}, "pager": {}}
    with_ops = _policy(**(BASE | {"notify": ["ops"]}))
    assert loosenings(with_ops, _policy(**(BASE | {"notify": ["ops", "pager"]})), features=FEATURES) == []
    assert loosenings(with_ops, _policy(**(BASE | {"notify": ["pager"]})), features=FEATURES) == [
        "notify: ['ops'] -> ['pager']"
    ]


def test_a_heartbeat_made_later_or_removed_needs_approval():
    watched = _policy(**BASE, heartbeat={"expected_every_minutes": 15})
    assert loosenings(watched, _policy(**BASE, heartbeat={"expected_every_minutes": 5}), features=FEATURES) == []
    assert loosenings(watched, _policy(**BASE, heartbeat={"expected_every_minutes": 60}), features=FEATURES) == [
        "heartbeat.expected_every_minutes: 15 -> 60"
    ]
    assert loosenings(watched, _policy(**BASE), features=FEATURES) == ["heartbeat.expected_every_minutes: 15 -> unset"]


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
