"""Where the combining task of a fanned-out run holds its memory, step by step.

bench/fanout.py's window (bench/run.py's 25 features, an N-row reference, N/10 labels) is split
as a fanned-out run splits it; the parts are measured first, then the combining task's
computation (`run_result` on the columns it reads) runs in this process under tracemalloc,
which counts every numpy array and Python object (not Arrow's buffers, which reading lets go
before the checks start). For each step: the most it held at once above what it started with,
what it still held when it returned, and its time. The baseline in the same run is the whole
computation's peak: the step that sets it is the one to make smaller.

    python bench/combine_memory.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any

from _common import ACTOR, scratch_database
from fanout import report
from run import SCHEMA

from monitoring.policies.services import policy_load
from monitoring.registry import services as registry
from monitoring.registry.data_schema import parse_schema
from monitoring.runs import checks, services
from monitoring.runs.parts import feature_groups, features_measure

MB = 2**20
STEPS = {
    services: ("run_windows", "labels_by_id"),
    checks: (
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


def traced(module: ModuleType, name: str, figures: list[tuple[str, float, float, float]]) -> None:
    """Replace module.name by itself measured: the module's own calls go through its globals."""
    step: Callable[..., Any] = getattr(module, name)

    def measured(*args: Any, **kwargs: Any) -> Any:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        result = step(*args, **kwargs)
        after, peak = tracemalloc.get_traced_memory()
        figures.append((name, (peak - before) / MB, (after - before) / MB, time.perf_counter() - started))
        return result

    setattr(module, name, measured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features-per-part", type=int, default=4)
    options = parser.parse_args()
    rows = options.rows
    with scratch_database("driftledger_bench_combine") as _:
        registry.model_register(
            name="bench-run", task="binary_classification", owner="bench", data_schema=SCHEMA, actor=ACTOR
        )
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
        end = start + dt.timedelta(hours=1)
        report(rows, 1, start)
        policy = policy_load("bench-run")
        schema = parse_schema(SCHEMA)
        groups = feature_groups(schema, "binary_classification", policy.policy, options.features_per_part)
        apart = [name for group in groups for name in group]
        combined = [name for name in schema.columns if name not in apart]
        inputs = services.run_inputs("bench-run", start, end, policy.policy)
        windows = services.run_windows(
            "bench-run", start, end, inputs, policy.policy, schema, apart, only=("reference", "predictions")
        )
        kinds = {name: schema.features[name] for name in apart}
        parts = features_measure(windows["reference"].columns, windows["predictions"].columns, kinds, policy.policy)
        del windows

        figures: list[tuple[str, float, float, float]] = []
        for module, names in STEPS.items():
            for name in names:
                traced(module, name, figures)
        tracemalloc.start()
        started = time.perf_counter()
        services.run_result(
            "bench-run", start, end, policy.version, policy.policy, "bench", inputs, columns=combined,
            feature_parts=parts,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        whole = tracemalloc.get_traced_memory()[1] / MB
        tracemalloc.stop()
    print(f"{rows:,} rows, reference {rows:,}, labels {rows // 10:,}; the combining task reads {', '.join(combined)}")
    print(f"  {'step':22} {'peak above its start':>22} {'held after':>12} {'time':>8}   peak / whole")
    for name, peak, held, step_seconds in figures:
        print(f"  {name:22} {peak:19,.0f} MB {held:9,.0f} MB {step_seconds:7.1f} s   {peak / whole:.2f}")
    print(f"  {'whole computation':22} {whole:19,.0f} MB {'':12} {seconds:7.1f} s")


if __name__ == "__main__":
    main()
