"""What a monitoring run computes, from its inputs alone (pure, deterministic): the checks of
the policy on a window against the reference. The same inputs give the same bytes, which is
what `reproduce_run` relies on.

Each check is one compact row: check, what it is about (feature, metric, segment), the value,
the p-value when there is one, the threshold, and the status: ok, warning or critical.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.stats import norm

from monitoring.policies.document import drift_policy
from monitoring.registry.data_schema import DataSchema
from monitoring.runs.domain import CheckKind, Level
from monitoring.runs.estimation_checks import estimated_checks, every_row_or
from monitoring.runs.grading import finite, graded
from monitoring.runs.multivariate_checks import multivariate_checks
from monitoring.runs.parts import FeaturePart, MeasuredDrift, features_measure
from monitoring.runs.ranking_checks import catalogue_checks, ranking_quality_checks
from monitoring.stats.categories import arrow_texts
from monitoring.stats.decisions import decide
from monitoring.stats.drift import drift_measured, feature_test
from monitoring.stats.performance import binary_roc_auc, multiclass_performance, regression_performance
from monitoring.stats.quality import (
    Finding,
    QualityFinding,
    column_findings,
    duplicate_findings,
    findings_in_order,
)
from monitoring.stats.segments import rank_by_drift, segment_cohorts, segment_keys, segment_rows, segment_shift
from monitoring.stats.uncertainty import Z_95, auc_with_variance, rate_variance, significant_gap
from monitoring.stats.univariate import wasserstein_normed

Columns = Mapping[str, np.ndarray]
CRITICAL_FINDINGS = (Finding.MISSING_COLUMN, Finding.TYPE_CHANGE, Finding.ALL_MISSING, Finding.ENCODING_CHANGE)


TRUTH_CHUNK_ROWS = 10_000_000  # a window's ids looked up as Arrow text this many at a time


class LabelRows(Mapping[Any, Any]):
    """The target of each labelled prediction id, from the model's label rows (an id labelled
    twice: its last row). Held as those rows' two columns; the dictionary of them, some 120
    bytes a label (1.2 GB at 10M labels), is made only when a lookup by key asks for it."""

    def __init__(self, ids: np.ndarray, targets: np.ndarray) -> None:
        self.ids, self.targets = ids, targets

    @cached_property
    def _by_id(self) -> dict[Any, Any]:
        return dict(zip(self.ids.tolist(), self.targets.tolist(), strict=True))

    def __getitem__(self, key: Any) -> Any:
        return self._by_id[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __bool__(self) -> bool:
        return bool(self.ids.size)

    def found(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(the indices of the rows of `ids` that have a label, their targets) when both sides'
        ids are texts, made Arrow text TRUTH_CHUNK_ROWS rows at a time, so that the window's
        ids are never all Arrow text at once (1.6 GB at 100M). None: not texts."""
        if ids.dtype.kind not in "OT":
            return None
        step = TRUTH_CHUNK_ROWS
        return self.joined(_texts_or_nulls(ids[start : start + step]) for start in range(0, ids.size, step))

    def joined(self, chunks: Iterable[pa.Array | None]) -> tuple[np.ndarray, np.ndarray] | None:
        """`found` of the ids these Arrow chunks hold, in their order: by Arrow's hash of the
        labels' ids, built once for each TRUTH_CHUNK_ROWS ids (`pc.index_in` builds it at every
        call). None: the ids of either side are not all texts (or missing). The targets are
        float64 where the labels' are, else Python objects, as the dictionary of them holds them."""
        if self.ids.dtype.kind not in "OT":
            return None
        try:  # what Arrow cannot read as text (a huge integer, a lone surrogate) is compared by Python
            label_texts = arrow_texts(self.ids[::-1])  # reversed: an id's first match is its last row
            if label_texts is None:
                return None
            rows, matches = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)]
            position = 0
            for texts in _text_runs(chunks, TRUTH_CHUNK_ROWS):
                if texts is None:
                    return None
                index = pc.index_in(texts, value_set=label_texts, skip_nulls=False)  # a missing id matches one
                rows.append(np.flatnonzero(index.is_valid().to_numpy()) + position)
                matches.append(index.drop_null().to_numpy().astype(np.int64))
                position += len(texts)
                del texts, index
        except (OverflowError, UnicodeError):
            return None
        targets = self.targets[self.ids.size - 1 - np.concatenate(matches)]
        if targets.dtype != np.float64:
            targets = np.array(targets.tolist(), dtype=object)
        return np.concatenate(rows), targets


