"""Data-quality findings: what an engineer checks before believing any drift figure.

Tables are mappings of column name to a 1-D numpy array (numerical: float, NaN for missing;
categorical: object or str, None or NaN for missing). Each finding is structured: kind, column,
counts, share and a few examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitoring.stats.categories import arrow_texts, count_categories
from monitoring.stats.univariate import reference_bounds

Table = Mapping[str, np.ndarray]
EXAMPLES = 5
NULL_RATE_INCREASE = 0.05  # flag a null rate that grows by 5 points or more
CARDINALITY_RATIO = 2.0  # flag distinct values that double or halve
# Most rows hold values the reference never had while most reference values vanished: the same
# things under other names (names become codes, a vocabulary is renamed), not a new population.
ENCODING_NEW_ROWS = 0.5
ENCODING_VANISHED = 0.5


class Finding(StrEnum):
    MISSING_COLUMN = "missing_column"
    NEW_COLUMN = "new_column"
    TYPE_CHANGE = "type_change"
    NULL_RATE = "null_rate"
    OUT_OF_RANGE = "out_of_range"
    EXTREME_VALUE = "extreme_value"
    ALL_MISSING = "all_missing"
    NEW_CATEGORY = "new_category"
    VANISHED_CATEGORY = "vanished_category"
    CARDINALITY_CHANGE = "cardinality_change"
    CONSTANT = "constant"
    DUPLICATE_ID = "duplicate_id"
    ENCODING_CHANGE = "encoding_change"


@dataclass(frozen=True)
class QualityFinding:
    kind: Finding
    column: str
    count: int = 0
    share: float = 0.0
    examples: tuple = field(default_factory=tuple)
    detail: str = ""


def _kind(values: np.ndarray) -> str:
    return "numerical" if np.issubdtype(values.dtype, np.number) or values.dtype == bool else "categorical"


def _missing(values: np.ndarray) -> np.ndarray:
    if _kind(values) == "numerical":
        return ~np.isfinite(values.astype(float, copy=False))  # a copy of a 100M-row column is 800 MB
    try:  # Arrow reads None and NaN as null, without a Python loop over the rows
        return np.asarray(pa.array(values, from_pandas=True).is_null().to_numpy(zero_copy_only=False), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return np.array([v is None or (isinstance(v, float) and v != v) for v in values], dtype=bool)


def _constant(values: np.ndarray) -> bool:
    """Exactly one distinct value (of present values); by min and max, or Arrow's hash, not a sort."""
    if values.size == 0:
        return False
    if _kind(values) == "numerical":
        return bool(np.min(values) == np.max(values))
    try:
        return len(pc.unique(pa.array(values, from_pandas=True))) == 1
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return len({str(v) for v in values}) == 1


def quality_findings(
    reference: Table,
    current: Table,
    *,
    id_column: str | None = None,
    range_quantiles: tuple[float, float] = (0.0, 1.0),
) -> list[QualityFinding]:
    """Schema differences, then per common column: null rate and its change, values outside the
    reference range (or quantile range), new and vanished categories, cardinality change,
    constant columns; and duplicate ids."""
    columns = {
        name: column_findings(name, reference[name], current[name], range_quantiles)
        for name in set(reference) & set(current)
    }
    duplicates = (
        duplicate_findings(id_column, current[id_column]) if id_column is not None and id_column in current else []
    )
    return findings_in_order(set(reference), set(current), columns, duplicates)


def findings_in_order(
    reference: set[str],
    current: set[str],
    columns: Mapping[str, list[QualityFinding]],
    duplicates: list[QualityFinding],
) -> list[QualityFinding]:
    """The findings of a whole table from its columns' (`columns`: each column both sides hold),
    in the order a reader expects: schema differences, then by column, then duplicate ids. Runs
    split over workers measure columns apart and join them here."""
    findings = [
        QualityFinding(Finding.MISSING_COLUMN, name, detail="in the reference, not in current")
        for name in sorted(reference - current)
    ]
    findings += [
        QualityFinding(Finding.NEW_COLUMN, name, detail="in current, not in the reference")
        for name in sorted(current - reference)
    ]
    for name in sorted(reference & current):
        findings += columns[name]
    return findings + duplicates


