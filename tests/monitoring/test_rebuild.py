"""Read models are projections: rebuilt from a log that the real services wrote (registry,
ingestion, policies, runs with their diagnosis and alerts, delayed labels, people acting on
alerts, the remediation workflow), they equal the live ones column by column."""

import datetime as dt

import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from audit import projections
from audit.models import Event
from monitoring.access.services import person_deactivate, person_reactivate, role_revoke
from monitoring.alerting.domain import AlertRaised
from monitoring.alerting.models import Alert
from monitoring.alerting.services import alert_execute
from monitoring.ingestion.services import batch_ingest
from monitoring.policies.services import policy_set
from monitoring.registry import services as registry
from monitoring.remediation.services import remediation_decide, remediation_execute, remediation_request
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import ADMINISTRATOR, ALICE, approved, person
from tests.monitoring.runs.conftest import NOW, _ingest, _rows

pytestmark = pytest.mark.django_db


def _snapshot() -> dict[str, list[dict]]:
    """Every projection's rows, ordered by their natural key, without surrogate ids."""
    tables = {}
    for projection in projections.registered():
        for model in projection.models:
            rows = [{k: v for k, v in row.items() if k != "id"} for row in model.objects.values()]
            tables[model._meta.db_table] = sorted(rows, key=lambda row: repr(sorted(row.items())))
    accounts = User.objects.order_by("username").values("username", "first_name", "email", "is_active")
    tables["accounts"] = list(accounts)  # replayed too, though never wiped (their passwords are not in the log)
    return tables


@pytest.fixture
def history(credit_model, django_capture_on_commit_callbacks):
    """A model's life through the product's own services."""
    registry.model_update(name="credit", owner="risk-team", actor=ALICE, reason="handover")
    _, key = registry.api_key_issue(name="credit", label="svc", expires_at=NOW + dt.timedelta(days=30), actor=ALICE)
    key_id = key.partition(".")[0]
    registry.api_key_revoke(name="credit", key_id=key_id, actor=ALICE, reason="leaked")
    policy_set(model="credit", policy={"escalate_after_minutes": 60}, actor=ALICE, reason="page us")
    _ingest("reference", _rows(3000, start=NOW, seed=1, reference=True))
    start = NOW - dt.timedelta(hours=3)
    rows = _rows(2500, start=start, shift=0.8, new_region=0.2, seed=2)
    _ingest("predictions", rows)
    first = run_execute(model="credit", start=start, end=start + dt.timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        labels = [{"id": r["id"], "defaulted": int(r["score"] > 0.5)} for r in rows]
        batch_ingest(
            model="credit", kind="labels", body=orjson.dumps(labels), content_type="application/json", actor=ALICE
        )
    second = run_execute(model="credit", start=start, end=start + dt.timedelta(hours=2))
    alerts = list(Alert.objects.order_by("raised_seq"))
    alert_execute(str(alerts[0].alert_id), lambda a: a.acknowledge(), actor=ALICE)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    alert_execute(
        str(alerts[1].alert_id),
        lambda a: a.silence(until, dt.datetime.now(dt.UTC), max_hours=24),
        actor=ALICE,
        reason="known",
    )
    evidence = [str(Event.objects.filter(event_type=AlertRaised.type_name).first().event_id)]
    approver = person("approver", "risk_approver")
    withdrawn = remediation_request(
        model="credit",
        kind="threshold_change",
        parameters={"policy": {"escalate_after_minutes": 30}},
        evidence=evidence,
        actor=ALICE,
        reason="page sooner",
    )
    remediation_execute(withdrawn, lambda r: r.cancel("alice"), actor=ALICE, reason="not needed")
    approved("credit", "promote_challenger", {"version": "1.1"}, reason="release")
    role_revoke(username="approver0", role="risk_approver", actor=ADMINISTRATOR, reason="moved team")
    person_deactivate(username="requester", actor=ADMINISTRATOR, reason="left")
    person_reactivate(username="requester", actor=ADMINISTRATOR, reason="back")
    with django_capture_on_commit_callbacks(execute=True):
        request_id = remediation_request(
            model="credit",
            kind="rollback",
            parameters={"to_version": "1.0"},
            evidence=evidence,
            actor=ALICE,
            reason="x",
        )
        remediation_decide(
            request_id=request_id, decision="approve", user=approver, password="s3cret-pass", reason="ok"
        )
    return first, second


def test_rebuilt_read_models_equal_the_live_ones_column_by_column(history):
    live = _snapshot()
    assert all(
        live[table] for table in ("monitoring_run", "monitoring_alert", "monitoring_remediation", "monitoring_batch")
    )
    assert any(row["realized"] for row in live["monitoring_run"])
    assert all(row["dedupe_key"] for row in live["monitoring_alert"])
    User.objects.filter(username="requester").update(is_active=False, first_name="tampered")
    call_command("rebuild_projections", verbosity=0)
    assert _snapshot() == live


def test_after_a_rebuild_a_later_run_updates_the_open_alerts_instead_of_duplicating_them(history):
    before = Alert.objects.exclude(status="resolved").count()
    raised = Event.objects.filter(event_type=AlertRaised.type_name).count()
    projections.rebuild()
    run_execute(model="credit", start=NOW - dt.timedelta(hours=3), end=NOW)
    assert Event.objects.filter(event_type=AlertRaised.type_name).count() == raised
    assert Alert.objects.exclude(status="resolved").count() == before
