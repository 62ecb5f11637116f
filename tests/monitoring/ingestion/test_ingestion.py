"""Ingestion over the API: four body formats, schema errors that name rows and columns, all or
nothing, idempotent retries, and windows read back as numpy columns."""

import datetime as dt
import io
import threading

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage
from django.db import connection

from audit.models import Event
from monitoring.ingestion.selectors import window_load
from monitoring.models import Batch, IdempotentResponse
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, SCHEMA, approved, client_for

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def records(count: int, start: int = 0, **overrides) -> list[dict]:
    rng = np.random.default_rng(start)
    rows = []
    for i in range(start, start + count):
        row = {
            "id": f"p-{i}",
            "timestamp": (NOW - dt.timedelta(minutes=count - (i - start))).isoformat().replace("+00:00", "Z"),
            "income": float(rng.normal(50, 10)),
            "debt_ratio": float(rng.random()),
            "region": ["north", "south", "east"][i % 3],
            "score": float(rng.random()),
            "channel": "web",
            "model_version": "1.0",
        }
        rows.append(row | overrides)
    return rows


def post(client, kind: str, body: bytes, content_type: str, **headers):
    return client.post(f"/api/v1/models/credit/{kind}/", body, content_type=content_type, **headers)


def as_parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def as_csv(rows: list[dict]) -> bytes:
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(str(row[c]) for c in header) for row in rows]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        ("application/json", lambda rows: orjson.dumps(rows)),
        ("application/json", lambda rows: orjson.dumps({"records": rows})),
        ("application/x-ndjson", lambda rows: b"\n".join(orjson.dumps(r) for r in rows)),
        ("text/csv", as_csv),
        ("application/vnd.apache.parquet", as_parquet),
    ],
)
@pytest.mark.django_db
def test_each_format_is_stored_as_one_parquet_file_and_one_event(credit_key, content_type, encode):
    rows = records(50)
    answer = post(client_for(key=credit_key), "predictions", encode(rows), content_type)
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["rows"] == 50 and body["duplicate"] is False
    event = Event.objects.get(seq=body["seq"])
    assert event.event_type == "monitoring.BatchIngested" and event.actor_kind == "service"
    assert event.payload["file_digest"] == body["sha256"] and event.payload["model_versions"] == ["1.0"]
    assert event.payload["time_min"] == rows[0]["timestamp"].replace("Z", ".000000Z")
    stored = pq.read_table(default_storage.open(f"blobs/{body['sha256']}"))
    assert stored.column("income").to_pylist() == pytest.approx([r["income"] for r in rows])
    assert str(stored.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"


def test_a_window_loads_as_numpy_columns(credit_key):
    client = client_for(key=credit_key)
    first, second = records(30), records(30, start=30)
    post(client, "predictions", orjson.dumps(first), "application/json")
    post(client, "predictions", as_parquet(second), "application/vnd.apache.parquet")
    start = dt.datetime.fromisoformat(first[10]["timestamp"].replace("Z", "+00:00"))
    window = window_load(model="credit", start=start)
    expected = [r for r in first + second if r["timestamp"] >= first[10]["timestamp"]]
    assert window.rows == len(expected) and len(window.batches) == 2
    assert window.columns["income"].dtype == np.float64
    assert window.columns["income"] == pytest.approx([r["income"] for r in expected])
    assert window.columns["region"].tolist() == [r["region"] for r in expected]
    assert window.columns["timestamp"].dtype == np.dtype("datetime64[us]")


def test_nulls_and_new_categories_are_accepted_for_the_checks_to_find(credit_key):
    rows = records(5)
    rows[1]["income"], rows[2]["region"] = None, "mars"
    answer = post(client_for(key=credit_key), "predictions", orjson.dumps(rows), "application/json")
    assert answer.status_code == 201
    window = window_load(model="credit")
    assert np.isnan(window.columns["income"][1]) and window.columns["region"][2] == "mars"


def _problems(answer) -> dict[str, dict]:
    assert answer.status_code == 400, answer.content
    return {(p["column"], p["reason"].split(" (")[0].split(",")[0]): p for p in answer.json()["problems"]}


def test_schema_errors_name_columns_rows_and_reasons_and_store_nothing(credit_key):
    rows = records(30)
    rows[3]["income"] = "lots"
    rows[7]["income"] = "many"
    rows[4]["timestamp"] = (NOW + dt.timedelta(days=1)).isoformat()
    rows[5]["model_version"] = "9.9"
    rows[6]["id"] = None
    for row in rows:
        row["colour"] = "red"
        del row["debt_ratio"]
    problems = _problems(post(client_for(key=credit_key), "predictions", orjson.dumps(rows), "application/json"))
    assert problems[("income", "must be a number")]["rows"] == [3, 7]
    assert problems[("timestamp", "timestamp is in the future")]["rows"] == [4]
    assert problems[("model_version", "unknown model version")]["rows"] == [5]
    assert problems[("id", "value is required")]["rows"] == [6]
    assert ("colour", "unknown column: not in the model's data schema") in problems
    assert ("debt_ratio", "missing column") in problems
    assert not Batch.objects.exists() and not Event.objects.filter(event_type="monitoring.BatchIngested").exists()
    assert not default_storage.exists("blobs")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"", "application/json", 400, "empty"),
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"rows": []}', "application/json", 400, "non-empty array"),
        (b"[1, 2]", "application/json", 400, "rows 0, 1"),
        (b"\x00\x01", "application/vnd.apache.parquet", 400, "cannot be read"),
        (b"<xml/>", "application/xml", 415, "not accepted"),
        (b'[{"id": "x"}]', "text/plain", 415, "not accepted"),
    ],
)
def test_unreadable_bodies_are_refused(credit_key, body, content_type, status, message):
    answer = post(client_for(key=credit_key), "predictions", body, content_type)
    assert answer.status_code == status
    assert message in answer.json()["detail"]


