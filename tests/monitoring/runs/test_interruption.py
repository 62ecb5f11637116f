"""A run's time limit can interrupt it in the middle of a query: the connection is then left
mid-query, and recording the failure must not fail on it (CI saw a run that stayed 'running')."""

from __future__ import annotations

from django.db import connection
from psycopg.pq import TransactionStatus

from monitoring.runs.models import Run
from monitoring.runs.services import connection_after_interruption
from tests.monitoring.conftest import ALICE
from tests.monitoring.runs.conftest import reported  # noqa: F401 - the fixture


def test_a_connection_left_mid_query_is_replaced_before_the_failure_is_recorded(committed_log):
    connection.ensure_connection()
    connection.connection.pgconn.send_query(b"SELECT pg_sleep(0.2)")  # as a signal leaves it: sent, never read
    assert connection.connection.info.transaction_status == TransactionStatus.ACTIVE
    connection_after_interruption()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_healthy_connection_is_kept(committed_log):
    connection.ensure_connection()
    raw = connection.connection
    connection_after_interruption()
    assert connection.connection is raw


def test_a_run_out_of_time_before_it_started_is_recorded_as_started_and_failed(reported):  # noqa: F811
    """A short time limit can expire while the run still loads its policy: it must not vanish."""
    from billiard.exceptions import SoftTimeLimitExceeded

    from audit.models import Event
    from monitoring.runs.services import run_out_of_time

    start, end = reported
    outcome = run_out_of_time(model="credit", start=start, end=end, actor=ALICE, error=SoftTimeLimitExceeded())
    kinds = list(Event.objects.filter(stream_type="run").order_by("seq").values_list("event_type", flat=True))
    assert kinds[:2] == ["monitoring.RunStarted", "monitoring.RunFailed"]
    assert outcome.status.value == "failed" and "time limit" in Run.objects.get().error