def _text_runs(chunks: Iterable[pa.Array | None], rows: int) -> Iterator[pa.ChunkedArray | None]:
    """The chunks as Arrow text, gathered `rows` or more at a time (the last run: what is left);
    None once a chunk is neither text nor missing values."""
    run: list[pa.Array] = []
    held = 0
    for chunk in chunks:
        if chunk is None or not (
            pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type) or pa.types.is_null(chunk.type)
        ):
            yield None
            return
        run.append(chunk.cast(pa.string()))
        held += len(chunk)
        if held >= rows:
            yield pa.chunked_array(run, type=pa.string())
            run, held = [], 0
    if run:
        yield pa.chunked_array(run, type=pa.string())


def _texts_or_nulls(ids: np.ndarray) -> pa.Array | None:
    """Arrow text of ids that are texts or missing, a chunk of them all missing included."""
    texts = arrow_texts(ids)
    if texts is None and all(value is None for value in ids.tolist()):
        return pa.nulls(len(ids), pa.string())
    return texts


def labels_by_id(labels: Columns, schema: DataSchema) -> LabelRows:
    """The target of each labelled prediction id, from the model's label rows."""
    if not schema.target or schema.id not in labels or schema.target not in labels:
        return LabelRows(np.empty(0, dtype=object), np.empty(0, dtype=object))
    return LabelRows(np.asarray(labels[schema.id]), np.asarray(labels[schema.target]))