def column_findings(name: str, ref: np.ndarray, cur: np.ndarray, quantiles=(0.0, 1.0)) -> list[QualityFinding]:
    """One column's findings, measured on both sides."""
    if _kind(ref) != _kind(cur):
        return [QualityFinding(Finding.TYPE_CHANGE, name, detail=f"{_kind(ref)} in the reference, {_kind(cur)} now")]
    findings = []
    ref_missing, cur_missing = _missing(ref), _missing(cur)
    ref_rate = float(ref_missing.mean()) if ref.size else 0.0
    cur_rate = float(cur_missing.mean()) if cur.size else 0.0
    if cur_rate - ref_rate >= NULL_RATE_INCREASE:
        findings.append(
            QualityFinding(
                Finding.NULL_RATE,
                name,
                int(cur_missing.sum()),
                cur_rate,
                detail=f"null rate {ref_rate:.1%} -> {cur_rate:.1%}",
            )
        )
    ref_present, cur_present = _present(ref, ref_missing), _present(cur, cur_missing)
    if cur.size and not cur_present.size:
        findings.append(
            QualityFinding(Finding.ALL_MISSING, name, int(cur.size), 1.0, detail="no row of the window has a value")
        )
    if _constant(cur_present) and ref_present.size and not _constant(ref_present):
        findings.append(
            QualityFinding(
                Finding.CONSTANT,
                name,
                int(cur_present.size),
                1.0,
                examples=(cur_present[0].item() if hasattr(cur_present[0], "item") else cur_present[0],),
            )
        )
    if _kind(ref) == "numerical":
        findings += _out_of_range(
            name, ref_present.astype(float, copy=False), cur_present.astype(float, copy=False), quantiles
        )
    else:
        findings += _categories(name, ref_present, cur_present)
    return findings


