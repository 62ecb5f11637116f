"""Runs fanned out over workers: a large window split by feature groups into Celery tasks on the
real Redis broker, each in its own worker process, then combined. The result must be the bytes
the run computes in one process; a part that fails fails the run with its reason."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage

from audit.blobs import blob_path, blob_read
from audit.canonical import canonicalize
from audit.envelope import format_time
from audit.models import Event
from audit.store import Actor
from config.celery import app as celery_app
from monitoring.ingestion.selectors import window_column_chunks, window_from_batches
from monitoring.ingestion.services import batch_ingest
from monitoring.models import Batch, Run, RunFanout
from monitoring.policies.document import complete_policy
from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.registry.data_schema import parse_schema
from monitoring.runs import fanout, services
from monitoring.runs.checks import compute_run
from monitoring.runs.parts import feature_groups, features_measure, parts_dump, parts_load
from monitoring.runs.services import run_execute, run_inputs, run_result, run_windows, runs_fail_stalled
from monitoring.runs.tasks import run_monitoring
from tests.monitoring.conftest import ALICE, approved
from tests.workers import launch_worker, send, stop_worker, use_test_broker, wait_for

SERVICE = Actor("service", "model:wide", "wide service")
NUMERICAL = [f"num_{i}" for i in range(6)]
CATEGORICAL = ["plan", "device", "channel"]
SCHEMA = {
    "numerical": NUMERICAL,
    "categorical": CATEGORICAL,
    "id": "id",
    "timestamp": "timestamp",
    "prediction": "score",
    "target": "label",
    "segments": ["region"],
}
FANNED = {"RUN_FANOUT_ROWS": "1000", "RUN_FANOUT_FEATURES": "2"}


def _table(rows: int, seed: int, start: dt.datetime | None, *, shift: float = 0.0) -> pa.Table:
    """Drift in three features, nulls that grow, a new category and a new region: findings of
    every kind a part carries (examples included) and drift decided across the parts."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {
        name: rng.normal(shift if i < 3 else 0.0, 1, rows) for i, name in enumerate(NUMERICAL)
    }
    if shift:
        columns["num_5"] = pa.array(columns["num_5"], mask=rng.random(rows) < 0.1)  # nulls: NaN is refused
    plans = np.array(["basic", "plus", "pro", *(["enterprise"] if shift else [])])
    columns["plan"] = plans[rng.integers(0, plans.size, rows)]
    columns["device"] = np.array(["ios", "android", "web"])[rng.integers(0, 3, rows)]
    columns["channel"] = np.full(rows, "web" if shift else "store")
    regions = np.array(["north", "south", *(["online"] if shift else [])])
    columns["region"] = regions[rng.integers(0, regions.size, rows)]
    columns["score"] = 1 / (1 + np.exp(-(1.2 * columns["num_0"] - 0.4)))
    if start is None:
        columns["label"] = (rng.random(rows) < columns["score"]).astype(float)
    else:
        columns["id"] = pa.array([f"p-{seed}-{i}" for i in range(rows)])
        base = np.datetime64(start.replace(tzinfo=None), "us")
        columns["timestamp"] = pa.array(
            base + (np.arange(rows) * 3).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")
        )
    return pa.table(columns)


def _ingest(kind: str, table: pa.Table, batch: int = 250_000) -> None:
    for offset in range(0, table.num_rows, batch):
        buffer = io.BytesIO()
        pq.write_table(table.slice(offset, batch), buffer)
        batch_ingest(
            model="wide",
            kind=kind,
            body=buffer.getvalue(),
            content_type="application/vnd.apache.parquet",
            actor=SERVICE,
        )


