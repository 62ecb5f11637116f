"""Recording a run's outcome never leaves it running: a race lost on an alert (its dedupe index,
its stream) replays the whole outcome on the new state; another worker finishing first wins."""

import pytest
from django.db import IntegrityError

from audit.envelope import format_time
from audit.models import Event
from audit.store import ConcurrencyConflict
from monitoring.alerting.models import Alert
from monitoring.runs import services
from monitoring.runs.domain import RunCompleted, RunDiagnosed, RunStatus
from monitoring.runs.models import Run
from monitoring.runs.tasks import run_monitoring

pytestmark = pytest.mark.django_db


def _lose_the_first_race(monkeypatch, error: Exception) -> list[int]:
    """alerts_from_run fails once as it would when another transaction won (then works)."""
    calls: list[int] = []
    real = services.alerts_from_run

    def racing(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            real(**kwargs)  # it did write, and the whole transaction must roll back with it
            raise error
        return real(**kwargs)

    monkeypatch.setattr(services, "alerts_from_run", racing)
    return calls


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError('duplicate key value violates unique constraint "one_unresolved_alert_per_condition"'),
        ConcurrencyConflict(("alert", "4b0c1c59-0000-4000-8000-000000000001"), 1, 2),
    ],
    ids=["dedupe index", "alert stream"],
)
def test_a_race_lost_on_an_alert_replays_the_outcome_and_the_run_completes(reported, monkeypatch, error):
    start, end = reported
    calls = _lose_the_first_race(monkeypatch, error)
    answer = run_monitoring.apply(args=("credit", format_time(start), format_time(end))).get()
    assert len(calls) == 2
    run = Run.objects.get(run_id=answer["run_id"])
    assert (answer["status"], run.status) == ("completed", RunStatus.COMPLETED)
    assert Event.objects.filter(event_type=RunCompleted.type_name).count() == 1
    assert Event.objects.filter(event_type=RunDiagnosed.type_name).count() == 1
    keys = list(Alert.objects.values_list("dedupe_key", flat=True))
    assert keys and len(keys) == len(set(keys))  # the first attempt's alerts rolled back with it


def test_another_worker_finishing_the_same_run_first_wins(reported):
    start, end = reported
    first = services.run_execute(model="credit", start=start, end=end)
    # A redelivered task that computed the same run meanwhile: its outcome is refused, the first stands.
    late = services._record(
        first.run_id,
        lambda run: run.complete(checks=[], result_digest="0" * 64, input_digests=[]),
        services.SCHEDULER,
    )
    assert (late.run_id, late.status, late.recorded_now) == (first.run_id, RunStatus.COMPLETED, False)
    assert late.result_digest == first.result_digest
    assert Event.objects.filter(event_type=RunCompleted.type_name).count() == 1
