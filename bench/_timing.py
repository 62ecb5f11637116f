"""Timing shared by the benchmarks that need no database: the median of repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def median_time(function: Callable[..., Any], *args: Any, repeat: int = 5, **kwargs: Any) -> tuple[float, Any]:
    """The median wall time of `repeat` calls, in seconds, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result
