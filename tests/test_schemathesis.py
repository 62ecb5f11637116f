"""Schemathesis against the live server: generated requests for every operation in the
OpenAPI schema (a bounded number each), authenticated as an admin; none may get a 5xx."""

from __future__ import annotations

import base64
import logging

import pytest
import schemathesis
from django.contrib.auth.models import Group, User
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error

from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, SCHEMA

PASSWORD = "s3cret-pass"
EXAMPLES = 15  # per operation: bounded, so CI stays quick


@pytest.fixture
def api_schema(running_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast Basic auth
    admin = User.objects.create_user("admin_user", password=PASSWORD)
    admin.groups.add(Group.objects.get(name="admin"))
    everyone = User.objects.create_user("every_role", password=PASSWORD)  # reaches every operation's logic
    everyone.groups.add(*Group.objects.filter(name__in=["ml_engineer", "risk_approver", "auditor", "admin"]))
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    registry.version_register(name="credit", version="1.0", artifact_uri="s3://1", actor=ALICE)
    registry.deployment_change(name="credit", action="promote", version="1.0", actor=ALICE, reason="first")
    return schemathesis.openapi.from_url(f"{running_server}/api/v1/schema/")


def test_no_request_gets_a_server_error(api_schema):
    token = base64.b64encode(f"admin_user:{PASSWORD}".encode()).decode()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case):
            case.call_and_validate(headers={"Authorization": f"Basic {token}"}, checks=[not_a_server_error])

        no_server_error()


def test_no_sequence_of_requests_gets_a_server_error(api_schema, caplog):
    """Stateful: sequences of calls chained by the links schemathesis infers from the schema
    (create a thing, then read, change or act on it), as a person holding every role."""
    token = base64.b64encode(f"every_role:{PASSWORD}".encode()).decode()

    class Sequences(api_schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Basic {token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error])

    # The sequences run against one live server whose state outlives each of them, and
    # schemathesis decides which rules may start a sequence from what earlier ones created. Now
    # and then Hypothesis sees a choice it replays come out differently and stops with
    # FlakyStrategyDefinition (seen once, on 2026-12-07, with no server error logged): the
    # generator's inconsistency, not a finding. It gets one more run. A second inconsistency
    # fails the test, and so does any server error (5xx) logged in either run, so that the
    # retry cannot hide one.
    caplog.set_level(logging.ERROR, logger="django.request")
    for attempt in (1, 2):
        try:
            Sequences.run(
                settings=settings(
                    max_examples=EXAMPLES * 2,
                    stateful_step_count=6,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                )
            )
            break
        except FlakyStrategyDefinition:
            if attempt == 2:
                raise
    server_errors = [
        record.getMessage()
        for record in caplog.records
        if record.name == "django.request" and record.levelno >= logging.ERROR
    ]
    assert not server_errors, server_errors
