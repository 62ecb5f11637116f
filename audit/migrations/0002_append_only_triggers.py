"""The database refuses UPDATE, DELETE and TRUNCATE on the log's tables.

Triggers are ENABLE ALWAYS so that session_replication_role=replica does not bypass them.
"""

from django.db import migrations

from audit.migrations._append_only import install_sql, remove_sql

TABLES = ("audit_event", "audit_signing_key", "audit_log")

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'driftledger audit log is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunSQL(
            FUNCTION + install_sql(TABLES),
            remove_sql(TABLES) + "DROP FUNCTION IF EXISTS audit_refuse_change();",
        )
    ]
