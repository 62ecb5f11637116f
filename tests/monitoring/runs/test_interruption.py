"""A run's time limit can interrupt it in the middle of a query: the connection is then left
mid-query, and recording the failure must not fail on it (CI saw a run that stayed 'running')."""

from __future__ import annotations

from django.db import connection
from psycopg.pq import TransactionStatus

from monitoring.runs.services import _connection_after_interruption


def test_a_connection_left_mid_query_is_replaced_before_the_failure_is_recorded(committed_log):
    connection.ensure_connection()
    connection.connection.pgconn.send_query(b"SELECT pg_sleep(0.2)")  # as a signal leaves it: sent, never read
    assert connection.connection.info.transaction_status == TransactionStatus.ACTIVE
    _connection_after_interruption()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_healthy_connection_is_kept(committed_log):
    connection.ensure_connection()
    raw = connection.connection
    _connection_after_interruption()
    assert connection.connection is raw
