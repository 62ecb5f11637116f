"""Fixtures for the monitoring API: people in each role, a registered model, its reporting key."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from audit.store import Actor
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


def person(name: str, *roles: str) -> User:
    user = User.objects.create_user(name, password="s3cret-pass", first_name=name.title())
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


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
