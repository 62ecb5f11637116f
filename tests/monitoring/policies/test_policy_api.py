"""A per-feature or per-segment override is judged, through the API, against the value it
replaces: set above it (or removed below it) it mutes alerts and waits for approval, nothing
written; set below it, it applies at once."""

import pytest

from audit.models import Event
from monitoring.policies.document import drift_policy
from monitoring.policies.services import policy_load
from tests.monitoring.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/credit/policies/"


def _put(people, policy: dict, reason: str = "a change"):
    return client_for(people["ml_engineer"]).put(URL, {"policy": policy, "reason": reason}, format="json")


def _policy_events() -> int:
    return Event.objects.filter(stream_type="policy").count()


def test_a_per_feature_floor_above_the_global_one_needs_approval(credit_model, people):
    """income falls back to the wasserstein_normed floor (0.1): a floor of 1000 mutes its drift."""
    answer = _put(people, {"drift": {"features": {"income": {"floor": 1000.0}}}}, "tighter, honest")
    assert answer.status_code == 409, answer.json()
    assert answer.json()["approval"]["kind"] == "threshold_change"
    assert (
        "drift.features.income.floor: unset (drift.effect_floors.wasserstein_normed: 0.1) -> 1000.0"
        in (answer.json()["detail"])
    )
    assert "income" not in drift_policy(policy_load("credit").policy).per_feature_floor
    assert _policy_events() == 0


def test_a_per_feature_warning_floor_above_the_global_one_needs_approval(credit_model, people):
    first = _put(people, {"drift": {"warning_floors": {"wasserstein_normed": 0.01}}}, "add a warning")
    assert first.status_code == 200, first.json()
    answer = _put(
        people,
        {"drift": {"warning_floors": {"wasserstein_normed": 0.01}, "features": {"income": {"warning_floor": 1000.0}}}},
    )
    assert answer.status_code == 409, answer.json()
    assert "drift.features.income.warning_floor" in answer.json()["detail"]
    assert _policy_events() == 1


def test_a_segment_floor_above_the_default_needs_approval(credit_model, people):
    """segments.floors["region=north"] replaces segments.prediction_drift_floor (0.1)."""
    answer = _put(people, {"segments": {"floors": {"region=north": 1000.0}}})
    assert answer.status_code == 409, answer.json()
    assert "segments.floors.region=north" in answer.json()["detail"]
    assert _policy_events() == 0


def test_removing_a_low_override_needs_approval(credit_model, people):
    assert _put(people, {"segments": {"floors": {"region=north": 0.05}}}).status_code == 200
    answer = _put(people, {})
    assert answer.status_code == 409, answer.json()
    assert policy_load("credit").policy["segments"]["floors"] == {"region=north": 0.05}


@pytest.mark.parametrize(
    "policy",
    [
        {"drift": {"features": {"income": {"floor": 0.05}}}},  # under wasserstein_normed's 0.1
        {"drift": {"features": {"region": {"warning_floor": 0.5}}}},  # a warning where there was none
        {"drift": {"warning_floors": {"psi": 0.05}, "features": {"region": {"warning_floor": 0.02}}}},
        {"segments": {"floors": {"region=north": 0.05}}},  # under prediction_drift_floor's 0.1
    ],
)
def test_an_override_under_the_value_it_replaces_applies_at_once(credit_model, people, policy):
    answer = _put(people, policy, "watch closer")
    assert answer.status_code == 200, answer.json()
    assert policy_load("credit").version == 1
