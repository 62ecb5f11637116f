"""After the hostile cases, on a log that commits for real: every refused request left nothing,
what was accepted is signed and chained, and `audit_verify` passes over the whole log."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from audit.checkpoints import checkpoint_create
from audit.models import Event
from monitoring.alerting.heartbeat import heartbeats_check
from monitoring.registry import services as registry
from monitoring.runs.services import run_execute, runs_fail_stalled
from tests.monitoring.conftest import ALICE, SCHEMA, client_for, policy_in_force
from tests.monitoring.hostile.conftest import stored
from tests.monitoring.hostile.test_ingestion import CASES
from tests.monitoring.ingestion.test_ingestion import post
from tests.monitoring.runs.conftest import NOW, _ingest, _rows


@pytest.fixture
def credit_key_committed(committed_log):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    registry.version_register(name="credit", version="1.0", artifact_uri="s3://1", actor=ALICE)
    return registry.api_key_issue(name="credit", label="svc", expires_at=None, actor=ALICE)[1]


def test_the_log_verifies_after_every_hostile_case(credit_key_committed, settings):
    client = client_for(key=credit_key_committed)
    before = stored()
    for body, content_type, *_ in CASES.values():
        assert post(client, "predictions", body, content_type).status_code == 400
    assert stored() == before
    policy_in_force("credit", {"heartbeat": {"expected_every_minutes": 5}}, reason="watch it")
    run_execute(model="credit", start=NOW - dt.timedelta(hours=3), end=NOW)  # no reference: fails, alerts
    heartbeats_check(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    rows = _rows(1000, start=NOW - dt.timedelta(hours=2), seed=2)
    rows[10]["income"] = 1e308
    _ingest("predictions", rows)
    run_execute(model="credit", start=NOW - dt.timedelta(hours=2), end=NOW)
    runs_fail_stalled(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    checkpoint_create(publish=False)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().startswith("OK: "), out.getvalue()
    verified = int(out.getvalue().split()[1])
    assert verified == Event.objects.count() > 10
    assert Event.objects.filter(event_type="monitoring.RunCompleted").exists()
