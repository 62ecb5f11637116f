"""Found in review: hostile bodies and concurrent duplicates that slipped past the door."""

from __future__ import annotations

import io

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit.models import Event
from monitoring.models import Batch
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, SCHEMA, client_for
from tests.monitoring.hostile.conftest import stored
from tests.monitoring.ingestion.test_ingestion import NOW, at_once, post, records


def test_the_same_batch_sent_at_once_without_a_key_is_stored_once(committed_log):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    registry.version_register(name="credit", version="1.0", artifact_uri="s3://1", actor=ALICE)
    key = registry.api_key_issue(name="credit", label="svc", expires_at=None, actor=ALICE)[1]
    body, answers = orjson.dumps(records(200)), []
    at_once(lambda: answers.append(post(client_for(key=key), "predictions", body, "application/json")), 4)
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


CLASHING = {
    "a segment that is the prediction": ({"segments": ["score"]}, "segment 'score' is also the prediction"),
    "a segment that is the time": ({"segments": ["timestamp"]}, "segment 'timestamp' is also the timestamp"),
    "a segment that is the id": ({"segments": ["id"]}, "segment 'id' is also the id"),
    "a segment that is the target": ({"segments": ["defaulted"]}, "segment 'defaulted' is also the target"),
    "a feature named model_version": ({"numerical": ["income", "model_version"]}, "'model_version' is the column"),
    "a prediction named model_version": ({"prediction": "model_version"}, "'model_version' is the column"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(CLASHING))
def test_a_schema_whose_columns_clash_is_refused_not_registered_to_fail_every_batch(people, case):
    change, reason = CLASHING[case]
    schema = SCHEMA | change
    engineer = client_for(people["ml_engineer"])
    before = Event.objects.count()
    answer = engineer.post(
        "/api/v1/models/", {"name": "clash", "task": "binary_classification", "data_schema": schema}, format="json"
    )
    assert answer.status_code == 400 and reason in answer.json()["detail"], answer.json()
    assert Event.objects.count() == before


@pytest.mark.django_db
def test_a_schema_change_to_a_clashing_schema_is_refused_before_any_request(credit_model, people):
    answer = client_for(people["ml_engineer"]).patch(
        "/api/v1/models/credit/", {"data_schema": SCHEMA | {"segments": ["score"]}, "reason": "r"}, format="json"
    )
    assert answer.status_code == 400 and "segment 'score' is also the prediction" in answer.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize("column", ["value", "count", "kpi"])
def test_a_categorical_feature_named_as_a_kpi_column_leaves_kpi_batches_readable(people, column):
    schema = SCHEMA | {"categorical": ["region", column]}
    registry.model_register(name="shop", task="binary_classification", owner="a", data_schema=schema, actor=ALICE)
    row = {"timestamp": NOW.isoformat(), "kpi": "ctr", "value": 0.3, "count": 10, "region": "north"}
    answer = client_for(people["ml_engineer"]).post(
        "/api/v1/models/shop/kpis/", orjson.dumps([row]), content_type="application/json"
    )
    assert answer.status_code == 201, answer.json()


@pytest.mark.django_db
def test_an_earliest_time_before_the_calendar_in_utc_is_refused_not_registered_to_fail_every_batch(people):
    schema = SCHEMA | {"earliest": "0001-01-01T00:00:00+05:00"}
    answer = client_for(people["ml_engineer"]).post(
        "/api/v1/models/", {"name": "old", "task": "binary_classification", "data_schema": schema}, format="json"
    )
    assert answer.status_code == 400 and "outside the calendar once read in UTC" in answer.json()["detail"]


@pytest.mark.django_db
def test_labels_after_an_approved_change_of_the_id_column_are_checked_not_a_server_error(credit_key, people):
    from tests.monitoring.conftest import approved

    client = client_for(key=credit_key)
    assert post(client, "predictions", orjson.dumps(records(3)), "application/json").status_code == 201
    approved("credit", "schema_change", {"data_schema": SCHEMA | {"id": "application_id"}})
    renamed = [{"application_id" if k == "id" else k: v for k, v in row.items()} for row in records(3, start=10)]
    assert post(client, "predictions", orjson.dumps(renamed), "application/json").status_code == 201
    labels = [{"application_id": "p-10", "defaulted": 1}]
    assert post(client, "labels", orjson.dumps(labels), "application/json").status_code == 201
    unknown = post(client, "labels", orjson.dumps([{"application_id": "p-99", "defaulted": 1}]), "application/json")
    assert unknown.status_code == 400 and "unknown prediction id" in unknown.json()["problems"][0]["reason"]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [pa.decimal128(38, 0), pa.decimal256(76, 0)])
def test_a_parquet_decimal_integer_beyond_2_53_is_refused_not_rounded(credit_key, kind):
    table = pa.Table.from_pylist(records(3))
    table = table.set_column(table.column_names.index("income"), "income", pa.array([1, 2**53 + 1, 3], kind))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    before = stored()
    answer = post(client_for(key=credit_key), "predictions", buffer.getvalue(), "application/vnd.apache.parquet")
    assert answer.status_code == 400, answer.json()
    reason = "integer beyond ±2^53 cannot be kept exactly (as float64)"
    assert answer.json()["problems"] == [{"column": "income", "reason": reason, "rows": [1], "count": 1}]
    assert stored() == before
