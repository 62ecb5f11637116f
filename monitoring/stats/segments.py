"""Segments (cohorts): keys from segment columns, their share shift, per-segment metrics and
the ranking of segments by drift or by performance drop, with a minimum support throughout."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def segment_keys(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """One key per row from one or more segment columns: "region=north" or "region=north|plan=pro".

    An object array whose items share the few distinct key strings: memory grows with the rows
    and the distinct values, never with rows times the longest value (as fixed-width text would)."""
    keys: np.ndarray | None = None
    for name in sorted(columns):
        labels, codes = _factorized(columns[name])
        part = np.array([f"{name}={label}" for label in labels], dtype=object)[codes]
        keys = part if keys is None else keys + "|" + part
    return keys if keys is not None else np.empty(0, dtype=object)


FACTORIZE_ROWS = 1 << 20  # rows made Arrow text at a time


def _factorized(values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(distinct values as text, in the order they first occur, then "None"; the index of each
    row's value, int32); a missing value reads "None". A piece at a time: at 100M rows the
    whole column as Arrow text, its dictionary's indices and their copies held some 21 bytes a
    row; this holds the codes (4) and one piece."""
    values = np.asarray(values, dtype=object)
    try:
        return _factorized_pieces(values, lambda piece: pa.array(piece, type=pa.string(), from_pandas=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers or other objects: their text, as str() gives it
        return _factorized_pieces(
            values, lambda piece: pa.array([None if v is None else str(v) for v in piece], type=pa.string())
        )


def _factorized_pieces(values: np.ndarray, texts: Callable[[np.ndarray], pa.Array]) -> tuple[list[str], np.ndarray]:
    seen: dict[str, int] = {}
    codes = np.empty(values.size, dtype=np.int32)
    for start in range(0, values.size, FACTORIZE_ROWS):
        encoded = texts(values[start : start + FACTORIZE_ROWS]).dictionary_encode()
        known = [seen.setdefault(label, len(seen)) for label in encoded.dictionary.to_pylist()]
        mapped = np.array([*known, -1], dtype=np.int32)  # -1: missing, "None" once every value is known
        indices = pc.fill_null(encoded.indices, len(known)).to_numpy(zero_copy_only=False)
        codes[start : start + indices.size] = mapped[indices]
    codes[codes == -1] = len(seen)
    return [*seen, "None"], codes


FEW_SEGMENTS = 16
_NO_ROWS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Cohorts:
    """Each row's segment key as a code into `names`: what `segment_keys` spells out per row,
    held as 4 bytes a row instead of a pointer and the work of hashing every key again."""

    names: np.ndarray  # the distinct keys that occur, sorted
    codes: np.ndarray  # int32: each row's index into names

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=self.names.size)

    def rows(self, segments: list[str]) -> Iterator[np.ndarray]:
        """The indices of each segment's rows, ascending, in turn. A few segments take one pass
        over the codes each; many, one stable sort of all the rows (8 bytes a row more)."""
        position = {name: index for index, name in enumerate(self.names.tolist())}
        if len(segments) <= FEW_SEGMENTS:
            for segment in segments:
                yield np.flatnonzero(self.codes == position[segment]) if segment in position else _NO_ROWS
            return
        order = np.argsort(self.codes, kind="stable")
        bounds = np.r_[0, np.cumsum(self.counts)]
        for segment in segments:
            index = position.get(segment)
            yield _NO_ROWS if index is None else order[bounds[index] : bounds[index + 1]]


def segment_cohorts(columns: Mapping[str, np.ndarray]) -> Cohorts:
    """The rows' segment keys (as `segment_keys` spells them), factorized. One column is read
    as its distinct values; several are spelled out row by row first."""
    if len(columns) != 1:
        return _as_cohorts(segment_keys(columns))
    ((name, values),) = columns.items()
    labels, codes = _factorized(values)
    keys = [f"{name}={label}" for label in labels]  # a value "None" and a missing one share a key
    occurring = np.bincount(codes, minlength=len(keys)) > 0
    names = sorted({key for key, present in zip(keys, occurring.tolist(), strict=True) if present})
    if _tied_as_numpy_text(names):
        return _as_cohorts(segment_keys(columns))
    position = {key: index for index, key in enumerate(names)}
    lookup = np.array([position.get(key, -1) for key in keys], dtype=np.int32)
    for start in range(0, codes.size, FACTORIZE_ROWS):  # written over, a piece at a time: no second copy
        piece = codes[start : start + FACTORIZE_ROWS]
        piece[:] = lookup[piece]
    return Cohorts(np.array(names, dtype=object), codes)


def _tied_as_numpy_text(keys: Iterable[str]) -> bool:
    """Whether two of the keys are one as numpy's fixed-width text (it drops trailing NULs), the
    order segments were always sorted in: their order is then as each was first seen, which
    only the keys spelled out row by row tell."""
    distinct = set(keys)
    return len({key.rstrip("\x00") for key in distinct}) < len(distinct)


def _as_cohorts(keys: np.ndarray | Cohorts) -> Cohorts:
    if isinstance(keys, Cohorts):
        return keys
    names, codes = _factorize(keys)
    return Cohorts(names, codes.astype(np.int32))


@dataclass(frozen=True)
class SegmentShare:
    segment: str
    reference_share: float
    current_share: float
    current_rows: int
    new: bool  # absent from the reference, or rarer there than `rare_share`


def segment_shift(
    reference_keys: np.ndarray | Cohorts, current_keys: np.ndarray | Cohorts, rare_share: float = 0.001
) -> list[SegmentShare]:
    """Each segment's share in reference and current, largest absolute change first."""
    reference, current = _as_cohorts(reference_keys), _as_cohorts(current_keys)
    union = {*reference.names.tolist(), *current.names.tolist()}
    if _tied_as_numpy_text(union):  # in the order the keys of both sides, spelled out, give
        whole = _as_cohorts(np.concatenate([reference.names[reference.codes], current.names[current.codes]]))
        segments = whole.names
        ref_counts = np.bincount(whole.codes[: reference.codes.size], minlength=segments.size)
        counts = np.bincount(whole.codes[reference.codes.size :], minlength=segments.size)
    else:
        segments = np.array(sorted(union), dtype=object)
        ref_counts, counts = _counts_over(reference, segments), _counts_over(current, segments)
    ref = ref_counts / max(reference.codes.size, 1)
    cur = counts / max(current.codes.size, 1)
    shares = [
        SegmentShare(str(s), float(r), float(c), int(n), bool(r < rare_share and c > 0))
        for s, r, c, n in zip(segments, ref, cur, counts, strict=True)
    ]
    return sorted(shares, key=lambda share: -abs(share.current_share - share.reference_share))


def _counts_over(cohorts: Cohorts, segments: np.ndarray) -> np.ndarray:
    """The rows of each of `segments` (a superset of the cohorts' names)."""
    position = {name: index for index, name in enumerate(segments.tolist())}
    counts = np.zeros(segments.size, dtype=np.int64)
    counts[[position[name] for name in cohorts.names.tolist()]] = cohorts.counts
    return counts


def per_segment(keys: np.ndarray, metric: Callable[[np.ndarray], object], min_support: int = 100) -> dict:
    """metric(row_indices) for every segment with at least `min_support` rows; None below it."""
    segments, codes = _factorize(keys)
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=segments.size))]
    return {
        str(segment): metric(order[bounds[i] : bounds[i + 1]]) if bounds[i + 1] - bounds[i] >= min_support else None
        for i, segment in enumerate(segments)
    }


