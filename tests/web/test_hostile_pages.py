"""The pages as a hostile person drives them, by hand-written requests rather than the forms:
what the API refuses, the page refuses too, and nothing a person types answers 500."""

from __future__ import annotations

import pytest

from audit.models import Event
from monitoring.remediation.models import Remediation
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import PASSWORD, approved
from tests.monitoring.runs.conftest import reported  # noqa: F401 - the fixture
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def drifted(people, reported):  # noqa: F811 - the fixture imported above
    start, end = reported
    return run_execute(model="credit", start=start, end=end).run_id


@pytest.fixture
def requested(people, drifted) -> Remediation:
    """A rollback an engineer requested from the run's page, waiting for a decision."""
    approved("credit", "promote_challenger", {"version": "1.1"})
    answer = signed_in(people["ml_engineer"]).post(
        "/remediations/new/",
        {"run": str(drifted), "kind": "rollback", "to_version": "1.0", "reason": "back to 1.0"},
    )
    assert answer.status_code == 302
    return Remediation.objects.get(kind="rollback")


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_request_without_a_reason_is_refused_as_the_api_refuses_it(people, drifted, reason):
    approved("credit", "promote_challenger", {"version": "1.1"})
    before = Event.objects.count()
    answer = signed_in(people["ml_engineer"]).post(
        "/remediations/new/", {"run": str(drifted), "kind": "rollback", "to_version": "1.0", "reason": reason}
    )
    assert answer.status_code == 400 and "reason" in answer.content.decode()
    assert Event.objects.count() == before and not Remediation.objects.filter(kind="rollback").exists()


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_decision_without_a_reason_is_not_signed(people, requested, action):
    before = Event.objects.count()
    answer = signed_in(people["risk_approver"]).post(
        f"/remediations/{requested.request_id}/", {"action": action, "password": PASSWORD, "reason": " "}
    )
    assert answer.status_code == 400 and "reason" in answer.content.decode()
    requested.refresh_from_db()
    assert requested.state == "requested" and Event.objects.count() == before


def test_a_withdrawal_without_a_reason_is_refused(people, requested):
    before = Event.objects.count()
    answer = signed_in(people["ml_engineer"]).post(
        f"/remediations/{requested.request_id}/", {"action": "cancel", "reason": ""}
    )
    assert answer.status_code == 400
    requested.refresh_from_db()
    assert requested.state == "requested" and Event.objects.count() == before


def test_a_policy_change_without_a_reason_is_refused(people, drifted):
    from monitoring.policies.services import policy_load

    policy = policy_load("credit").policy
    before = Event.objects.count()
    answer = signed_in(people["ml_engineer"]).post(
        "/models/credit/policy/", {"policy": __import__("json").dumps(policy), "reason": "", "action": "submit"}
    )
    assert answer.status_code == 400 and "reason" in answer.content.decode()
    assert Event.objects.count() == before
