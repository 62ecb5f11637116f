"""No change of what serves or what alerts without its approval: every path tried as a hostile
insider would, through the API and through the services themselves, and each refused with the
approval it needs, nothing written; then the same change made the one way it may be."""

import datetime as dt

import pytest
from django.contrib.auth.models import User

from audit.models import Event
from monitoring.access.services import role_grant
from monitoring.alerting.models import Alert
from monitoring.alerting.services import alert_execute, alerts_from_run
from monitoring.policies.services import policy_load, policy_set
from monitoring.registry import services as registry
from monitoring.registry.models import Deployment, ModelVersion, RegisteredModel
from monitoring.remediation.kinds import ApprovalRequired
from monitoring.runs.domain import Check
from tests.monitoring.conftest import ADMINISTRATOR, ALICE, PASSWORD, SCHEMA, approved, client_for, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def serving(credit_model):
    """1.0 served first; 1.1 is the champion now, promoted through an approved request."""
    approved("credit", "promote_challenger", {"version": "1.1"})
    return "credit"


def _unchanged():
    return list(Event.objects.order_by("seq").values_list("seq", flat=True))


API_PATHS = [
    (
        "post",
        "/api/v1/models/credit/deployment/",
        {"action": "promote", "version": "1.0", "reason": "x"},
        "promote_challenger",
    ),
    ("post", "/api/v1/models/credit/deployment/", {"action": "rollback", "version": "1.0", "reason": "x"}, "rollback"),
    (
        "post",
        "/api/v1/models/credit/deployment/",
        {"action": "challenger", "version": "1.0", "reason": "x"},
        "set_challenger",
    ),
    (
        "post",
        "/api/v1/models/credit/deployment/",
        {"action": "canary", "version": "1.0", "canary_share": 0.1, "reason": "x"},
        "canary_start",
    ),
    ("post", "/api/v1/models/credit/versions/1.0/retire/", {"reason": "x"}, "retire_version"),
    ("post", "/api/v1/models/credit/retire/", {"reason": "x"}, "retire_model"),
    (
        "patch",
        "/api/v1/models/credit/",
        {"data_schema": {**SCHEMA, "numerical": ["income"]}, "reason": "x"},
        "schema_change",
    ),
    (
        "put",
        "/api/v1/models/credit/policies/",
        {"policy": {"drift": {"effect_floors": {"wasserstein_normed": 5.0}}}, "reason": "x"},
        "threshold_change",
    ),
    (
        "put",
        "/api/v1/models/credit/policies/",
        {"policy": {"checks": ["data_quality"]}, "reason": "x"},
        "threshold_change",
    ),
    ("put", "/api/v1/models/credit/policies/", {"policy": {"window": {"hours": 1}}, "reason": "x"}, "threshold_change"),
]


@pytest.mark.parametrize(("method", "url", "body", "kind"), API_PATHS, ids=[f"{p[3]} {p[1]}" for p in API_PATHS])
def test_an_engineer_alone_changes_nothing_that_serves_or_alerts(serving, people, method, url, body, kind):
    before = _unchanged()
    answer = getattr(client_for(people["ml_engineer"]), method)(url, body, format="json")
    assert answer.status_code == 409, answer.content
    assert (
        answer.json()["approval"]["kind"] == kind and "needs an approved remediation request" in answer.json()["detail"]
    )
    assert _unchanged() == before
    assert Deployment.objects.get(model_id="credit").champion == "1.1"


def test_the_services_themselves_refuse_without_an_approval_and_with_a_false_one(serving, people):
    attempts = [
        lambda **a: registry.deployment_change(
            name="credit", action="rollback", version="1.0", actor=ALICE, reason="x", **a
        ),
        lambda **a: registry.version_retire(name="credit", version="1.0", actor=ALICE, reason="x", **a),
        lambda **a: registry.model_retire(name="credit", actor=ALICE, reason="x", **a),
        lambda **a: policy_set(model="credit", policy={"checks": []}, actor=ALICE, reason="x", **a),
    ]
    done = Event.objects.filter(stream_type="remediation").values_list("stream_id", flat=True).first()  # succeeded
    before = _unchanged()
    for attempt in attempts:
        with pytest.raises(ApprovalRequired):
            attempt()
        with pytest.raises(ApprovalRequired, match="no approved"):
            attempt(approval=done)  # a request that exists but is not this change being executed
        with pytest.raises(ApprovalRequired, match="no approved"):
            attempt(approval="6f1c3a52-0000-4000-8000-000000000000")
    assert _unchanged() == before


def test_a_pure_tightening_applies_at_once_with_its_reason(serving, people):
    answer = client_for(people["ml_engineer"]).put(
        "/api/v1/models/credit/policies/",
        {"policy": {"drift": {"features": {"income": {"floor": 0.05}}}}, "reason": "income matters most"},
        format="json",
    )
    assert answer.status_code == 200 and answer.json()["version"] == 1
    assert Event.objects.get(event_type="monitoring.PolicySet").actor_id == "ml_engineer_user"


