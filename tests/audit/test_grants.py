"""apply_audit_grants leaves the application role only SELECT and INSERT on the log's tables."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db


def _privileges(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = 'driftledger_app' AND table_name = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def test_the_application_role_may_only_read_and_append_the_log():
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'driftledger_app') "
            "THEN CREATE ROLE driftledger_app; END IF; END $$"
        )
        cursor.execute("GRANT ALL ON audit_event TO driftledger_app")  # as default privileges would
    assert "DELETE" in _privileges("audit_event")
    out = io.StringIO()
    call_command("apply_audit_grants", stdout=out)
    assert _privileges("audit_event") == {"SELECT", "INSERT"}
    assert "only SELECT and INSERT" in out.getvalue()


def test_a_role_that_does_not_own_the_tables_is_told_so_and_nothing_changes():
    from django.core.management.base import CommandError

    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'driftledger_app') "
            "THEN CREATE ROLE driftledger_app; END IF; "
            "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'driftledger_stranger') "
            "THEN CREATE ROLE driftledger_stranger; END IF; END $$"
        )
        cursor.execute("GRANT ALL ON audit_event TO driftledger_app")
        before = _privileges("audit_event")
        cursor.execute("SET ROLE driftledger_stranger")
        try:
            with pytest.raises(CommandError, match="run this as the role that owns the audit tables"):
                call_command("apply_audit_grants", stdout=io.StringIO())
        finally:
            cursor.execute("RESET ROLE")
    assert _privileges("audit_event") == before  # DELETE and the rest still granted: nothing half-applied