def _present(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The values that are there: the column itself, not a copy, when none is missing."""
    return values[~missing] if missing.any() else values


def _out_of_range(name: str, ref: np.ndarray, cur: np.ndarray, quantiles) -> list[QualityFinding]:
    """Values outside the reference range; and, apart, extreme ones beyond `reference_bounds`
    (drift effects count those at the bound)."""
    if not ref.size or not cur.size:
        return []
    findings = []
    low, high = np.quantile(ref, quantiles)
    outside = (cur < low) | (cur > high)
    if count := int(outside.sum()):
        examples = tuple(float(v) for v in cur[outside][:EXAMPLES])
        detail = f"outside the reference range [{low:g}, {high:g}]"
        findings.append(QualityFinding(Finding.OUT_OF_RANGE, name, count, count / cur.size, examples, detail))
    far_low, far_high = reference_bounds(ref)
    extreme = (cur < far_low) | (cur > far_high)
    if count := int(extreme.sum()):
        examples = tuple(float(v) for v in cur[extreme][:EXAMPLES])
        detail = f"beyond [{far_low:g}, {far_high:g}], one reference span past its range"
        findings.append(QualityFinding(Finding.EXTREME_VALUE, name, count, count / cur.size, examples, detail))
    return findings


def _categories(name: str, ref: np.ndarray, cur: np.ndarray) -> list[QualityFinding]:
    """Counted on category keys (count_categories), not by comparing values row by row."""
    findings = []
    ref_counts, cur_counts = count_categories(ref), count_categories(cur)
    ref_values, cur_values = set(ref_counts.categories.tolist()), set(cur_counts.categories.tolist())
    new = sorted(cur_values - ref_values, key=str)
    if new:
        rows = int(cur_counts.counts[np.isin(cur_counts.categories, new)].sum())
        findings.append(
            QualityFinding(
                Finding.NEW_CATEGORY,
                name,
                rows,
                rows / cur.size,
                tuple(new[:EXAMPLES]),
                f"{len(new)} categories the reference never had",
            )
        )
    vanished = sorted(ref_values - cur_values, key=str)
    if vanished and cur.size:
        findings.append(
            QualityFinding(
                Finding.VANISHED_CATEGORY,
                name,
                len(vanished),
                examples=tuple(vanished[:EXAMPLES]),
                detail=f"{len(vanished)} reference categories absent now",
            )
        )
    if new and vanished and cur.size:
        new_rows = int(cur_counts.counts[np.isin(cur_counts.categories, new)].sum()) / cur.size
        if new_rows > ENCODING_NEW_ROWS and len(vanished) / len(ref_values) >= ENCODING_VANISHED:
            findings.append(
                QualityFinding(
                    Finding.ENCODING_CHANGE,
                    name,
                    round(new_rows * cur.size),
                    new_rows,
                    tuple(new[:EXAMPLES]),
                    f"{new_rows:.0%} of rows hold values the reference never had and {len(vanished)} of its "
                    f"{len(ref_values)} values vanished: a change of encoding, not of the population",
                )
            )
    if ref_values and cur_values:
        ratio = len(cur_values) / len(ref_values)
        if ratio >= CARDINALITY_RATIO or ratio <= 1 / CARDINALITY_RATIO:
            findings.append(
                QualityFinding(
                    Finding.CARDINALITY_CHANGE,
                    name,
                    len(cur_values),
                    detail=f"{len(ref_values)} distinct values -> {len(cur_values)}",
                )
            )
    return findings


def _repeated_texts(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(the values that occur more than once, sorted; their counts), counted by Arrow's hash."""
    tallies = pc.value_counts(texts.drop_null())
    repeated = pc.greater(tallies.field("counts"), 1)
    values = pc.filter(tallies.field("values"), repeated).to_pylist()
    counts = pc.filter(tallies.field("counts"), repeated).to_numpy().astype(np.int64)
    order = sorted(range(len(values)), key=values.__getitem__)  # as Python orders strings
    return np.array([values[i] for i in order], dtype=object), counts[np.array(order, dtype=np.int64)]


def _compact_without_nul(ids: np.ndarray, chunk: int = 1_000_000) -> bool:
    """numpy's compact strings (None for missing), none holding a NUL: numpy compares and sorts
    those correctly, but its array comparison read "a\x001" and "a\x002" as equal here (numpy
    2.4). Checked by Arrow a chunk at a time (0.3 s for 10M ids)."""
    if not isinstance(ids.dtype, np.dtypes.StringDType) or getattr(ids.dtype, "na_object", "") is not None:
        return False
    return not any(
        pc.any(pc.match_substring(pa.array(ids[start : start + chunk]), "\x00")).as_py()
        for start in range(0, ids.size, chunk)
    )


def _repeated_compact_texts(ids: np.ndarray, *, reorder: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(the values that occur more than once, sorted; their counts), from numpy's compact
    strings by sorting them: 16 bytes an id, where Arrow's hash table of every distinct id held
    some 150 (3.2 GB at 20M ids, `bench/combine_memory.py`); sorted in place when the caller
    allows it (`reorder`), else a copy. Code point order is Python's order of strings."""
    missing = ids == None  # noqa: E711 - numpy's element-wise test for its missing strings
    ordered = ids[~missing] if missing.any() else ids if reorder else ids.copy()
    del missing
    ordered.sort()
    repeats = np.flatnonzero(ordered[1:] == ordered[:-1])  # ordered[i] == ordered[i + 1]
    if not repeats.size:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    # A value held n times makes a run of n - 1 positions; different values' runs never touch.
    starts = np.flatnonzero(np.r_[True, np.diff(repeats) != 1])
    counts = np.diff(np.r_[starts, repeats.size]) + 1
    return np.array(ordered[repeats[starts]].tolist(), dtype=object), counts.astype(np.int64)


def duplicate_findings(name: str, ids: np.ndarray, *, reorder: bool = False) -> list[QualityFinding]:
    """Ids that occur more than once. `reorder`: the caller lets `ids` go after this, so they
    may be sorted in place."""
    if ids.dtype.kind in "iuf":
        values, counts = np.unique(ids, return_counts=True)
    elif _compact_without_nul(ids):
        values, counts = _repeated_compact_texts(ids, reorder=reorder)
    elif (texts := arrow_texts(ids)) is not None:
        values, counts = _repeated_texts(texts)  # the few repeated ones: no need to sort them all
    else:  # mixed objects: counted on their text
        counted = count_categories(ids)
        values, counts = counted.categories, counted.counts
    repeated = values[counts > 1]
    if not repeated.size:
        return []
    rows = int(counts[counts > 1].sum())
    examples = tuple(v.item() if hasattr(v, "item") else v for v in repeated[:EXAMPLES])
    return [
        QualityFinding(
            Finding.DUPLICATE_ID, name, rows, rows / ids.size, examples, f"{repeated.size} ids appear more than once"
        )
    ]
