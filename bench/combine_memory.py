"""Where the combining task of a fanned-out run holds its memory, step by step.

bench/fanout.py's window (bench/run.py's 25 features, an N-row reference, N/10 labels) is split
as a fanned-out run splits it; the parts are measured first, then the combining task's
computation (`run_result` on the columns it reads) runs in this process. For each step: the
most it held at once above what it started with and what it still held when it returned, by
tracemalloc (numpy arrays and Python objects), and the growth of the process's resident memory
over the step (VmHWM, started again at each step through /proc/self/clear_refs, after what was
freed is given back), which counts Arrow's buffers and the allocator's own as well; and its
time. The whole computation's resident peak is the figure to compare across code: the step that
sets it is the one to make smaller.

    python bench/combine_memory.py [--rows 2000000] [--reference-rows N]
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
from _common import ACTOR, process_status_kb, scratch_database
from fanout import report
from run import SCHEMA

from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.registry.data_schema import parse_schema
from monitoring.runs import checks, services
from monitoring.runs.parts import feature_groups, features_measure

MB = 2**20
STEPS = {
    services: ("_ids_measured", "run_windows", "labels_by_id", "_joined"),
    checks: (
        "duplicate_findings",
        "features_measure",
        "_quality",
        "_drift",
        "_current_truth",
        "_label_drift",
        "_performance",
        "estimated_checks",
        "_kpis",
        "_segments",
        "_segment_performance",
    ),
}


LIBC = ctypes.CDLL("libc.so.6")
HIGHEST = [0]  # the process's peak resident memory (kB) over every reset
# The steps under way, outermost first: [resident peak (kB), traced peak (bytes)] of each
# before a step within it started again the process's peaks.
OPEN: list[list[int]] = []


def resident_peak_reset() -> int:
    """Start this process's peak resident memory (VmHWM) and tracemalloc's peak again from what
    it holds now (kB): VmHWM counts what tracemalloc does not see, Arrow's buffers and the
    allocator's own. The peaks before the reset are kept in HIGHEST, for the whole
    computation's, and in OPEN, for the steps this one is within."""
    resident_peak, (_, traced_peak) = process_status_kb("VmHWM"), tracemalloc.get_traced_memory()
    HIGHEST[0] = max(HIGHEST[0], resident_peak)
    for frame in OPEN:
        frame[0], frame[1] = max(frame[0], resident_peak), max(frame[1], traced_peak)
    tracemalloc.reset_peak()
    pa.default_memory_pool().release_unused()  # what was freed is given back: the start is what is held
    LIBC.malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    return process_status_kb("VmRSS")


def traced(module: ModuleType, name: str, figures: list[tuple[str, float, float, float, float]]) -> None:
    """Replace module.name by itself measured: the module's own calls go through its globals."""
    step: Callable[..., Any] | None = getattr(module, name, None)
    if step is None:  # a step the code measured does not have (an older version of it)
        return

    def measured(*args: Any, **kwargs: Any) -> Any:
        before, _ = tracemalloc.get_traced_memory()
        resident = resident_peak_reset()
        frame = [0, 0]
        OPEN.append(frame)
        started = time.perf_counter()
        try:
            result = step(*args, **kwargs)
        finally:
            OPEN.pop()
        after, peak = tracemalloc.get_traced_memory()
        peak = max(peak, frame[1])
        grown = (max(process_status_kb("VmHWM"), frame[0]) - resident) / 1024
        figures.append((name, (peak - before) / MB, (after - before) / MB, grown, time.perf_counter() - started))
        return result

    setattr(module, name, measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features-per-part", type=int, default=4)
    parser.add_argument("--reference-rows", type=int, help="rows of the reference (default: the window's)")
    options = parser.parse_args()
    rows = options.rows
    reference_rows = options.reference_rows or rows
    with scratch_database("driftledger_bench_combine") as _:
        registry.model_register(
            name="bench-run", task="binary_classification", owner="bench", data_schema=SCHEMA, actor=ACTOR
        )
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
        end = start + dt.timedelta(hours=1)
        report(rows, reference_rows, 1, start)
        policy = policy_load("bench-run")
        schema = parse_schema(SCHEMA)
        groups = feature_groups(schema, "binary_classification", policy.policy, options.features_per_part)
        apart = [name for group in groups for name in group]
        combined = [name for name in schema.columns if name not in apart]
        inputs = services.run_inputs("bench-run", start, end, policy.policy)
        parts = {}
        for group in groups:  # one at a time, as the parts' workers read them
            windows = services.run_windows(
                "bench-run", start, end, inputs, policy.policy, schema, group, only=("reference", "predictions")
            )
            kinds = {name: schema.features[name] for name in group}
            parts |= features_measure(
                windows["reference"].columns, windows["predictions"].columns, kinds, policy.policy
            )
            del windows

        figures: list[tuple[str, float, float, float, float]] = []
        for module, names in STEPS.items():
            for name in names:
                traced(module, name, figures)
        tracemalloc.start()
        resident = resident_peak_reset()
        HIGHEST[0] = 0  # what ingestion and the parts held is not the combining task's
        started = time.perf_counter()
        services.run_result(
            "bench-run", start, end, policy.version, policy.policy, "bench", inputs, columns=combined,
            feature_parts=parts,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        whole_resident = (max(HIGHEST[0], process_status_kb("VmHWM")) - resident) / 1024
        tracemalloc.stop()
    print(f"{rows:,} rows, reference {reference_rows:,}, labels {rows // 10:,}; "
          f"the combining task reads {', '.join(combined)}")  # fmt: skip
    print(f"  {'step':22} {'peak above its start':>22} {'held after':>12} {'resident peak':>15} {'time':>8}")
    for name, peak, held, grown, step_seconds in figures:
        print(f"  {name:22} {peak:19,.0f} MB {held:9,.0f} MB {grown:12,.0f} MB {step_seconds:7.1f} s")
    print(f"  {'whole computation':22} {'':22} {'':12} {whole_resident:12,.0f} MB {seconds:7.1f} s")
    print("  (peak and held: numpy and Python objects, tracemalloc; resident peak: the process's VmHWM above its")
    print("   resident memory at the step's start, Arrow's buffers included)")


if __name__ == "__main__":
    main()