def test_admins_and_superusers_neither_approve_nor_change_production(serving, people):
    admin = client_for(people["admin"])
    body = {"action": "rollback", "version": "1.0", "reason": "AUC fell"}
    assert admin.post("/api/v1/models/credit/deployment/", body, format="json").status_code == 403
    request = {"model": "credit", "kind": "rollback", "parameters": {"to_version": "1.0"}, "reason": "x"}
    assert admin.post("/api/v1/remediations/", request, format="json").status_code == 403
    asked = client_for(people["ml_engineer"]).post("/api/v1/remediations/", request, format="json").json()
    root = client_for(User.objects.create_superuser("root", password="root-password-1"))
    decision = {"password": "root-password-1", "reason": "I am root"}
    assert root.post(f"/api/v1/remediations/{asked['request_id']}/approve/", decision).status_code == 403
    assert (
        admin.post(
            f"/api/v1/remediations/{asked['request_id']}/approve/", {"password": "s3cret-pass", "reason": "x"}
        ).status_code
        == 403
    )
    assert Deployment.objects.get(model_id="credit").champion == "1.1"


def test_a_risk_approver_files_break_glass_rollbacks_only(serving, people):
    approver = client_for(people["risk_approver"])
    request = {"model": "credit", "kind": "rollback", "parameters": {"to_version": "1.0"}, "reason": "x"}
    ordinary = approver.post("/api/v1/remediations/", request, format="json")
    assert ordinary.status_code == 403 and "break-glass" in ordinary.json()["detail"]
    glass = {**request, "break_glass": True, "password": PASSWORD}
    assert approver.post("/api/v1/remediations/", glass, format="json").status_code == 201


def test_a_person_with_both_roles_still_needs_a_second_person(serving):
    both = person("both", "ml_engineer")
    role_grant(username="both", role="risk_approver", actor=ADMINISTRATOR, reason="covers two roles")
    client = client_for(both)
    request = {"model": "credit", "kind": "rollback", "parameters": {"to_version": "1.0"}, "reason": "x"}
    asked = client.post("/api/v1/remediations/", request, format="json").json()
    own = client.post(
        f"/api/v1/remediations/{asked['request_id']}/approve/", {"password": "s3cret-pass", "reason": "x"}
    )
    assert own.status_code == 400 and "own request" in own.json()["detail"]


def test_a_silence_longer_than_a_day_is_accepting_a_risk(credit_model, people):
    check = Check(check="feature_drift", feature="income", metric="psi", value=0.4, status="critical")
    alerts_from_run(model="credit", run_id="r1", checks=[check], actor=ALICE)
    alert_id = str(Alert.objects.get().alert_id)
    engineer = client_for(people["ml_engineer"])
    year = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()
    long = engineer.post(f"/api/v1/alerts/{alert_id}/silence/", {"until": year, "reason": "noisy"}, format="json")
    assert long.status_code == 409 and long.json()["approval"]["kind"] == "accept_risk"
    hours = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=4)).isoformat()
    assert engineer.post(f"/api/v1/alerts/{alert_id}/silence/", {"until": hours, "reason": "deploy"}).status_code == 200
    with pytest.raises(ApprovalRequired):
        alert_execute(
            alert_id,
            lambda a: a.silence(dt.datetime.now(dt.UTC) + dt.timedelta(days=9), dt.datetime.now(dt.UTC), max_hours=24),
            actor=ALICE,
        )


def test_approved_changes_take_effect_and_say_which_request_made_them(serving):
    request_id = approved("credit", "retire_version", {"version": "1.0"})
    assert ModelVersion.objects.get(model_id="credit", version="1.0").retired
    retired = Event.objects.get(event_type="monitoring.ModelVersionRetired")
    cause = Event.objects.get(event_id=retired.causation_id)
    assert (cause.stream_type, cause.stream_id, retired.actor_id) == ("remediation", request_id, "remediation-executor")
    approved("credit", "schema_change", {"data_schema": {**SCHEMA, "numerical": ["income"]}})
    assert RegisteredModel.objects.get(name="credit").schema_version == 2
    approved("credit", "threshold_change", {"policy": {"checks": ["data_quality"]}})
    assert policy_load("credit").policy["checks"] == ["data_quality"]
    approved("credit", "retire_model", {})
    assert RegisteredModel.objects.get(name="credit").retired


def test_the_model_says_how_many_approvals_each_change_needs(credit_model, people):
    shown = client_for(people["auditor"]).get("/api/v1/models/credit/").json()
    assert shown["change_control"]["threshold_change"] == 2 and shown["change_control"]["rollback"] == 1
    assert shown["registered_event_id"] == str(Event.objects.get(event_type="monitoring.ModelRegistered").event_id)
