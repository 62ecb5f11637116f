"""Changing the log's tables as only their owner can: triggers off, the change, then every
trigger on again as ALWAYS. For tests that act as a superuser tampering with the log, and for
emptying it between tests."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

APPEND_ONLY_TABLES = (
    "audit_event",
    "audit_event_key",
    "audit_signing_key",
    "audit_log",
    "audit_checkpoint",
    "audit_merkle_node",
    "audit_cosignature",
)


def as_owner(sql: str, params: Sequence = (), tables: Sequence[str] = ("audit_event",)) -> None:
    """Run `sql` with the tables' triggers off (on a partitioned table: its partitions' too)."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        for table in tables:
            triggers_always_on(cursor, table)


def triggers_always_on(cursor, table: str) -> None:
    """Every trigger of `table` enabled ALWAYS (a partitioned table's reach its partitions)."""
    cursor.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal AND tgparentid = 0",
        [table],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f'ALTER TABLE {table} ENABLE ALWAYS TRIGGER "{name}"')
