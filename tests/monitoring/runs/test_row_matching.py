"""The run's row-wise helpers, vectorized, checked against the Python loops they replace:
which rows have a label (`id in labels`), which outcomes are known, and labels as text."""

from __future__ import annotations

import copy
import json
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.ingestion.selectors import IDS
from monitoring.policies.document import DEFAULT_POLICY, complete_policy
from monitoring.registry.data_schema import parse_schema
from monitoring.runs import checks
from monitoring.runs.checks import (
    _known,
    _label_drift,
    _texts,
    compute_run,
    labelled_rows,
    labelled_targets,
    labels_by_id,
)
from monitoring.stats.quality import duplicate_findings

SCHEMA = parse_schema({"numerical": ["x"], "prediction": "score", "target": "y"})


def _by_python(ids: np.ndarray, labels: dict) -> np.ndarray:
    return np.array([i for i, key in enumerate(ids.tolist()) if key in labels], dtype=np.int64)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.integers(0, 300), st.integers(0, 10_000), st.sampled_from(["text", "number", "mixed"]), st.booleans())
def test_labelled_rows_are_the_rows_whose_id_is_in_the_labels(rows, seed, kind, missing):
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, max(rows, 1) * 2, rows)
    if kind == "text":
        ids = np.array([f"p-{v}" for v in drawn], dtype=object)
        keys = [f"p-{v}" for v in rng.integers(0, max(rows, 1) * 2, rows // 2 + 1)]
    elif kind == "number":
        ids = drawn.astype(float)
        keys = [float(v) for v in rng.integers(0, max(rows, 1) * 2, rows // 2 + 1)]
    else:  # what no hash join may take: compared as Python compares them
        ids = np.array([f"p-{v}" if v % 2 else int(v) for v in drawn], dtype=object)
        keys = [f"p-{v}" if v % 3 else float(v) for v in rng.integers(0, max(rows, 1) * 2, rows // 2 + 1)]
    if missing and rows:
        holes = rng.random(rows) < 0.2
        ids[holes] = np.nan if ids.dtype.kind == "f" else None
        keys += [None] if kind != "number" else [float("nan")]
    labels = dict.fromkeys(keys, 1.0)
    found = labelled_rows(ids, labels)
    assert found.dtype == np.int64 and found.tolist() == _by_python(ids, labels).tolist()
    if kind == "text":  # as a window holds ids: compact strings
        assert labelled_rows(ids.astype(IDS), labels).tolist() == found.tolist()


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    st.integers(0, 300),
    st.integers(0, 10_000),
    st.booleans(),
    st.booleans(),
    st.sampled_from([7, 10_000]),
    st.booleans(),
)
def test_labels_held_as_rows_find_what_a_dictionary_of_them_finds(rows, seed, missing, compact, chunk, texts):
    """A run holds its labels as the label rows (`LabelRows`) and looks the window's ids up by
    Arrow, a chunk of rows at a time; the rows and targets are those a dictionary of the label
    rows gives (an id labelled twice: its last row), with missing ids, NULs and several chunks.
    Targets that are numbers stay float64; others are the Python objects the dictionary holds."""
    rng = np.random.default_rng(seed)
    spell = np.array(["p-", "é", "a\x00", ""], dtype=object)
    ids = np.array([spell[v % 4] + str(v) for v in rng.integers(0, max(rows, 1) * 2, rows)], dtype=object)
    drawn = rng.integers(0, max(rows, 1) * 2, rows // 2 + 1)  # some ids labelled twice
    label_ids = np.array([spell[v % 4] + str(v) for v in drawn], dtype=object)
    targets = rng.integers(0, 2, label_ids.size).astype(float)
    if texts:
        targets = np.array(["no", "yes"], dtype=object)[targets.astype(int)]
    if missing and rows:
        ids[rng.random(rows) < 0.2] = None
        label_ids[0] = None
    if compact:  # as a window holds ids
        ids, label_ids = ids.astype(IDS), label_ids.astype(IDS)
    by_id = dict(zip(label_ids.tolist(), targets.tolist(), strict=True))
    expected = _by_python(ids, by_id)
    labels = labels_by_id({"id": label_ids, "y": targets}, SCHEMA)
    with mock.patch.object(checks, "TRUTH_CHUNK_ROWS", chunk):
        found, got = labelled_targets(ids, labels)
        assert rows < 20 or labels.found(ids) is not None  # Arrow's lookup, not the dictionary's
    assert found.tolist() == expected.tolist()
    assert got.dtype == (object if texts else np.float64) and got.tolist() == [by_id[ids[i]] for i in expected]


def test_a_missing_id_has_a_label_only_when_a_label_row_has_no_id_either():
    ids = np.array(["a", None, "b"], dtype=object)
    assert labelled_rows(ids, {"a": 1.0}).tolist() == [0]
    assert labelled_rows(ids, {"a": 1.0, None: 0.0}).tolist() == [0, 1]
    assert labelled_rows(np.array([0.0, np.nan, -0.0]), {0.0: 1.0, float("nan"): 1.0}).tolist() == [0, 2]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.floats(allow_nan=True), st.none(), st.integers(-3, 3)), max_size=40))
def test_known_outcomes_and_their_texts_are_the_loops(values):
    floats = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    objects = np.array(values, dtype=object)
    for array in (floats, objects, floats.astype(object)):
        assert _known(array).tolist() == [t is not None and t == t for t in array]
        assert _texts(array).tolist() == [str(v) for v in array.tolist()]
    assert _texts(np.array([0.0, -0.0, 1.0, 0.0])).tolist() == ["0.0", "-0.0", "1.0", "0.0"]
    assert _known(np.array([True, False])).tolist() == [True, True]


def test_bytes_ids_are_not_read_as_texts():
    """Arrow would read b"a" as "a": such ids are compared as Python compares them."""
    ids = np.array([b"a", "b", None], dtype=object)
    labels = {"a": 1.0, "b": 0.0}
    assert labelled_rows(ids, labels).tolist() == _by_python(ids, labels).tolist() == [1]


def test_label_drift_reads_single_precision_outcomes_as_the_labels_hold_them():
    """Outcomes that are not float64 are compared as Python objects, as the labels' side is:
    a float32 0.1 is '0.10000000149011612' on both sides, not '0.1' on one."""
    policy = complete_policy(copy.deepcopy(DEFAULT_POLICY), {"y": "categorical"})
    outcomes = np.array([0.1, 0.2] * 500, dtype=np.float32)
    truth = (np.array(outcomes.tolist(), dtype=object), None, None)
    (check,) = _label_drift({"y": outcomes}, truth, "y", "multiclass_classification", policy)
    assert check["status"] == "ok" and check["value"] == 0.0


def test_ids_held_as_compact_strings_count_their_duplicates_as_python_strings_do():
    ids = np.array(["b", "a", None, "b", "é" * 20, "a", "é" * 20, None, "c"], dtype=object)
    (expected,) = duplicate_findings("id", ids)
    assert duplicate_findings("id", ids.astype(IDS)) == [expected]
    assert expected.examples == ("a", "b", "é" * 20) and expected.count == 6


@pytest.mark.parametrize(
    ("label_ids", "ids"),
    [
        ([2**70, 5, 2**70], [2**70, 3, 5]),  # past what Arrow reads as a number
        (["a", "\ud800"], ["a", "b"]),  # a lone surrogate: no UTF-8 for Arrow
        (["a", "\ud800"], [1.0, 2.0]),
    ],
)
def test_ids_arrow_cannot_read_are_matched_as_python_matches_them(label_ids, ids):
    labels = labels_by_id(
        {"id": np.array(label_ids, dtype=object), "y": np.arange(len(label_ids), dtype=float)}, SCHEMA
    )
    ids = np.array(ids, dtype=object if isinstance(ids[0], (int, str)) else float)
    by_id = dict(zip(label_ids, range(len(label_ids)), strict=True))
    found, targets = labelled_targets(ids, labels)
    assert found.tolist() == _by_python(ids, by_id).tolist()
    assert targets.tolist() == [float(by_id[ids[i]]) for i in found]


def test_an_id_that_is_also_a_segment_is_still_read_by_the_segment_checks():
    """The ids are let go after the label join, unless a check after it reads that column."""
    schema = parse_schema({"numerical": ["x"], "prediction": "p", "score": "s", "id": "id", "segments": ["id"]})
    policy = complete_policy({"checks": ["segments"]}, schema.features)
    rng = np.random.default_rng(0)

    def side(spelled: str) -> dict:
        return {"id": np.array([spelled] * 200, dtype=object), "x": rng.normal(size=200), "p": np.zeros(200),
                "s": rng.random(200)}  # fmt: skip

    result = compute_run(side("a"), side("b"), labels={}, schema=schema, task="binary_classification", policy=policy)
    assert [(c.get("segment"), c["metric"]) for c in result["checks"][1:]] == [("id=b", "new_segment_share")]


@pytest.mark.parametrize("task", ["binary_classification", "multiclass_classification", "regression"])
def test_targets_held_as_numbers_give_the_run_their_python_objects_give(task):
    """Labels read as numbers keep the labelled rows' targets as float64 (at 100M rows, 10M
    Python floats and their 10M texts in label drift held 1.7 GB): every check reads them as
    it reads the Python floats a dictionary of the labels gives, -0.0 and NaN included."""
    schema = parse_schema(
        {"numerical": ["x"], "prediction": "p", "score": "s", "target": "y", "id": "id", "segments": ["g"]}
    )
    policy = complete_policy(copy.deepcopy(DEFAULT_POLICY), schema.features)
    rng = np.random.default_rng(3)
    rows = 3_000

    def outcomes(size: int) -> np.ndarray:
        if task == "regression":
            return rng.normal(size=size)
        drawn = rng.integers(0, 3 if task == "multiclass_classification" else 2, size).astype(float)
        drawn[rng.random(size) < 0.05] = -0.0 if task == "multiclass_classification" else 0.0
        return drawn

    def side(size: int, shift: float) -> dict:
        return {"id": np.array([f"p-{i}" for i in range(size)], dtype=object), "x": rng.normal(shift, size=size),
                "p": outcomes(size), "s": rng.random(size), "g": rng.choice(["a", "b", "c"], size).astype(object),
                "y": outcomes(size)}  # fmt: skip

    reference, current = side(rows, 0.0), side(rows, 0.4)
    label_ids = current["id"][rng.random(rows) < 0.6]
    targets = outcomes(label_ids.size)
    if task == "multiclass_classification":
        targets[:3] = np.nan  # an outcome that is no class: read as "nan"
    labels = labels_by_id({"id": label_ids.astype(IDS), "y": targets}, schema)
    assert labels.found(current["id"].astype(IDS))[1].dtype == np.float64
    run = dict(schema=schema, task=task, policy=policy)
    by_rows = compute_run(reference, {**current, "id": current["id"].astype(IDS)}, labels=labels, **run)
    by_objects = compute_run(reference, current, labels=dict(zip(label_ids, targets.tolist(), strict=True)), **run)
    assert by_rows["rows"]["labelled"] == label_ids.size
    assert {check["check"] for check in by_rows["checks"]} >= {"label_drift", "performance"}
    assert json.dumps(by_rows, sort_keys=True, default=str) == json.dumps(by_objects, sort_keys=True, default=str)


def test_ids_joined_from_arrow_chunks_are_those_found_in_the_whole_column():
    """The run's join reads the window's ids as the batches hold them: text, large text, or
    nulls where a batch has no id column. A chunk of anything else (numbers) leaves the join
    to the whole column."""
    labels = labels_by_id({"id": np.array(["a", "b", None], dtype=IDS), "y": np.array([1.0, 0.0, 1.0])}, SCHEMA)
    chunks = [pa.array(["b", "z"]), pa.array(["a"], type=pa.large_string()), pa.nulls(2), pa.array(["b"])]
    with mock.patch.object(checks, "TRUTH_CHUNK_ROWS", 3):
        rows, targets = labels.joined(chunks)
    whole = np.array(["b", "z", "a", None, None, "b"], dtype=IDS)
    expected_rows, expected_targets = labels.found(whole)
    assert rows.tolist() == expected_rows.tolist() == [0, 2, 3, 4, 5]
    assert targets.tolist() == expected_targets.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert labels.joined([pa.array(["a"]), pa.array([1, 2])]) is None
