"""The database itself refuses to change the log, whoever asks, with or without triggers."""

from pathlib import Path

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit.models import Event
from audit.store import append
from tests.audit.factories import noted_event

pytestmark = pytest.mark.django_db

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TABLES = ["audit_event", "audit_signing_key", "audit_log"]
STATEMENTS = {
    "update": "UPDATE {table} SET {column} = {column}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table}",
}
COLUMNS = {"audit_event": "stream_id", "audit_signing_key": "created_at", "audit_log": "created_at"}


@pytest.fixture
def logged_event():
    event = noted_event()
    return append([event], expected={event.stream: 0})[0]


def _refused(sql: str, *, replica: bool = False) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        if replica:
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql)
    return str(caught.value)


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("operation", sorted(STATEMENTS))
@pytest.mark.parametrize("replica", [False, True], ids=["origin", "replica-role"])
def test_superuser_cannot_change_the_log(logged_event, table, operation, replica):
    sql = STATEMENTS[operation].format(table=table, column=COLUMNS[table])
    message = _refused(sql, replica=replica)
    assert f"append-only: {operation.upper()} on {table} is refused" in message
    assert Event.objects.filter(seq=logged_event.seq).exists()


def test_application_role_may_append_but_has_no_update_delete_or_truncate_privilege(logged_event):
    with connection.cursor() as cursor:
        cursor.execute((DEPLOY / "roles.sql").read_text().split("\\ir")[0])
        cursor.execute((DEPLOY / "grant_audit.sql").read_text())
        cursor.execute("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO driftledger_app")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE driftledger_app")
        event = noted_event()
        (appended,) = append([event], expected={event.stream: 0})
        assert appended.seq == logged_event.seq + 1
        for operation in ("update", "delete", "truncate"):
            sql = STATEMENTS[operation].format(table="audit_event", column="stream_id")
            assert "permission denied" in _refused(sql)
