"""A run's memory budget: what each process of a run is estimated to hold, input by input, and
how many features a part of a fanned-out run measures so that it fits."""

from __future__ import annotations

import datetime as dt

import pytest

from monitoring.models import Run, RunFanout
from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.registry.data_schema import parse_schema
from monitoring.runs.budget import (
    BASE_MB,
    BYTES_PER_VALUE,
    ColumnsRead,
    RowsRead,
    RunOverBudget,
    features_per_part,
    megabytes_needed,
    run_budget_check,
)
from monitoring.runs.services import run_execute, run_rows
from tests.monitoring.conftest import ALICE
from tests.monitoring.runs.test_fanout import SCHEMA, _ingest, _report, _table

MB = 1024 * 1024


def test_each_input_is_counted_with_the_columns_read_of_it():
    rows = RowsRead(window=1_000_000, reference=200_000, labels=50_000)
    assert rows.total == 1_250_000
    values = 1_000_000 * 5 + 200_000 * 4 + 50_000 * 2  # a label: its id and its outcome
    assert megabytes_needed(rows, ColumnsRead(5, 4, labels=True)) == BASE_MB + values * BYTES_PER_VALUE / MB
    without_labels = 1_000_000 * 5 + 200_000 * 4
    assert megabytes_needed(rows, ColumnsRead(5, 4, labels=False)) == BASE_MB + without_labels * BYTES_PER_VALUE / MB
    assert megabytes_needed(RowsRead(0, 0, 0), ColumnsRead(5, 4, labels=True)) == BASE_MB


def test_the_process_that_computes_the_run_is_counted_for_earlier_windows_and_kpis_and_a_part_is_not():
    rows = RowsRead(window=1_000_000, reference=200_000, labels=50_000, history=7_000_000, kpis=30_000)
    assert rows.total == 1_250_000  # what RUN_FANOUT_ROWS is compared with: the rows whose columns are read
    computing = ColumnsRead(5, 4, labels=True, history_and_kpis=True)
    values = 1_000_000 * 5 + 200_000 * 4 + 50_000 * 2 + 7_000_000 + 30_000 * 4  # a time; time, name, value, count
    assert megabytes_needed(rows, computing) == BASE_MB + values * BYTES_PER_VALUE / MB
    part = ColumnsRead(2, 2, labels=False)
    assert megabytes_needed(rows, part) == BASE_MB + 1_200_000 * 2 * BYTES_PER_VALUE / MB


def test_the_run_counts_the_rows_of_its_earlier_windows(committed_log):
    registry.model_register(name="wide", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    _report(start, 3000)  # the reference, 3,000 rows in [start, start + 1 h), 150 labels
    _ingest("predictions", _table(2000, 9, start - dt.timedelta(hours=3)))  # an earlier window's rows
    policy = policy_load("wide").policy
    assert policy["volume"]["history_windows"] >= 3 and "hours" in policy["window"]
    rows = run_rows("wide", start, start + dt.timedelta(hours=1), policy)
    assert rows == RowsRead(window=3000, reference=3000, labels=150, history=2000, kpis=0)
    assert ColumnsRead.of(parse_schema(SCHEMA), parse_schema(SCHEMA).columns).history_and_kpis


def test_a_process_is_not_counted_for_the_times_or_the_references_ids_it_never_holds():
    schema = parse_schema(SCHEMA)  # 6 numerical, 3 categorical, a segment, id, time, score, label: 14
    assert len(schema.columns) == 14
    assert ColumnsRead.of(schema, schema.columns) == ColumnsRead(13, 12, labels=True, history_and_kpis=True)
    combined = ["id", "timestamp", "score", "label", "region"]
    assert ColumnsRead.of(schema, combined) == ColumnsRead(4, 3, labels=True, history_and_kpis=True)


def test_a_part_measures_as_many_features_as_fit_the_budget(settings):
    rows = RowsRead(window=50_000_000, reference=1_000_000, labels=5_000_000)

    def needed(features: int) -> float:  # the arithmetic, apart from the code
        return BASE_MB + 51_000_000 * features * BYTES_PER_VALUE / MB

    settings.RUN_MEMORY_BUDGET_MB = 4096
    expected = max([n for n in range(1, 5) if needed(n) <= 4096], default=1)
    assert needed(4) > 4096 >= needed(expected) and expected < 4
    assert features_per_part(rows, 4) == expected
    settings.RUN_MEMORY_BUDGET_MB = 100_000
    assert features_per_part(rows, 4) == 4  # never more than asked
    settings.RUN_MEMORY_BUDGET_MB = 600  # not even one fits: one a part, and the check says so
    assert features_per_part(rows, 4) == 1
    with pytest.raises(RunOverBudget, match=r"each part would read 50,000,000 rows of 1 columns, 1,000,000 reference"):
        run_budget_check(rows, ColumnsRead(1, 1, labels=False), "each part")


def test_the_message_names_every_input_and_the_setting(settings):
    settings.RUN_MEMORY_BUDGET_MB = 1000
    rows = RowsRead(window=10_000_000, reference=2_000_000, labels=300_000)
    with pytest.raises(RunOverBudget) as refused:
        run_budget_check(rows, ColumnsRead(4, 3, labels=True))
    estimate = BASE_MB + (40_000_000 + 6_000_000 + 600_000) * BYTES_PER_VALUE / MB
    assert str(refused.value) == (
        "the run would read 10,000,000 rows of 4 columns, 2,000,000 reference rows of 3 and 300,000 labels: "
        f"an estimated {estimate:,.0f} MB, over the run memory budget of 1,000 MB (RUN_MEMORY_BUDGET_MB): "
        "run a shorter window or raise the budget"
    )
    settings.RUN_MEMORY_BUDGET_MB = int(estimate) + 1
    run_budget_check(rows, ColumnsRead(4, 3, labels=True))  # within it: nothing raised
    more = RowsRead(window=10_000_000, reference=2_000_000, labels=300_000, history=7_000_000, kpis=30_000)
    with pytest.raises(
        RunOverBudget, match=r"300,000 labels, the times of 7,000,000 earlier rows and 30,000 KPI rows: an"
    ):
        run_budget_check(more, ColumnsRead(4, 3, labels=True, history_and_kpis=True))


def test_a_window_that_would_not_fit_even_split_fails_before_any_part_is_planned(committed_log, settings):
    registry.model_register(name="wide", task="binary_classification", owner="a", data_schema=SCHEMA, actor=ALICE)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    _report(start, 3000)
    settings.RUN_FANOUT_ROWS, settings.RUN_FANOUT_FEATURES, settings.RUN_MEMORY_BUDGET_MB = 1000, 2, 1
    outcome = run_execute(model="wide", start=start, end=start + dt.timedelta(hours=1))
    assert outcome.status == "failed"
    error = Run.objects.get(run_id=outcome.run_id).error
    assert "each of its parts would read 3,000 rows of 1 columns, 3,000 reference rows of 1" in error, error
    assert "over the run memory budget of 1 MB (RUN_MEMORY_BUDGET_MB)" in error
    assert not RunFanout.objects.exists()
