"""Chunks of a window (by rows, by number, by calendar period) and expected ranges from them."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    key: str
    start: int  # row slice [start, end) of the time-ordered data
    end: int
    complete: bool = True

    @property
    def rows(self) -> int:
        return self.end - self.start


def chunk_by_size(rows: int, size: int) -> list[Chunk]:
    """Consecutive chunks of `size` rows; a shorter last chunk is kept and marked incomplete."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [
        Chunk(f"[{start}:{min(start + size, rows)}]", start, min(start + size, rows), start + size <= rows)
        for start in range(0, rows, size)
    ]


def chunk_by_count(rows: int, count: int) -> list[Chunk]:
    """`count` chunks of near-equal size (sizes differ by at most one row)."""
    if count < 1:
        raise ValueError("chunk count must be at least 1")
    bounds = np.linspace(0, rows, min(count, max(rows, 1)) + 1).round().astype(int)
    return [Chunk(f"[{a}:{b}]", int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


PERIOD_UNITS = {"day": "D", "week": "W", "month": "M"}


def chunk_by_period(timestamps: np.ndarray, period: str) -> list[Chunk]:
    """One chunk per calendar day, ISO week (Monday first) or month of time-ordered timestamps."""
    if period not in PERIOD_UNITS:
        raise ValueError(f"period must be one of {', '.join(PERIOD_UNITS)}")
    moments = np.asarray(timestamps, dtype="datetime64[us]")
    if moments.size and np.any(np.diff(moments) < np.timedelta64(0, "us")):
        raise ValueError("timestamps must be in ascending order")
    days = moments.astype("datetime64[D]")
    if period == "week":  # 1970-01-01 was a Thursday: shift so that weeks start on Monday
        keys = ((days.astype(np.int64) + 3) // 7 * 7 - 3).astype("datetime64[D]")
    else:
        keys = days.astype(f"datetime64[{PERIOD_UNITS[period]}]")
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.array([], dtype=int)
    ends = np.r_[starts[1:], keys.size]
    return [Chunk(str(keys[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class ExpectedRange:
    mean: float
    std: float
    lower: float
    upper: float

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper


def expected_range(reference_chunk_values: Sequence[float], sigmas: float = 3.0) -> ExpectedRange:
    """The variation a metric shows across reference chunks: mean ± sigmas·std."""
    values = np.asarray(reference_chunk_values, dtype=float)
    mean, std = float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0
    return ExpectedRange(mean, std, mean - sigmas * std, mean + sigmas * std)
