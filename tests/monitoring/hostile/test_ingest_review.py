"""Found in review: hostile bodies and concurrent duplicates that slipped past the door."""

from __future__ import annotations

import threading

import orjson
import pytest
from django.db import connection

from audit.models import Event
from monitoring.models import Batch
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, SCHEMA, client_for
from tests.monitoring.hostile.conftest import stored
from tests.monitoring.ingestion.test_ingestion import post, records


def test_the_same_batch_sent_at_once_without_a_key_is_stored_once(committed_log):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    registry.version_register(name="credit", version="1.0", artifact_uri="s3://1", actor=ALICE)
    key = registry.api_key_issue(name="credit", label="svc", expires_at=None, actor=ALICE)[1]
    body, answers, start = orjson.dumps(records(200)), [], threading.Barrier(4)

    def send():
        start.wait()
        answers.append(post(client_for(key=key), "predictions", body, "application/json"))
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert {a.json()["seq"] for a in answers} == {Batch.objects.get().seq}
    assert Event.objects.filter(event_type="monitoring.BatchIngested").count() == 1


@pytest.mark.django_db
def test_a_deeply_nested_value_beside_numbers_is_a_400_not_a_server_error(credit_key):
    deep = b"[" * 1000 + b"]" * 1000  # within orjson's 1024 levels, past Python's recursion limit
    body = orjson.dumps(records(3)).replace(b'"debt_ratio":', b'"debt_ratio":' + deep + b',"was":', 1)
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", body, "application/json")
    assert answer.status_code == 400 and "nested too deeply" in answer.json()["detail"]
    assert stored() == before