def test_labels_are_matched_across_batches_and_only_the_unknown_named(credit_key):
    """The batches are searched newest first until every id is found; ids from an old batch, a
    new one and neither are told apart as when every id was held at once."""
    client = client_for(key=credit_key)
    for first in (0, 10, 20):
        assert post(client, "predictions", orjson.dumps(records(10, first)), "application/json").status_code == 201
    mixed = [{"id": f"p-{i}", "defaulted": 1} for i in (25, 3, 14)]  # newest, oldest, middle batch
    assert post(client, "labels", orjson.dumps(mixed), "application/json").status_code == 201
    again = [{"id": "p-2", "defaulted": 0}, {"id": "p-30", "defaulted": 0}, {"id": "p-29", "defaulted": 1}]
    again += [{"id": "nobody", "defaulted": 1}, {"id": "p-30", "defaulted": 1}]
    problems = _problems(post(client, "labels", orjson.dumps(again), "application/json"))
    assert problems[("id", "label for an unknown prediction id")]["rows"] == [1, 3, 4]


def test_naive_text_timestamps_are_refused_with_the_expected_form(credit_key):
    rows = records(3)
    rows[2]["timestamp"] = "2026-11-25 10:00:00"
    problems = _problems(post(client_for(key=credit_key), "predictions", orjson.dumps(rows), "application/json"))
    assert problems[("timestamp", "must be an ISO 8601 time with a zone offset")]["rows"] == [2]


def test_labels_answer_known_predictions_only_and_binary_labels_are_0_or_1(credit_key):
    client = client_for(key=credit_key)
    post(client, "predictions", orjson.dumps(records(10)), "application/json")
    good = [{"id": f"p-{i}", "defaulted": i % 2} for i in range(10)]
    assert post(client, "labels", orjson.dumps(good), "application/json").status_code == 201
    unknown = _problems(post(client, "labels", orjson.dumps([{"id": "p-404", "defaulted": 1}]), "application/json"))
    assert unknown[("id", "label for an unknown prediction id")]["rows"] == [0]
    bad = _problems(post(client, "labels", orjson.dumps([{"id": "p-1", "defaulted": 2}]), "application/json"))
    assert bad[("defaulted", "a binary target must be 0 or 1")]["rows"] == [0]


def test_kpis_and_reference_data(credit_key, people):
    client = client_for(key=credit_key)
    kpis = [{"timestamp": NOW.isoformat(), "kpi": "default_rate", "value": 0.031, "count": 1200}]
    assert post(client, "kpis", orjson.dumps(kpis), "application/json").status_code == 201
    negative = _problems(post(client, "kpis", orjson.dumps([kpis[0] | {"count": -1}]), "application/json"))
    assert negative[("count", "count must be 0 or more")]["rows"] == [0]
    reference = [{k: v for k, v in r.items() if k not in ("id", "timestamp")} | {"defaulted": 0} for r in records(20)]
    engineer = client_for(people["ml_engineer"])
    answer = post(engineer, "reference", orjson.dumps(reference), "application/json")
    assert answer.status_code == 201 and answer.json()["time_min"] is None
    listed = engineer.get("/api/v1/models/credit/batches/", {"kind": "reference"}).json()
    assert [b["kind"] for b in listed["results"]] == ["reference"] and listed["next"] is None


