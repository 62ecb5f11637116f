"""Univariate drift suite on 1M-row windows: ours vs a plain scipy per-column loop vs sorting.

Same generated data for all: 20 numerical and 5 categorical features, 8 of them drifted by
sizes from immaterial (0.02 sd) to gross. Prints time, peak traced memory, the ratios, and each
approach's true and false positives. (The issue also names Evidently and NannyML, installed in
their own virtual environments: still to add.)

    python bench/stats.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.stats.drift import drift_report

NUMERICAL_SHIFTS = {0: 0.02, 1: 0.05, 2: 0.15, 3: 0.3, 4: 1.0}  # in reference standard deviations
CATEGORICAL_SHIFTS = {20: 0.02, 21: 0.1, 22: 0.2, 23: 0.3}  # share of rows moved into category "a"
MATERIAL_SD, MATERIAL_PSI = 0.1, 0.1  # the documented floors (docs/statistics.md)


def population_psi(moved: float) -> float:
    """PSI of moving a share of rows from five equal categories into one of them."""
    if moved == 0:
        return 0.0
    return 0.8 * moved * np.log(1 + 4 * moved) - 0.8 * moved * np.log(1 - moved)


def generate(rows: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    reference, current, kinds, truth = {}, {}, {}, {}
    for i in range(20):
        name = f"num_{i}"
        reference[name] = rng.normal(0, 1, rows)
        current[name] = rng.normal(NUMERICAL_SHIFTS.get(i, 0.0), 1, rows)
        kinds[name] = "numerical"
        truth[name] = NUMERICAL_SHIFTS.get(i, 0.0) >= MATERIAL_SD
    for i in range(20, 25):
        name = f"cat_{i}"
        labels = np.array(["a", "b", "c", "d", "e"])
        reference[name] = labels[rng.integers(0, 5, rows)]
        values = labels[rng.integers(0, 5, rows)]
        moved = rng.random(rows) < CATEGORICAL_SHIFTS.get(i, 0.0)
        values[moved] = "a"
        current[name] = values
        kinds[name] = "categorical"
        truth[name] = population_psi(CATEGORICAL_SHIFTS.get(i, 0.0)) >= MATERIAL_PSI
    return reference, current, kinds, truth


def ours(reference, current, kinds):
    return {r.feature: r.decision.drifted for r in drift_report(reference, current, kinds)}


def scipy_loop(reference, current, kinds):
    flagged = {}
    for name, kind in kinds.items():
        if kind == "numerical":
            p = stats.ks_2samp(reference[name], current[name]).pvalue
            stats.wasserstein_distance(reference[name], current[name])
        else:
            categories = np.union1d(reference[name], current[name])
            table = [
                [np.sum(reference[name] == c) for c in categories],
                [np.sum(current[name] == c) for c in categories],
            ]
            p = stats.chi2_contingency(table).pvalue
        flagged[name] = p < 0.05
    return flagged


def sort_floor(reference, current, kinds):
    for name, kind in kinds.items():
        if kind == "numerical":
            np.sort(reference[name])
            np.sort(current[name])
    return {}


def measure(function, *args):
    tracemalloc.start()
    started = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    options = parser.parse_args()
    reference, current, kinds, truth = generate(options.rows)
    input_mb = sum(a.nbytes for a in (*reference.values(), *current.values())) / 1e6
    results = {name: measure(f, reference, current, kinds)
               for name, f in (("sort floor (np.sort)", sort_floor), ("scipy per-column loop", scipy_loop),
                               ("driftledger (all measures + decisions)", ours))}  # fmt: skip
    floor = results["sort floor (np.sort)"][0]
    print(f"{options.rows:,} rows per window, 25 features, input {input_mb:,.0f} MB")
    print(f"{'approach':40} {'seconds':>8} {'x floor':>8} {'peak MB':>8} {'TP':>3} {'FP':>3}")
    for name, (seconds, peak, flagged) in results.items():
        tp = sum(flagged.get(f, False) and truth[f] for f in truth)
        fp = sum(flagged.get(f, False) and not truth[f] for f in truth)
        tp_text, fp_text = (f"{tp:3d}", f"{fp:3d}") if flagged else ("  -", "  -")
        print(f"{name:40} {seconds:8.2f} {seconds / floor:8.1f} {peak:8.0f} {tp_text} {fp_text}")
    print(
        f"material drifts injected: {sum(truth.values())}; immaterial ones: 0.02 and 0.05 sd, "
        "2 % and 10 % of rows moved between categories (PSI 0.006 and 0.035)"
    )


if __name__ == "__main__":
    main()