@dataclass(frozen=True)
class SegmentChange:
    segment: str
    reference: float | None  # the metric on the segment's reference rows (None below support)
    current: float | None
    change: float | None  # how much worse: a drop for "higher is better", a rise otherwise
    reference_rows: int
    current_rows: int


def rank_by_performance_drop(
    reference_keys: np.ndarray,
    current_keys: np.ndarray,
    reference_metric: Callable[[np.ndarray], float],
    current_metric: Callable[[np.ndarray], float],
    *,
    higher_is_better: bool = True,
    min_support: int = 100,
) -> list[SegmentChange]:
    """Every segment's metric on its reference rows and its current rows (functions of the row
    indices), worst change first; segments below `min_support` on a side get no figure there
    and rank last."""
    reference_rows, current_rows = _rows_by_segment(reference_keys), _rows_by_segment(current_keys)
    changes = []
    for segment in sorted(set(reference_rows) | set(current_rows)):
        ref_idx = reference_rows.get(segment, np.empty(0, dtype=np.int64))
        cur_idx = current_rows.get(segment, np.empty(0, dtype=np.int64))
        before = float(reference_metric(ref_idx)) if ref_idx.size >= min_support else None
        after = float(current_metric(cur_idx)) if cur_idx.size >= min_support else None
        change = None if before is None or after is None else (before - after if higher_is_better else after - before)
        changes.append(SegmentChange(segment, before, after, change, int(ref_idx.size), int(cur_idx.size)))
    return sorted(changes, key=_worst_first)


def rank_by_drift(
    reference_keys: np.ndarray,
    current_keys: np.ndarray,
    effect: Callable[[np.ndarray, np.ndarray], float],
    *,
    min_support: int = 100,
) -> list[SegmentChange]:
    """Every segment's drift: effect(reference rows, current rows) within the segment, for
    example the normed Wasserstein distance of a feature; largest first."""
    reference, current = _as_cohorts(reference_keys), _as_cohorts(current_keys)
    ref_sizes = dict(zip(reference.names.tolist(), reference.counts.tolist(), strict=True))
    cur_sizes = dict(zip(current.names.tolist(), current.counts.tolist(), strict=True))
    segments = sorted(set(ref_sizes) | set(cur_sizes))
    supported = [s for s in segments if ref_sizes.get(s, 0) >= min_support and cur_sizes.get(s, 0) >= min_support]
    drifts = {
        segment: float(effect(ref_rows, cur_rows))
        for segment, ref_rows, cur_rows in zip(
            supported, reference.rows(supported), current.rows(supported), strict=True
        )
    }
    changes = [
        SegmentChange(segment, None, None, drifts.get(segment), ref_sizes.get(segment, 0), cur_sizes.get(segment, 0))
        for segment in segments
    ]
    return sorted(changes, key=_worst_first)


def _worst_first(change: SegmentChange) -> tuple[bool, float, str]:
    return (change.change is None, -(change.change or 0.0), change.segment)


def segment_rows(keys: np.ndarray) -> dict[str, np.ndarray]:
    """Each segment's row indices."""
    return _rows_by_segment(keys)


def _rows_by_segment(keys: np.ndarray) -> dict[str, np.ndarray]:
    segments, codes = _factorize(keys)
    order = np.argsort(codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=segments.size))]
    return {str(segment): order[bounds[i] : bounds[i + 1]] for i, segment in enumerate(segments)}


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct keys, sorted; each row's index among them), as np.unique(return_inverse=True)
    gives them, but by hashing (Arrow) rather than sorting a million strings."""
    encoded = pa.array(np.asarray(keys, dtype=object), type=pa.string()).dictionary_encode()
    labels = np.array(encoded.dictionary.to_pylist(), dtype=object)
    order = np.argsort(labels.astype(str), kind="stable") if labels.size else np.empty(0, dtype=np.int64)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    return labels[order], rank[codes]