def test_batches_are_listed_a_page_at_a_time_newest_first(credit_key, people):
    client = client_for(key=credit_key)
    for first in range(0, 50, 10):
        assert post(client, "predictions", orjson.dumps(records(10, first)), "application/json").status_code == 201
    auditor = client_for(people["auditor"])
    seen, url, params = [], "/api/v1/models/credit/batches/", {"limit": 2, "kind": "predictions"}
    while url:
        page = auditor.get(url, params).json()
        assert len(page["results"]) <= 2
        seen += [batch["seq"] for batch in page["results"]]
        url, params = page["next"], None
    assert seen == sorted(Batch.objects.values_list("seq", flat=True), reverse=True) and len(seen) == 5
    assert len(auditor.get("/api/v1/models/credit/batches/", {"limit": 5000}).json()["results"]) == 5  # capped
    for limit in ("0", "-1", "many", "1.5", "", "٣", "9" * 5000):  # DRF alone would serve a default page
        refused = auditor.get("/api/v1/models/credit/batches/", {"limit": limit})
        assert refused.status_code == 400 and "whole number of batches" in refused.json()["limit"][0], limit
    # DRF alone would answer 404, as for a missing model; "bz14" is "o=x", an offset that is no number;
    # "cD1hYmM=" is "p=abc", a position that is no seq (DRF passed it on to the query: a 500)
    for cursor in ("not-a-cursor", "bz14", "%%%", "cD1hYmM=", "cD0tMQ=="):
        refused = auditor.get("/api/v1/models/credit/batches/", {"cursor": cursor})
        assert refused.status_code == 400 and "not a cursor of this list" in refused.json()["cursor"][0], cursor


def test_the_same_content_twice_is_stored_once(credit_key):
    client, body = client_for(key=credit_key), orjson.dumps(records(10))
    first = post(client, "predictions", body, "application/json")
    second = post(client, "predictions", body, "application/json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json() | {"duplicate": True}
    assert Batch.objects.count() == 1


def test_a_retry_with_the_idempotency_key_replays_the_first_answer(credit_key):
    client = client_for(key=credit_key)
    first = post(client, "predictions", orjson.dumps(records(10)), "application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(client, "predictions", orjson.dumps(records(10)), "application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = post(client, "predictions", orjson.dumps(records(11)), "application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    too_long = post(client, "predictions", orjson.dumps(records(3)), "application/json", HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert too_long.status_code == 400
    assert Batch.objects.count() == 1


def test_a_rejected_batch_leaves_its_idempotency_key_unused(credit_key):
    client, rows = client_for(key=credit_key), records(3)
    rows[0]["income"] = "lots"
    assert (
        post(client, "predictions", orjson.dumps(rows), "application/json", HTTP_IDEMPOTENCY_KEY="k").status_code == 400
    )
    assert not IdempotentResponse.objects.exists()


def at_once(send, times: int) -> None:
    """`send` from `times` threads released together, each on its own database connection."""
    start = threading.Barrier(times)

    def sent() -> None:
        start.wait()
        try:
            send()
        finally:
            connection.close()

    threads = [threading.Thread(target=sent) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_retries_store_one_batch(committed_log):
    registry.model_register(name="credit", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    registry.version_register(name="credit", version="1.0", artifact_uri="s3://1", actor=ALICE)
    credit_key = registry.api_key_issue(name="credit", label="svc", expires_at=None, actor=ALICE)[1]
    body, answers = orjson.dumps(records(200)), []

    def send():
        answers.append(
            post(
                client_for(key=credit_key), "predictions", body, "application/json", HTTP_IDEMPOTENCY_KEY="same"
            ).json()
        )

    at_once(send, 4)
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    assert Batch.objects.count() == 1
    assert Event.objects.filter(event_type="monitoring.BatchIngested").count() == 1


def test_a_retired_model_takes_no_data_and_unknown_models_are_404(credit_key, people):
    approved("credit", "retire_model", {}, reason="replaced")
    answer = post(client_for(people["ml_engineer"]), "predictions", orjson.dumps(records(2)), "application/json")
    assert answer.status_code == 400 and "retired" in answer.json()["detail"]
    ghost = client_for(people["ml_engineer"]).post(
        "/api/v1/models/ghost/predictions/", b"[]", content_type="application/json"
    )
    assert ghost.status_code == 404