def labelled_targets(ids: np.ndarray, labels: Mapping[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(the indices of the rows whose id has a label, their targets: Python objects, or
    float64 where `labels` are rows of numbers)."""
    found = labels.found(ids) if isinstance(labels, LabelRows) else None
    if found is not None:
        return found
    rows = labelled_rows(ids, labels)
    return rows, np.array([labels[ids[i]] for i in rows], dtype=object)


def labelled_rows(ids: np.ndarray, labels: Mapping[Any, Any]) -> np.ndarray:
    """Indices of the rows whose id has a label, as `id in labels` decides: by np.isin where
    the ids are all numbers, by Arrow's hash where they are all texts, else by Python (a loop
    over 10M ids took 5 s)."""
    keys = list(labels)
    if ids.dtype.kind == "f" and all(type(key) is float for key in keys):
        known = np.array(keys, dtype=float)  # a NaN id is never a label's: NaN equals nothing
        return np.flatnonzero(np.isin(ids, known[~np.isnan(known)]) & ~np.isnan(ids))
    if ids.dtype.kind in "OT" and all(key is None or type(key) is str for key in keys):
        try:  # a lone surrogate has no UTF-8 for Arrow: compared by Python
            texts = arrow_texts(ids)
            if texts is not None:  # a missing id matches a missing label id
                found = pc.is_in(texts, value_set=pa.array(keys, type=pa.string()), skip_nulls=False)
                return np.flatnonzero(found.to_numpy(zero_copy_only=False))
        except UnicodeError:
            pass
    return np.array([i for i, key in enumerate(ids.tolist()) if key in labels], dtype=np.int64)


@dataclass(frozen=True)
class IdsMeasured:
    """All a run reads of the window's ids: which rows have a label (and their targets), and
    the ids that occur more than once. A run measures them before it reads its other columns
    (`ids_measure`, `monitoring.runs.services.run_result`), so that the ids (16 bytes a row)
    and their join are let go before the scores and segments are read."""

    labelled: np.ndarray  # indices of the window's rows whose id has a label
    targets: np.ndarray  # their targets: float64 where the labels are numbers, else Python objects
    duplicates: list[QualityFinding]
    present: bool  # whether the window holds the id column


def ids_measure(
    ids: np.ndarray | None,
    labels: Mapping[Any, Any],
    schema: DataSchema,
    *,
    reorder: bool = False,
    joined: tuple[np.ndarray, np.ndarray] | None = None,
) -> IdsMeasured:
    """The label join and the duplicate count of the window's `ids` (None: the window has no
    id column). `reorder`: the caller lets `ids` go after this, so their duplicates are counted
    by sorting them in place rather than a copy (1.6 GB at 100M rows). `joined`: the join
    already made (`LabelRows.joined`), in which case `labels` are not read."""
    if ids is None:
        return IdsMeasured(np.empty(0, dtype=np.int64), np.empty(0), [], present=False)
    if joined is None:
        joined = labelled_targets(ids, labels) if labels else (np.empty(0, dtype=np.int64), np.empty(0))
    labelled, targets = joined
    if labelled.size == 0:
        targets = np.empty(0)
    return IdsMeasured(labelled, targets, duplicate_findings(schema.id, ids, reorder=reorder), present=True)


def ids_apart(schema: DataSchema, task: str) -> bool:
    """Whether a run reads nothing of the ids but what `ids_measure` measures: not when the id
    is a column the checks read too, nor for a ranking model (its lists are judged by id)."""
    return bool(schema.id) and not _ids_read_by_checks(schema) and task != "ranking"


def _ids_read_by_checks(schema: DataSchema) -> bool:
    """Whether the id column is also a segment, feature, prediction, score or target."""
    return schema.id in {*schema.segments, *schema.features, schema.prediction, schema.score, schema.target}


def compute_run(
    reference: Columns,
    current: Columns,
    *,
    labels: Mapping[str, Any],
    schema: DataSchema,
    task: str,
    policy: Mapping[str, Any],
    kpis: Columns | None = None,
    kpi_baseline: Columns | None = None,
    history: Sequence[int] | None = None,
    feature_parts: Mapping[str, FeaturePart] | None = None,
    sizes: tuple[int, int] | None = None,
    ids: IdsMeasured | None = None,
) -> dict[str, Any]:
    """{"checks": [...], "rows": {...}, "status": worst status}. `labels` maps prediction ids to
    targets; `kpis` and `kpi_baseline` are the KPI rows of the window and of its baseline period;
    `history` the rows of each of the windows of the same length just before this one.
    `feature_parts`: features measured by other workers (`monitoring.runs.parts`), whose columns
    the tables need not hold; the others are measured here. `sizes`: the rows of the reference
    and of the window, when the tables leave out every column (else their columns' length).
    `ids`: the window's ids measured before its other columns were read (`ids_measure`), when
    `current` leaves them out; else they are measured here."""
    enabled = set(policy["checks"])
    reference_rows, current_rows = sizes if sizes is not None else (_rows(reference), _rows(current))
    rows = {"reference": reference_rows, "current": current_rows, "labelled": 0}
    checks: list[dict[str, Any]] = []
    if "volume" not in policy:  # a policy from before volume checks (reproducing an old run)
        if rows["current"] == 0:
            return {"checks": [], "rows": rows, "status": Level.OK, "note": "the window holds no rows"}
    else:
        checks.append(_volume(rows["current"], history or [], policy["volume"]))
        if rows["current"] == 0:  # nothing else can be measured: the missing data is the finding
            return {"checks": checks, "rows": rows, "status": Level.CRITICAL}
    if ids is None:
        ids = ids_measure(current.get(schema.id) if schema.id else None, labels, schema)
    local = {name: kind for name, kind in schema.features.items() if name not in (feature_parts or {})}
    parts = {**features_measure(reference, current, local, policy), **(feature_parts or {})}
    features = [name for name in schema.features if parts[name].present]
    if CheckKind.DATA_QUALITY in enabled:  # older policies: every finding
        checks += _quality(reference, current, schema, policy.get("data_quality", {}), parts, ids)
    if CheckKind.FEATURE_DRIFT in enabled and features:
        checks += _drift_rows(CheckKind.FEATURE_DRIFT, [parts[name].drift for name in features], policy)
        if policy["drift"].get("multivariate"):
            checks += multivariate_checks(reference, current, schema)
    # A ranking model registered before lists were named (no query), or a policy from before
    # ranking metrics: as then.
    ranking = task == "ranking" and "ranking" in policy and bool(schema.query)
    if CheckKind.PREDICTION_DRIFT in enabled:
        outputs = _prediction_columns(schema, task, reference, current)
        if outputs:
            ref = {name: _as_kind(reference[name], kind) for name, kind in outputs.items()}
            cur = {name: _as_kind(current[name], kind) for name, kind in outputs.items()}
            checks += _drift(CheckKind.PREDICTION_DRIFT, ref, cur, outputs, policy)
        if ranking:
            checks += catalogue_checks(reference, current, schema, policy)
    truth = _current_truth(current, ids, schema)
    rows["labelled"] = int(truth[0].size)
    target = schema.target if schema.target and schema.target in reference else None  # the reference's outcomes
    if ranking:  # outcomes per list: labelled rows are the relevant ones, not a distribution to compare
        if CheckKind.PERFORMANCE in enabled and truth[0].size:
            checks += ranking_quality_checks(reference, current, labels, schema, policy)
        target = None
    # Nothing after this reads the ids (unless they are a segment too) or the labels: what was
    # handed over is let go here, before the checks that hold the most (1.6 GB of ids at 100M
    # rows). A run reads them apart (run_result), and this holds nothing of them.
    if not _ids_read_by_checks(schema):
        current = {name: values for name, values in current.items() if name != schema.id}
    labels, ids = {}, None
    if CheckKind.LABEL_DRIFT in enabled and target and truth[0].size >= 30:
        checks += _label_drift(reference, truth, target, task, policy)
    if CheckKind.PERFORMANCE in enabled and target and truth[0].size:
        checks += _performance(reference, truth, target, schema, task, policy)
    if CheckKind.ESTIMATED_PERFORMANCE in enabled and target:
        checks += estimated_checks(reference, current, target, schema, task, policy)
    if CheckKind.KPIS in enabled and kpis and kpi_baseline:
        checks += _kpis(kpis, kpi_baseline, policy, schema.kpi_segments)
    if CheckKind.SEGMENTS in enabled:
        checks += _segments(reference, current, schema, policy)
        if CheckKind.PERFORMANCE in enabled and target and truth[0].size:
            checks += _segment_performance(reference, current, truth, target, schema, task, policy)
    return {"checks": checks, "rows": rows, "status": Level.worst(c["status"] for c in checks).value}


def _rows(columns: Columns) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def rows_per_window(times: np.ndarray, start: dt.datetime, length: dt.timedelta, windows: int) -> list[int]:
    """How many of `times` (datetime64, UTC) fall in each of the `windows` windows of `length`
    just before `start`, oldest first; each window is [its start, its end)."""
    step = length // dt.timedelta(microseconds=1)
    before = np.datetime64(start.astimezone(dt.UTC).replace(tzinfo=None), "us") - times.astype("datetime64[us]")
    ago = before.astype(np.int64)  # microseconds before start
    back = (ago[ago > 0] - 1) // step  # 0: the window just before start
    back = back[back < windows]
    return np.bincount(windows - 1 - back, minlength=windows).astype(int).tolist()


def expected_rows(history: Sequence[int], history_windows: int) -> float | None:
    """The usual rows of a window: the median over the previous windows, once at least
    min(3, history_windows) of them held data (a new model has no usual yet)."""
    recent = list(history)[-history_windows:]
    if sum(1 for rows in recent if rows > 0) < min(3, history_windows):
        return None
    return float(np.median(recent))


def _volume(rows: int, history: Sequence[int], volume: Mapping[str, Any]) -> dict[str, Any]:
    """The window's rows against the usual: an empty window is critical; one under
    warning_share (critical_share) of the usual is a warning (critical)."""
    usual = expected_rows(history, volume["history_windows"])
    share = rows / usual if usual else None
    status = Level.OK
    if rows == 0 or (share is not None and share < volume["critical_share"]):
        status = Level.CRITICAL
    elif share is not None and share < volume["warning_share"]:
        status = Level.WARNING
    return {
        "check": CheckKind.DATA_QUALITY,
        "metric": "rows",
        "value": finite(share) if share is not None else None,
        "count": rows,
        "reference": finite(usual) if usual is not None else None,
        "threshold": volume["warning_share"],
        "status": status,
    }


# Findings about some of a column's values, which a policy may require to hold enough rows; the
# others (a missing column, a type or encoding change, duplicate ids) always count.
VALUE_FINDINGS = (Finding.OUT_OF_RANGE, Finding.EXTREME_VALUE, Finding.NULL_RATE, Finding.NEW_CATEGORY)


def _quality(
    reference: Columns,
    current: Columns,
    schema: DataSchema,
    settings: Mapping[str, Any],
    features: Mapping[str, FeaturePart],
    ids: IdsMeasured,
) -> list[dict]:
    names = [n for n in (*schema.features, schema.prediction) if n not in features]
    ref = {n: reference[n] for n in names if n in reference}
    cur = {n: current[n] for n in names if n in current}
    found = _findings_with(ref, cur, ids.duplicates, features)  # ids: only their duplicates, not a column to compare
    return [
        {
            "check": CheckKind.DATA_QUALITY,
            "feature": f.column,
            "metric": str(f.kind),
            "value": finite(f.share if f.share else f.count),
            "count": f.count,
            "examples": [str(e) for e in f.examples[:3]],
            "status": Level.CRITICAL if f.kind in CRITICAL_FINDINGS else Level.WARNING,
        }
        for f in found
        if (f.column != schema.id or str(f.kind) == "duplicate_id") and _enough(f, settings)
    ]


def _findings_with(
    reference: Columns, current: Columns, duplicates: list[QualityFinding], features: Mapping[str, FeaturePart]
) -> list[QualityFinding]:
    """The table's findings, its feature columns' taken from their parts, then the duplicate ids."""
    columns = {name: column_findings(name, reference[name], current[name]) for name in set(reference) & set(current)}
    columns |= {name: part.findings or [] for name, part in features.items() if part.in_reference and part.in_current}
    on_reference = set(reference) | {name for name, part in features.items() if part.in_reference}
    on_current = set(current) | {name for name, part in features.items() if part.in_current}
    return findings_in_order(on_reference, on_current, columns, duplicates)


def _enough(finding, settings: Mapping[str, Any]) -> bool:
    """Whether a value finding holds the rows and the share the policy asks before it warns."""
    if finding.kind not in VALUE_FINDINGS:
        return True
    return finding.count >= settings.get("min_rows", 1) and finding.share >= settings.get("min_share", 0.0)


def _drift(check: str, reference: Columns, current: Columns, kinds: Mapping[str, str], policy) -> list[dict]:
    reports = drift_measured(
        {n: reference[n] for n in kinds}, {n: current[n] for n in kinds}, kinds, drift_policy(policy)
    )
    return _drift_rows(check, [MeasuredDrift(feature_test(r), r.method) for r in reports], policy)


def _drift_rows(check: str, measured: Sequence[MeasuredDrift | None], policy) -> list[dict]:
    """One row per feature, decided together (family-wise error control across them)."""
    items = [m for m in measured if m is not None]
    decisions = decide([m.test for m in items], drift_policy(policy))
    return [
        {
            "check": check,
            "feature": item.test.feature,
            "metric": item.method.effect,
            "test": item.method.test,
            "value": finite(decision.effect),
            "p_value": finite(decision.adjusted_p_value),
            "threshold": decision.effect_floor,
            "status": _drift_status(item.test.feature, item.method.effect, decision, policy),
        }
        for item, decision in zip(items, decisions, strict=True)
    ]


def _prediction_columns(schema: DataSchema, task: str, reference: Columns, current: Columns) -> dict[str, str]:
    """What prediction drift tests: a classifier's score as a number, and its predicted classes
    as shares (categorical); a regressor's prediction as a number."""
    both = {name for name in (schema.score, schema.prediction) if name and name in reference and name in current}
    columns: dict[str, str] = {}
    if schema.score in both and schema.score != schema.prediction:
        columns[schema.score] = "numerical"
    if schema.prediction in both:
        classes = task == "multiclass_classification" or (task == "binary_classification" and bool(columns))
        columns[schema.prediction] = "categorical" if classes else "numerical"
    return columns


def _as_kind(values: np.ndarray, kind: str) -> np.ndarray:
    """Predicted classes as text (class 1 and class "1" are one category), numbers as they are."""
    if kind != "categorical":
        return values
    return np.array([None if v is None or v != v else str(v) for v in values.tolist()], dtype=object)


def _drift_status(feature: str, effect: str, decision, policy) -> str:
    """critical: drifted (significant and material). warning: significant and at or above a
    warning floor, when the policy sets one for the feature or its effect measure."""
    if decision.drifted:
        return Level.CRITICAL
    drift = policy["drift"]
    warning = drift["features"].get(feature, {}).get("warning_floor", drift["warning_floors"].get(effect))
    if warning is not None and decision.significant and decision.effect >= warning:
        return Level.WARNING
    return Level.OK


def _current_truth(current: Columns, ids: IdsMeasured, schema: DataSchema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(targets, predictions or scores, row indices) of the window's rows that have a label."""
    if ids.labelled.size == 0:
        return ids.targets, np.empty(0), ids.labelled
    return ids.targets, current[schema.score_column(current)][ids.labelled], ids.labelled


def task_metric(task: str, targets: np.ndarray, outputs: np.ndarray) -> tuple[str, float, bool]:
    """(metric, value, higher is better) for the task."""
    if task == "binary_classification":
        return "roc_auc", binary_roc_auc(targets.astype(float), outputs.astype(float)), True
    if task == "multiclass_classification":
        return "accuracy", multiclass_performance(_texts(targets), _texts(outputs)).accuracy, True
    return "rmse", regression_performance(targets.astype(float), outputs.astype(float)).rmse, False


def _texts(values: np.ndarray) -> np.ndarray:
    """Class labels as text in an object array (a fixed-width one would take rows times the
    longest label). Numbers are written once per distinct value (by their bits: 0.0 and -0.0
    read apart, as str() reads them) and shared by their rows."""
    values = np.asarray(values)
    if values.dtype == np.float64:
        distinct, where = np.unique(values.view(np.uint64), return_inverse=True)
        return np.array([str(v) for v in distinct.view(np.float64).tolist()], dtype=object)[where]
    return np.array([str(v) for v in values], dtype=object)


def _known(outcomes: np.ndarray) -> np.ndarray:
    """Which rows have an outcome (neither None nor NaN)."""
    outcomes = np.asarray(outcomes)
    if outcomes.dtype.kind == "f":
        return ~np.isnan(outcomes)
    if outcomes.dtype.kind in "iub":
        return np.ones(outcomes.shape, dtype=np.bool_)
    return np.array([t is not None and t == t for t in outcomes], dtype=np.bool_)


def _performance(reference: Columns, truth, target: str, schema: DataSchema, task: str, policy) -> list[dict]:
    targets, outputs, _ = truth
    score_column = schema.score_column(reference)
    known = _known(reference[target])
    if known.sum() < 2 or len(set(targets.tolist())) < 2:
        return []
    rows = every_row_or(known)
    name, before, higher_is_better = task_metric(task, reference[target][rows], reference[score_column][rows])
    _, after, _ = task_metric(task, targets, outputs)
    drop = before - after if higher_is_better else _relative_rise(before, after)
    return [graded(CheckKind.PERFORMANCE, name, after, before, drop, policy, {"labelled_rows": int(targets.size)})]


def _label_drift(reference: Columns, truth, target: str, task: str, policy) -> list[dict]:
    """Has the distribution of outcomes moved (prior or label shift)?"""
    targets = truth[0]
    outcomes = np.asarray(reference[target])
    if outcomes.dtype != np.float64:  # as Python objects, as the labels' side holds them
        outcomes = outcomes.astype(np.object_)
    before = outcomes[_known(outcomes)]
    kind = "numerical" if task in ("regression", "ranking") else "categorical"
    if kind == "numerical":
        ref, cur = before.astype(float), np.asarray(targets, dtype=float)
    else:
        ref, cur = _texts(before), _texts(targets)
    return _drift(CheckKind.LABEL_DRIFT, {target: ref}, {target: cur}, {target: kind}, policy)


def _kpis(current: Columns, baseline: Columns, policy, segments: Sequence[str] = ()) -> list[dict]:
    """Each KPI against its baseline period, as a whole and in each segment the rows carry (a
    segment value with at least segments.min_support events, by count, in both periods). A
    segment's drop is graded only when it is also significant: beyond z standard errors of the
    difference of the two means, z with Bonferroni's correction for the segments compared."""
    settings = policy["kpis"]
    support = policy["segments"]["min_support"]
    checks: list[dict] = []
    compared: list[tuple[dict, float, float]] = []
    for name in sorted(set(current["kpi"].tolist()) & set(baseline["kpi"].tolist())):
        now_rows, before_rows = current["kpi"] == name, baseline["kpi"] == name
        judged = _kpi_judged(name, _kpi_mean(current, now_rows), _kpi_mean(baseline, before_rows), settings)
        checks += [judged] if judged else []
        for column in segments:
            if column not in current or column not in baseline:
                continue
            now_keys, before_keys = _texts_or_none(current[column]), _texts_or_none(baseline[column])
            for value in sorted(set(now_keys[now_rows].tolist()) - {None}):
                now_here, before_here = now_rows & (now_keys == value), before_rows & (before_keys == value)
                if min(_kpi_weight(current, now_here), _kpi_weight(baseline, before_here)) < support:
                    continue
                now, before = _kpi_mean(current, now_here), _kpi_mean(baseline, before_here)
                judged = _kpi_judged(name, now, before, settings)
                if judged:
                    gap = now - before if name in settings["lower_is_better"] else before - now
                    spread = _kpi_mean_variance(current, now_here) + _kpi_mean_variance(baseline, before_here)
                    compared.append(({**judged, "segment": f"{column}={value}"}, gap, spread))
    z = float(norm.ppf(1 - 0.025 / max(len(compared), 1)))
    for check, gap, spread in compared:
        if check["status"] != Level.OK and not significant_gap(gap, spread, 0.0, z=z):
            check["status"] = Level.OK  # within chance for this many events: perhaps material, not established
        checks.append(check)
    return checks


def _kpi_mean_variance(rows: Columns, mask: np.ndarray) -> float:
    """The variance of a KPI's mean over the rows in `mask`: binomial for a rate (values within
    [0, 1] with counts: each row a share of its events), else the rows' spread over their number;
    NaN with a single row of a KPI that is not a rate (then nothing is significant)."""
    values = np.asarray(rows["value"], dtype=float)[mask]
    weights = np.asarray(rows["count"], dtype=float)[mask] if "count" in rows else np.ones(values.size)
    weights = np.where(np.isfinite(weights), weights, 1.0)
    mean = float(np.average(values, weights=weights)) if weights.sum() > 0 else math.nan
    if "count" in rows and values.size and values.min() >= 0 and values.max() <= 1:
        return mean * (1 - mean) / weights.sum()
    if values.size < 2:
        return math.nan
    spread = float(np.average((values - mean) ** 2, weights=weights)) * values.size / (values.size - 1)
    return spread / values.size


def _kpi_judged(name: str, now: float, before: float, settings: Mapping[str, Any]) -> dict | None:
    if before == 0 or not (math.isfinite(now) and math.isfinite(before)):
        return None
    change = (now - before) / abs(before)
    drop = change if name in settings["lower_is_better"] else -change
    status = (
        Level.CRITICAL
        if drop >= settings["critical_drop"]
        else Level.WARNING
        if drop >= settings["warning_drop"]
        else Level.OK
    )
    return {
        "check": CheckKind.KPIS,
        "metric": name,
        "value": finite(now),
        "reference": finite(before),
        "drop": finite(drop),
        "threshold": settings["critical_drop"],
        "status": status,
    }


def _texts_or_none(values: np.ndarray) -> np.ndarray:
    """Segment values as text, None where a row has none."""
    return np.array([None if v is None or v != v else str(v) for v in values.tolist()], dtype=object)


def _kpi_weight(rows: Columns, mask: np.ndarray) -> float:
    """How many events the rows stand for: their counts, or one each."""
    if "count" not in rows:
        return float(mask.sum())
    counts = np.asarray(rows["count"], dtype=float)[mask]
    return float(np.where(np.isfinite(counts), counts, 1.0).sum())


def _kpi_mean(rows: Columns, mask: np.ndarray) -> float:
    """The mean of the KPI rows in `mask`, weighted by each row's count when there is one."""
    values = np.asarray(rows["value"], dtype=float)[mask]
    weights = np.asarray(rows["count"], dtype=float)[mask] if "count" in rows else np.ones(values.size)
    weights = np.where(np.isfinite(weights), weights, 1.0)
    return float(np.average(values, weights=weights)) if weights.sum() > 0 else float("nan")


def _relative_rise(before: float, after: float) -> float:
    """How much an error metric grew, as a share of what it was."""
    return (after - before) / before if before else 0.0


def _segments(reference: Columns, current: Columns, schema: DataSchema, policy) -> list[dict]:
    settings = policy["segments"]
    checks = []
    for column in schema.segments:
        if column not in reference or column not in current:
            continue
        ref_keys = segment_cohorts({column: reference[column]})
        cur_keys = segment_cohorts({column: current[column]})
        for share in segment_shift(ref_keys, cur_keys):
            if share.new and share.current_share >= settings["new_share"]:
                checks.append(
                    {
                        "check": CheckKind.SEGMENTS,
                        "segment": share.segment,
                        "metric": "new_segment_share",
                        "value": finite(share.current_share),
                        "reference": finite(share.reference_share),
                        "threshold": settings["new_share"],
                        "status": Level.WARNING,
                    }
                )
        checks += _segment_prediction_drift(reference, current, ref_keys, cur_keys, schema, policy)
    return checks


def _segment_prediction_drift(reference, current, ref_keys, cur_keys, schema: DataSchema, policy) -> list[dict]:
    """Within each segment with enough rows on both sides: how far the predictions moved
    (normed Wasserstein), so a problem confined to one cohort shows where it is."""
    output = schema.score_column(current)  # the score when there is one, not the predicted class
    if output not in reference or output not in current:
        return []
    ref_scores = np.asarray(reference[output], dtype=float)
    cur_scores = np.asarray(current[output], dtype=float)
    if not (np.issubdtype(ref_scores.dtype, np.floating) and np.issubdtype(cur_scores.dtype, np.floating)):
        return []
    settings = policy["segments"]
    default_floor = settings["prediction_drift_floor"]

    def effect(ref_rows: np.ndarray, cur_rows: np.ndarray) -> float:
        before, after = ref_scores[ref_rows], cur_scores[cur_rows]
        # Mostly every score is known: no second copy of a segment's (400 MB for half of 100M rows).
        before, after = before[every_row_or(np.isfinite(before))], after[every_row_or(np.isfinite(after))]
        return wasserstein_normed(before, after) if before.size and after.size else float("nan")

    ranked = rank_by_drift(ref_keys, cur_keys, effect, min_support=policy["segments"]["min_support"])
    return [
        {
            "check": CheckKind.SEGMENTS,
            "segment": change.segment,
            "metric": "prediction_drift",
            "value": finite(change.change),
            "threshold": settings["floors"].get(change.segment, default_floor),
            "status": Level.WARNING
            if change.change >= settings["floors"].get(change.segment, default_floor)
            else Level.OK,
        }
        for change in ranked
        if change.change is not None and math.isfinite(change.change)
    ]


def _segment_performance(reference, current, truth, target: str, schema: DataSchema, task: str, policy) -> list[dict]:
    """Realized performance within each segment of the window with `min_support` labelled rows,
    against the same segment in the reference, or, for a segment the reference never had (a new
    cohort), against the reference population as a whole. A gap is graded only when it is both
    material (the policy's drops) and significant: larger than z standard errors of the
    difference (DeLong's variance for an AUC, the binomial one for an accuracy), z with
    Bonferroni's correction for the number of cohorts compared. Each figure carries its 95 %
    interval (lower, upper)."""
    score = schema.score_column(current)
    targets, _, labelled = truth
    known = every_row_or(_known(reference[target]))
    support = policy["segments"]["min_support"]
    whole = _figure(task, reference[target][known], reference[score][known])
    checks: list[dict] = []
    compared: list[tuple[dict, float, float]] = []
    cohorts: dict[str, _Cohort] = {}
    for column in schema.segments:
        if column not in reference or column not in current:
            continue
        before_rows = segment_rows(segment_keys({column: np.asarray(reference[column], dtype=object)[known]}))
        after_rows = segment_rows(segment_keys({column: np.asarray(current[column], dtype=object)[labelled]}))
        for segment, rows in sorted(after_rows.items()):
            if rows.size < support:
                continue
            after = _figure(task, targets[rows], current[score][labelled][rows])
            ref_rows = before_rows.get(segment)
            if ref_rows is None:  # a new cohort: against the reference population as a whole
                before = whole
            elif ref_rows.size >= support:
                before = _figure(task, reference[target][known][ref_rows], reference[score][known][ref_rows])
            else:
                continue  # too few reference rows to compare with, and not new either
            if not (math.isfinite(before.value) and math.isfinite(after.value)):
                continue
            drop = before.value - after.value if before.higher_is_better else _relative_rise(before.value, after.value)
            extra = {"segment": segment, "labelled_rows": int(rows.size), **after.interval()}
            check = graded(CheckKind.SEGMENTS, before.metric, after.value, before.value, drop, policy, extra)
            gap = before.value - after.value if before.higher_is_better else after.value - before.value
            compared.append((check, gap, before.variance + after.variance))
            cohorts[segment] = _Cohort(check, rows, before, gap)
    # Many cohorts compared at once: Bonferroni's bound keeps a chance gap in one of them from
    # being called real (95 % over all of them, one-sided).
    z = float(norm.ppf(1 - 0.025 / max(len(compared), 1)))
    for check, gap, variance in compared:
        if check["status"] != Level.OK and not significant_gap(gap, variance, 0.0, z=z):
            check["status"] = Level.OK  # within chance: perhaps material, not established
        checks.append(check)
    _attribute(cohorts, targets, current[score][labelled], task, policy, z)
    return sorted(checks, key=lambda c: -(c["drop"] or 0))


@dataclass
class _Cohort:
    check: dict
    rows: np.ndarray  # among the window's labelled rows
    before: _Figure
    gap: float


def _attribute(
    cohorts: dict[str, _Cohort], targets: np.ndarray, outputs: np.ndarray, task: str, policy, z: float
) -> None:
    """Overlapping cohorts (a new region, and the plans its customers hold) share one gap. The
    failing cohorts are taken by share of the window × gap (the smaller first on a tie); of two
    that overlap, one whose rows outside the other no longer fall short (materially and
    significantly) is explained by it and set back to ok; when each explains the other, the
    more specific (smaller) one stays named."""
    failing = [c for c in cohorts.values() if c.check["status"] != Level.OK]
    ranked = sorted(failing, key=lambda c: (-(c.rows.size * c.gap), c.rows.size))
    cleared: set[int] = set()
    for named in ranked:
        for other in ranked:
            if id(named) in cleared:
                break
            if other is named or id(other) in cleared or not np.intersect1d(other.rows, named.rows).size:
                continue
            other_alone = _still_short(
                np.setdiff1d(other.rows, named.rows), other.before, targets, outputs, task, policy, z
            )
            named_alone = _still_short(
                np.setdiff1d(named.rows, other.rows), named.before, targets, outputs, task, policy, z
            )
            if not other_alone and (named_alone or other.rows.size >= named.rows.size):
                explained = other
            elif not named_alone:
                explained = named
            else:
                continue  # each falls short on its own: both are named
            explained.check["status"] = Level.OK
            cleared.add(id(explained))


def _still_short(rows: np.ndarray, before: _Figure, targets, outputs, task: str, policy, z: float) -> bool:
    """Whether these rows alone still fall materially and significantly short of `before`."""
    if rows.size < policy["segments"]["min_support"]:
        return False
    after = _figure(task, targets[rows], outputs[rows])
    if not math.isfinite(after.value):  # one class left: no figure
        return False
    gap = before.value - after.value if before.higher_is_better else after.value - before.value
    drop = gap if before.higher_is_better else _relative_rise(before.value, after.value)
    if policy["performance"].get("mode") == "relative" and before.higher_is_better and before.value:
        drop /= abs(before.value)  # as `graded` judges it
    material = drop >= policy["performance"]["warning_drop"]
    return material and significant_gap(gap, before.variance + after.variance, 0.0, z=z)


@dataclass(frozen=True)
class _Figure:
    metric: str
    value: float
    higher_is_better: bool
    variance: float  # of the estimate; NaN when unknown (then nothing is significant)

    def interval(self) -> dict[str, float | None]:
        if not math.isfinite(self.variance):
            return {}
        half = Z_95 * math.sqrt(self.variance)
        low, high = self.value - half, self.value + half
        if self.metric in ("roc_auc", "accuracy"):
            low, high = max(low, 0.0), min(high, 1.0)
        return {"lower": finite(low), "upper": finite(high)}


def _figure(task: str, targets: np.ndarray, outputs: np.ndarray) -> _Figure:
    """The task's figure with its variance; a cohort holding one class only has no AUC (NaN)."""
    if task == "binary_classification":  # the AUC and its variance from one ranking of the scores
        auc, variance = auc_with_variance(targets.astype(float) == 1, outputs.astype(float))
        return _Figure("roc_auc", auc, True, variance)
    metric, value, higher = task_metric(task, targets, outputs)
    # RMSE has no interval yet, so a segment's RMSE is never called significant.
    variance = rate_variance(round(value * targets.size), targets.size) if metric == "accuracy" else math.nan
    return _Figure(metric, value, higher, variance)