@pytest.fixture
def wide_window(committed_log):
    registry.model_register(name="wide", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    return start, start + dt.timedelta(hours=1)


def _report(start: dt.datetime, rows: int) -> None:
    _ingest("reference", _table(rows, 1, None))
    window = _table(rows, 2, start, shift=0.2)
    _ingest("predictions", window)
    sample = window.slice(0, rows // 20)
    outcomes = (np.random.default_rng(3).random(sample.num_rows) < 0.3).astype(float)
    _ingest("labels", pa.table({"id": sample.column("id"), "label": outcomes}))


@pytest.fixture
def broker():
    previous = use_test_broker()
    yield
    celery_app.conf.update(**previous)


def test_a_run_fanned_out_over_two_workers_gives_the_bytes_of_the_run_in_one_process(
    wide_window, broker, tmp_path, signing_key_file
):
    start, end = wide_window
    _report(start, 1_000_000)
    workers = [launch_worker(tmp_path, signing_key_file, name=f"part{i}", **FANNED) for i in (1, 2)]
    try:
        send(run_monitoring, "wide", format_time(start), format_time(end))
        assert wait_for(lambda: Run.objects.filter(status__in=["completed", "failed"]).exists(), seconds=300), workers[
            0
        ].log.read_text()
    finally:
        for worker in workers:
            stop_worker(worker)
    run = Run.objects.get()
    assert run.status == "completed", run.error
    logs = "".join(worker.log.read_text() for worker in workers)
    assert logs.count("measure_run_part") >= 2 * 5, logs  # 5 parts (2 + 2 + 2 + 2 + 1 features), received and done
    assert "combine_run_parts" in logs
    assert not RunFanout.objects.exists()  # working state, gone once the run has its outcome

    policy = policy_load("wide")
    alone = run_result("wide", start, end, policy.version, policy.policy, str(run.run_id))
    assert canonicalize(alone) == blob_read(run.result_digest)  # byte for byte
    checks = {(c["check"], c.get("feature"), c.get("metric")) for c in alone["checks"]}
    assert ("feature_drift", "num_0", "wasserstein_normed") in checks and (
        "data_quality",
        "plan",
        "new_category",
    ) in checks
    assert ("data_quality", "num_5", "null_rate") in checks and ("data_quality", "channel", "encoding_change") in checks
    assert Event.objects.filter(event_type="monitoring.RunCompleted").count() == 1


def test_a_part_that_cannot_be_measured_fails_the_run_with_its_reason(wide_window, broker, tmp_path, signing_key_file):
    start, end = wide_window
    _report(start, 3000)
    digest = Batch.objects.get(kind="predictions").sha256
    worker = launch_worker(tmp_path, signing_key_file, **FANNED)
    try:
        default_storage.delete(blob_path(digest))  # the window's file is gone: every part fails to read it
        send(run_monitoring, "wide", format_time(start), format_time(end))
        assert wait_for(lambda: Run.objects.filter(status="failed").exists(), seconds=120), worker.log.read_text()
    finally:
        stop_worker(worker)
    run = Run.objects.get()
    assert run.error.startswith("part "), run.error
    assert "FileNotFoundError" in run.error or "No such file" in run.error, run.error
    assert not RunFanout.objects.exists()
    assert not Event.objects.filter(event_type="monitoring.RunCompleted").exists()


def test_a_small_window_runs_in_one_process(wide_window, broker, tmp_path, signing_key_file, settings):
    start, end = wide_window
    _report(start, 3000)
    settings.RUN_FANOUT_ROWS = 10**9
    from monitoring.runs.services import run_execute

    outcome = run_execute(model="wide", start=start, end=end)
    assert outcome.status == "completed" and not RunFanout.objects.exists()


def test_parts_survive_their_trip_as_json_exactly():
    rng = np.random.default_rng(7)
    reference = {"x": rng.normal(size=5000), "c": np.array(["a", "b", None] * 1000, dtype=object)}
    current = {"x": np.append(rng.normal(0.3, size=4999), np.nan), "c": np.array(["a", "z", "b"] * 1000, dtype=object)}
    policy = policy_load_default()
    measured = features_measure(reference, current, {"x": "numerical", "c": "categorical"}, policy)
    back = parts_load([parts_dump(measured)])
    assert parts_dump(back) == parts_dump(measured)
    assert {name: part.drift for name, part in back.items()} == {name: part.drift for name, part in measured.items()}
    kinds = [[(f.kind, f.count, f.share, f.detail) for f in part.findings or []] for part in measured.values()]
    assert [[(f.kind, f.count, f.share, f.detail) for f in part.findings or []] for part in back.values()] == kinds
    assert {"out_of_range", "new_category"} <= {str(f[0]) for found in kinds for f in found}
    assert measured["x"].drift is not None and measured["x"].drift.test.p_value < 1e-10


def test_features_read_all_at_once_by_the_combining_task_are_not_split():
    schema = parse_schema(SCHEMA)
    policy = policy_load_default()
    assert feature_groups(schema, "binary_classification", policy, 4) == [
        [*NUMERICAL[:4]],
        [*NUMERICAL[4:], "plan", "device"],
        ["channel"],
    ]
    policy["drift"]["multivariate"] = True  # the multivariate check reads every numerical feature
    assert feature_groups(schema, "binary_classification", policy, 4) == [CATEGORICAL]


def policy_load_default() -> dict:
    return complete_policy({}, parse_schema(SCHEMA).features)


def test_a_run_reads_neither_the_rows_times_nor_the_references_ids_and_computes_the_same(wide_window, monkeypatch):
    start, end = wide_window
    reference = _table(3_000, 1, start - dt.timedelta(days=1))  # with ids and times, which the checks never read
    outcomes = (np.random.default_rng(4).random(reference.num_rows) < 0.3).astype(float)
    reference = reference.append_column("label", pa.array(outcomes))
    duplicated = reference.set_column(reference.schema.get_field_index("id"), "id", pa.array(["same"] * 3_000))
    _ingest("reference", duplicated)
    # Three batches: the first in the window, the second cut by its end (its rows from 1,500 on
    # are after it), the third after it.
    window = _table(3_000, 2, end - dt.timedelta(microseconds=4_500), shift=0.2)
    # Repeated ids: the run measures them apart, before its other columns.
    ids = window.column("id").to_pylist()
    ids[100:150] = ids[0:50]
    window = window.set_column(window.schema.get_field_index("id"), "id", pa.array(ids))
    _ingest("predictions", window, batch=1_000)
    labelled = ids[:200] + ids[210:300]
    _ingest("labels", pa.table({"id": labelled, "label": np.ones(len(labelled))}))
    policy = policy_load("wide")
    inputs = run_inputs("wide", start, end, policy.policy)
    schema = parse_schema(SCHEMA)

    read = run_windows("wide", start, end, inputs, policy.policy, schema)
    assert set(read["reference"].columns) == set(schema.columns) - {"id", "timestamp"}
    assert set(read["predictions"].columns) == set(schema.columns) - {"timestamp", "label"}  # no label in a window
    assert (read["reference"].rows, read["predictions"].rows, len(inputs["predictions"])) == (3_000, 1_500, 2)

    spans = {"reference": (None, None), "predictions": (start, end)}
    whole = {
        kind: window_from_batches(model="wide", kind=kind, digests=inputs[kind], start=since, end=until).columns
        for kind, (since, until) in spans.items()
    }
    assert {"id", "timestamp"} <= set(whole["reference"]) and "timestamp" in whole["predictions"]
    streamed: list[int] = []  # the ids joined with the labels a batch at a time, as read

    def chunks(**where: object):
        for chunk in window_column_chunks(**where):
            streamed.append(len(chunk))
            yield chunk

    monkeypatch.setattr(services, "window_column_chunks", chunks)
    computed = run_result("wide", start, end, policy.version, policy.policy, "r")
    assert sum(streamed) == 1_500
    every_column = compute_run(
        whole["reference"],
        whole["predictions"],
        labels=dict.fromkeys(labelled, 1.0),
        schema=schema,
        task="binary_classification",
        policy=policy.policy,
    )
    assert canonicalize({k: computed[k] for k in ("checks", "rows", "status")}) == canonicalize(every_column)
    assert computed["rows"]["labelled"] == 290  # a repeated id's rows each
    duplicates = [c for c in computed["checks"] if c["metric"] == "duplicate_id"]
    assert [(d["feature"], d["count"]) for d in duplicates] == [("id", 100)]
    assert computed["inputs"] == inputs  # the labels read with the ids are recorded as the run's input


@pytest.fixture
def planned(committed_log, settings, monkeypatch):
    """A fanned-out run, planned; its tasks are noted instead of queued, to be delivered here in
    the order a broker may deliver them."""
    settings.RUN_FANOUT_ROWS, settings.RUN_FANOUT_FEATURES = 1000, 2
    queued: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(fanout, "_queue", lambda run_id, parts: queued.append((run_id, list(parts))))
    registry.model_register(name="wide", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=1)
    _report(start, 3000)
    outcome = run_execute(model="wide", start=start, end=end)
    assert outcome.status == "running" and queued == [(outcome.run_id, [0, 1, 2, 3, 4])]
    return outcome.run_id, start, end


def test_a_schema_edited_while_the_parts_run_does_not_change_what_the_run_computes(planned):
    run_id, start, end = planned
    policy = policy_load("wide")
    before = canonicalize(run_result("wide", start, end, policy.version, policy.policy, run_id))
    for index in range(2):
        fanout.part_measure(run_id, index)
    # Approved between two parts: num_0 (in part 1) is now a code, and a segment more.
    edited = {
        **SCHEMA,
        "numerical": NUMERICAL[1:],
        "categorical": ["num_0", *CATEGORICAL],
        "segments": ["region", "plan"],
    }
    approved("wide", "schema_change", {"data_schema": edited})
    for index in range(2, 5):
        fanout.part_measure(run_id, index)
    outcome = fanout.fanout_combine(run_id)
    assert outcome is not None and outcome.status == "completed"
    assert blob_read(outcome.result_digest) == before  # the run as planned, not a mix of two schemas
    assert not RunFanout.objects.filter(run_id=run_id).exists()


def test_a_fanned_run_whose_parts_progress_is_not_swept_and_a_stalled_one_leaves_no_plan(planned, settings):
    run_id, *_ = planned
    fanout.part_measure(run_id, 0)
    progressed = RunFanout.objects.get(run_id=run_id).progressed_at
    after = dt.timedelta(seconds=settings.RUN_STALLED_AFTER_SECONDS)
    assert runs_fail_stalled(now=progressed + after) == []  # started long ago, but a part just finished
    assert Run.objects.get(run_id=run_id).status == "running"

    assert runs_fail_stalled(now=progressed + after + dt.timedelta(seconds=1)) == [run_id]
    assert not RunFanout.objects.filter(run_id=run_id).exists()
    assert [fanout.part_measure(run_id, index) for index in range(1, 5)] == [False] * 4  # queued, found nothing
    assert Run.objects.get(run_id=run_id).status == "failed"
