"""Peak memory of counting a categorical column of N rows held as Python objects, as a run holds
a segment or a categorical feature: a piece of 1M rows made Arrow text at a time, its tallies
summed (`monitoring.stats.categories.count_categories`), against the baseline of the whole
column made Arrow text at once, as it was counted before. Each way runs in a fresh process:
the growth of resident memory (VmHWM) over what the process held with the column made, and
the seconds. Both ways must give the same counts.

    python bench/category_memory.py [--rows 20000000] [--categories 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _common import process_status_kb

from monitoring.stats import categories


def measure(rows: int, distinct: int, whole: bool) -> dict[str, object]:
    """One way, in this process: the counts, the resident growth (MB) and the seconds."""
    names = np.array([f"category-{i}" for i in range(distinct)] + [None], dtype=object)
    column = names[np.random.default_rng(5).integers(0, names.size, rows)]
    if whole:  # one piece: the whole column made Arrow text at once
        categories.COUNT_PIECE_ROWS = rows
    resident_peak_reset()
    start = process_status_kb("VmRSS")
    started = time.perf_counter()
    counted = categories.count_categories(column)
    seconds = time.perf_counter() - started
    grown = (process_status_kb("VmHWM") - start) / 1024
    return {
        "counts": [counted.categories.tolist(), counted.counts.tolist(), counted.missing],
        "mb": grown,
        "seconds": seconds,
    }


def resident_peak_reset() -> None:
    """Start the process's peak resident memory (VmHWM) again from what it holds now."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--one", choices=["whole", "pieces"], help=argparse.SUPPRESS)  # a child's way
    options = parser.parse_args()
    if options.one:
        print(json.dumps(measure(options.rows, options.categories, options.one == "whole")))
        return
    results = {}
    for way in ("whole", "pieces"):
        command = [sys.executable, __file__, "--rows", str(options.rows), "--categories", str(options.categories)]
        output = subprocess.run([*command, "--one", way], check=True, capture_output=True, text=True).stdout
        results[way] = json.loads(output)
    if results["whole"]["counts"] != results["pieces"]["counts"]:
        raise SystemExit("the two ways counted differently")
    print(f"{options.rows:,} rows of {options.categories} categories and missing values, as Python objects")
    for way, label in (("whole", "whole column at once (baseline)"), ("pieces", "a piece of 1M rows at a time")):
        print(f"  {label:34} {results[way]['mb']:8,.0f} MB {results[way]['seconds']:7.1f} s")
    print(
        f"  pieces against whole: {results['pieces']['mb'] / results['whole']['mb']:.2f}x memory, "
        f"{results['pieces']['seconds'] / results['whole']['seconds']:.2f}x time; same counts"
    )


if __name__ == "__main__":
    main()
