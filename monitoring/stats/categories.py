"""Counting the categories of a column, exactly and fast.

`np.unique` over a million strings sorts strings (~50 ms for one character, ~130 ms for ten).
Fixed-width strings are bytes, so we count integer keys instead: a string of at most 8 bytes
*is* its key; longer ones get a 64-bit hash, and the grouping is then checked against the
strings themselves, falling back to `np.unique` on a collision. Arrow arrays (what Parquet
batches load as) and object arrays are counted by Arrow's hash kernel. Missing values (None,
NaN, Arrow nulls) are counted, never folded into a category.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MIX = np.uint64(0x9E3779B97F4A7C15)
_WORD_TYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


@dataclass(frozen=True)
class CategoryCounts:
    categories: np.ndarray  # sorted, str
    counts: np.ndarray  # int64, aligned with categories
    missing: int

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.missing


def count_categories(values: np.ndarray | pa.Array | pa.ChunkedArray) -> CategoryCounts:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return _arrow_counts(values)
    values = np.asarray(values)
    if values.dtype.kind in "US":
        return _fixed_width_counts(values)
    if values.dtype.kind == "O":
        counted = _text_counts_by_piece(values)
        if counted is not None:
            return counted
        try:
            return _arrow_counts(pa.array(values, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return _object_counts(values)
    if values.dtype.kind == "f":
        present = values[~np.isnan(values)]
        categories, counts = np.unique(present, return_counts=True)
        return CategoryCounts(categories.astype(str), counts, int(values.size - present.size))
    categories, counts = np.unique(values, return_counts=True)
    return CategoryCounts(categories.astype(str), counts, 0)


def arrow_texts(values: np.ndarray) -> pa.Array | None:
    """Arrow text, when every value is a string or missing (not bytes, not numbers); else None."""
    try:
        texts = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return texts if texts.type == pa.string() else None


def align(left: CategoryCounts, right: CategoryCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of both category sets, and each side's counts over it (0 where absent)."""
    categories = np.union1d(left.categories, right.categories)
    return categories, _spread(left, categories), _spread(right, categories)


def _spread(side: CategoryCounts, categories: np.ndarray) -> np.ndarray:
    counts = np.zeros(categories.size, dtype=np.int64)
    counts[np.searchsorted(categories, side.categories)] = side.counts
    return counts


def _fixed_width_counts(values: np.ndarray) -> CategoryCounts:
    values = np.ascontiguousarray(values.ravel())
    n, width = values.size, values.dtype.itemsize
    if n == 0 or width == 0:  # nothing, or only empty strings
        categories = np.array([""] if n else [], dtype=str)
        return CategoryCounts(categories, np.array([n] if n else [], dtype=np.int64), 0)
    if width in _WORD_TYPES:  # the string is its own key
        unique_keys, counts = np.unique(values.view(_WORD_TYPES[width]), return_counts=True)
        return _sorted(unique_keys.view(values.dtype).astype(str), counts)
    words = -(-width // 8)
    keys = np.zeros((n, words * 8), dtype=np.uint8)
    keys[:, :width] = values.view(np.uint8).reshape(n, width)
    keys = keys.view(np.uint64)
    if words == 1:
        unique_keys, counts = np.unique(keys[:, 0], return_counts=True)
        as_bytes = unique_keys.view(np.uint8).reshape(-1, 8)[:, :width]
        categories = np.ascontiguousarray(as_bytes).view(values.dtype).ravel()
        return _sorted(categories.astype(str), counts)
    hashed = _hash_rows(keys)
    unique_hashes, counts = np.unique(hashed, return_counts=True)
    group = np.searchsorted(unique_hashes, hashed)
    first = np.empty(unique_hashes.size, dtype=np.int64)
    first[group[::-1]] = np.arange(n - 1, -1, -1)  # the last write per group is its first row
    representatives = values[first]
    if not np.array_equal(representatives[group], values):  # a 64-bit collision: count exactly
        categories, counts = np.unique(values, return_counts=True)
        return CategoryCounts(categories.astype(str), counts, 0)
    return _sorted(representatives.astype(str), counts)


def _hash_rows(words: np.ndarray) -> np.ndarray:
    hashed = np.zeros(words.shape[0], dtype=np.uint64)
    for column in range(words.shape[1]):
        hashed ^= words[:, column]
        hashed *= _MIX
        hashed ^= hashed >> np.uint64(29)
    return hashed


def _arrow_counts(values: pa.Array | pa.ChunkedArray) -> CategoryCounts:
    missing = values.null_count
    if pa.types.is_floating(values.type):
        missing += int(pc.sum(pc.is_nan(values)).as_py() or 0)
        values = pc.filter(values, pc.invert(pc.is_nan(values)))
    tallies = pc.value_counts(values.drop_null())
    categories = np.array([str(v) for v in tallies.field("values").to_pylist()], dtype=str)
    counts = tallies.field("counts").to_numpy().astype(np.int64)
    return _sorted(categories, counts, missing)


COUNT_PIECE_ROWS = 1 << 20  # objects made Arrow text at a time to be counted


def _text_counts_by_piece(values: np.ndarray) -> CategoryCounts | None:
    """The counts of objects that are all texts or missing, made Arrow text a piece at a time
    and each piece's tallies summed: at 100M rows the whole column as Arrow text held some
    1 GB. The sums are exact, and `_sorted` orders the categories whatever order they come in.
    None: a column of one piece, or a piece that is not all text (counted whole, as before)."""
    if values.size <= COUNT_PIECE_ROWS:
        return None
    tallies: list[pa.StructArray] = []
    missing = 0
    for start in range(0, values.size, COUNT_PIECE_ROWS):
        try:
            piece = pa.array(values[start : start + COUNT_PIECE_ROWS], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if not (pa.types.is_string(piece.type) or pa.types.is_null(piece.type)):
            return None
        missing += piece.null_count
        tallies.append(pc.value_counts(piece.drop_null().cast(pa.string())))
    summed = (
        pa.table(
            {
                "value": pa.chunked_array([tally.field("values") for tally in tallies], type=pa.string()),
                "count": pa.chunked_array([tally.field("counts") for tally in tallies], type=pa.int64()),
            }
        )
        .group_by("value")
        .aggregate([("count", "sum")])
    )
    categories = np.array(summed.column("value").to_pylist(), dtype=str)
    return _sorted(categories, summed.column("count_sum").to_numpy().astype(np.int64), missing)


def _object_counts(values: np.ndarray) -> CategoryCounts:
    """Mixed objects (numbers and texts), counted on their text as str() gives it; never as a
    fixed-width array, whose size would be rows times the longest value."""
    texts = [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]
    return _arrow_counts(pa.array(texts, type=pa.string()))


def _sorted(categories: np.ndarray, counts: np.ndarray, missing: int = 0) -> CategoryCounts:
    order = np.argsort(categories, kind="stable")
    categories, counts = categories[order], counts[order]
    if categories.size > 1 and np.any(categories[1:] == categories[:-1]):  # e.g. 1 and "1" in one column
        merged, where = np.unique(categories, return_inverse=True)
        return CategoryCounts(merged, np.bincount(where, weights=counts).astype(np.int64), missing)
    return CategoryCounts(categories, counts, missing)
