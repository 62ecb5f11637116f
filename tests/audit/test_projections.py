import io

import pytest
from django.core.management import call_command

from audit import projections
from audit.store import Actor, NewEvent, append
from monitoring.models import Alert, RegisteredModel
from tests.audit.factories import alert_event

pytestmark = pytest.mark.django_db


def _snapshot():
    return (
        list(RegisteredModel.objects.order_by("name").values()),
        list(Alert.objects.order_by("alert_id").values()),
    )


def _populate():
    for index in range(5):
        name = f"model-{index}"
        append(
            [
                NewEvent(
                    "model",
                    name,
                    "monitoring.ModelRegistered",
                    {"name": name, "task": "regression", "owner": "alice", "data_schema": {}},
                    Actor("user", "alice", "Alice"),
                )
            ],
            expected={("model", name): 0},
        )
        for _ in range(3):
            event = alert_event(summary=f"drift on {name}")
            append([event], expected={event.stream: 0})


def test_projections_are_updated_in_the_appending_transaction():
    _populate()
    assert RegisteredModel.objects.count() == 5
    assert Alert.objects.count() == 15


def test_rebuilt_read_models_equal_the_originals():
    _populate()
    before = _snapshot()
    RegisteredModel.objects.all().delete()
    Alert.objects.filter(severity="critical").update(summary="corrupted read model")
    assert _snapshot() != before

    counts = projections.rebuild()
    assert counts == {
        "monitoring.registry": 5,
        "monitoring.runs": 0,
        "monitoring.alerts": 15,
        "monitoring.remediations": 0,
    }
    assert _snapshot() == before


def test_rebuild_projections_command_replays_and_rejects_unknown_names():
    _populate()
    before = _snapshot()
    stdout = io.StringIO()
    call_command("rebuild_projections", "monitoring.alerts", stdout=stdout)
    assert "monitoring.alerts: replayed 15 events" in stdout.getvalue()
    assert _snapshot() == before
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("rebuild_projections", "nope", stderr=stderr)
    assert exited.value.code == 2 and "no projection named nope" in stderr.getvalue()
