"""Checkpoints and Merkle nodes are append-only too (same triggers as the events)."""

from django.db import migrations

from audit.migrations._append_only import install_sql, remove_sql

TABLES = ("audit_checkpoint", "audit_merkle_node")


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_checkpoints")]

    operations = [migrations.RunSQL(install_sql(TABLES), remove_sql(TABLES))]
