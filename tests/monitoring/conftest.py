"""Fixtures for the monitoring API: people in each role, a registered model, its reporting key."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.store import Actor
from monitoring.access.services import person_register
from monitoring.registry import services as registry

ROLES = ("ml_engineer", "risk_approver", "compliance_officer", "auditor", "admin")
ALICE = Actor("user", "alice", "Alice Engineer")
SCHEMA = {
    "numerical": ["income", "debt_ratio"],
    "categorical": ["region"],
    "id": "id",
    "timestamp": "timestamp",
    "prediction": "score",
    "target": "defaulted",
    "segments": ["region", "channel"],
}


ADMINISTRATOR = Actor("user", "cli:root", "root (command line)")
PASSWORD = "s3cret-pass"


def person(name: str, *roles: str) -> User:
    """A person registered the product's way: signed events for the account and each role."""
    person_register(
        username=name, full_name=name.title(), password=PASSWORD, roles=roles, actor=ADMINISTRATOR, reason="test"
    )
    return User.objects.get(username=name)


def approved(model: str, kind: str, parameters: dict, *, reason: str = "approved in a test") -> str:
    """A change carried out the only way it may be: requested by an engineer, approved by as many
    risk approvers as its kind needs (password re-entered), then executed. Returns the request id."""
    from django.conf import settings

    from monitoring.remediation.domain import RemediationState
    from monitoring.remediation.services import (
        remediation_decide,
        remediation_load,
        remediation_request,
        remediation_run,
    )

    requester = User.objects.filter(username="requester").first() or person("requester", "ml_engineer")
    request_id = remediation_request(
        model=model,
        kind=kind,
        parameters=parameters,
        evidence=[],
        actor=Actor("user", requester.username, requester.get_full_name()),
        reason=reason,
    )
    for index in range(settings.REMEDIATION_APPROVALS.get(kind, 1)):
        name = f"approver{index}"
        approver = User.objects.filter(username=name).first() or person(name, "risk_approver")
        remediation_decide(request_id=request_id, decision="approve", user=approver, password=PASSWORD, reason=reason)
    if remediation_load(request_id).state is RemediationState.APPROVED:  # not yet run after a commit
        remediation_run(request_id)
    return request_id


def policy_in_force(model: str, policy: dict, *, reason: str = "set in a test") -> None:
    """The policy the test needs: set at once when it is a pure tightening, else approved first."""
    from monitoring.policies.services import policy_set
    from monitoring.remediation.kinds import ApprovalRequired

    try:
        policy_set(model=model, policy=policy, actor=ALICE, reason=reason)
    except ApprovalRequired:
        approved(model, "threshold_change", {"policy": policy}, reason=reason)


def client_for(user: User | None = None, key: str | None = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    if key is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def people(db) -> dict[str, User]:
    return {role: person(f"{role}_user", role) for role in ROLES} | {"nobody": person("nobody")}


@pytest.fixture
def credit_model(db) -> str:
    registry.model_register(name="credit", task="binary_classification", owner="alice", data_schema=SCHEMA, actor=ALICE)
    registry.version_register(name="credit", version="1.0", artifact_uri="s3://models/credit/1.0", actor=ALICE)
    registry.version_register(name="credit", version="1.1", artifact_uri="s3://models/credit/1.1", actor=ALICE)
    registry.deployment_change(name="credit", action="promote", version="1.0", actor=ALICE, reason="first release")
    return "credit"


@pytest.fixture
def credit_key(credit_model) -> str:
    return registry.api_key_issue(name=credit_model, label="scoring service", expires_at=None, actor=ALICE)[1]
