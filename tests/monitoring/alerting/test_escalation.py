"""Beat escalates each model's unacknowledged alerts after its own policy's delay, and only those."""

import datetime as dt

import pytest

from audit.models import Event
from monitoring.alerting.domain import AlertEscalated
from monitoring.alerting.models import Alert
from monitoring.alerting.services import alerts_escalate_by_policy, alerts_from_run
from monitoring.alerting.tasks import escalate_alerts
from monitoring.policies.services import policy_set
from monitoring.registry import services as registry
from monitoring.runs.domain import Check
from tests.monitoring.conftest import ALICE, SCHEMA

pytestmark = pytest.mark.django_db


def _failing(model: str) -> None:
    check = Check(check="feature_drift", feature="income", metric="psi", value=0.4, threshold=0.1, status="critical")
    alerts_from_run(model=model, run_id=f"{model}-run", checks=[check], actor=ALICE)


def test_each_model_escalates_after_its_own_policy_and_the_beat_task_runs(credit_model):
    registry.model_register(name="churn", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    policy_set(model="credit", policy={"escalate_after_minutes": 30}, actor=ALICE, reason="page after 30 min")
    _failing("credit")
    _failing("churn")  # its policy never escalates
    assert escalate_alerts.apply().get() == 0  # nothing is due yet, and the task itself runs
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
    escalated = alerts_escalate_by_policy(now=later)
    assert [e.type for e in escalated] == [AlertEscalated.type_name]
    assert escalated[0].payload["unacknowledged_minutes"] == 30
    assert Alert.objects.get(model_name="credit").escalated_at is not None
    assert Alert.objects.get(model_name="churn").escalated_at is None
    assert alerts_escalate_by_policy(now=later) == []  # once
    assert Event.objects.filter(event_type=AlertEscalated.type_name).count() == 1
