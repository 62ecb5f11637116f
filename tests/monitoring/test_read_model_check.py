"""Read models checked against the log (audit/read_model_check.py): every projection replayed into
a scratch schema and compared; a forged, changed or deleted row is named by table and key, raised
as an integrity failure and recorded as a signed event, once."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.models import Event, LogVerification
from audit.read_model_check import read_models_diverged
from audit.tasks import check_read_models
from monitoring.alerting.models import Alert
from monitoring.alerting.services import Finding, alert_raise
from monitoring.registry.models import Deployment, ModelApiKey
from tests.monitoring.conftest import ALICE, people  # noqa: F401 - people is a fixture

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    tables = ["monitoring_deployment", "monitoring_modelapikey", "monitoring_alert", "auth_user_groups"]
    with connection.cursor() as cursor:
        found = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")
            found[table] = cursor.fetchone()[0]
    return found


@pytest.fixture
def history(credit_key, people):  # noqa: F811
    from monitoring.runs.domain import Level

    finding = Finding("feature_drift", "income", Level.CRITICAL, "drift in income", feature="income")
    alert_raise(model="credit", finding=finding, actor=ALICE, run_id="r1")
    return credit_key


def test_read_models_that_follow_the_log_give_no_difference_and_nothing_live_is_written(history):
    before = _counts()
    assert read_models_diverged() == []
    assert _counts() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE 'monitoring%%'")
        assert cursor.fetchone() == (0,)  # the scratch tables went with the check's transaction
        cursor.execute("SHOW search_path")
        assert "pg_temp" not in cursor.fetchone()[0]


def test_a_changed_pointer_a_forged_key_and_a_deleted_alert_are_named(history):
    Deployment.objects.filter(model_id="credit").update(champion="1.1")
    forged = ModelApiKey.objects.get()
    forged.pk, forged.prefix, forged.hashed_key, forged.name = "Forged12.x", "Forged12", "sha512$$x", "forged"
    forged.save(force_insert=True)
    Alert.objects.all().delete()
    found = {divergence.table: divergence for divergence in read_models_diverged()}
    assert set(found) == {"monitoring_deployment", "monitoring_modelapikey", "monitoring_alert"}
    pointer = found["monitoring_deployment"]
    assert (pointer.unexplained, pointer.missing) == (["credit"], ["credit"])
    keys = found["monitoring_modelapikey"]
    assert keys.unexplained == ["Forged12.x"] and keys.missing_count == 0
    alerts = found["monitoring_alert"]
    assert alerts.unexplained_count == 0 and alerts.missing_count >= 1
    assert "monitoring_deployment: 1 row(s) the log does not give (e.g. credit)" in str(pointer)


def test_an_account_reactivated_past_the_log_is_named_and_its_password_is_not_compared(history, people):  # noqa: F811
    from django.contrib.auth.models import User

    from monitoring.access.services import person_deactivate

    person_deactivate(username=people["auditor"].username, actor=ALICE, reason="left the company")
    User.objects.filter(username=people["auditor"].username).update(is_active=True, password="changed")
    (found,) = read_models_diverged()
    assert found.table == "auth_user"
    assert found.unexplained == [people["auditor"].username] and found.missing == [people["auditor"].username]


def test_the_periodic_check_records_a_signed_event_and_an_integrity_failure_once(history):
    assert check_read_models() == 0
    Deployment.objects.filter(model_id="credit").update(champion="1.1")
    assert check_read_models() == 1
    assert check_read_models() == 1  # found again: not repeated
    (event,) = Event.objects.filter(event_type="audit.ReadModelsDiverged")
    assert event.payload["tables"][0]["table"] == "monitoring_deployment"
    assert event.payload["tables"][0]["unexplained"] == ["credit"]
    (failure,) = LogVerification.objects.filter(ok=False)
    assert failure.problem.startswith("the read models differ from the log: monitoring_deployment: 1 row(s)")
