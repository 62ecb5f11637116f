"""Univariate drift on the same data: ours vs Evidently, NannyML, a scipy loop, and sorting.

20 numerical and 5 categorical features; 8 drifted by sizes from immaterial (0.02 sd, 2 % of
rows moved) to gross (1 sd). For each size it prints each tool's compute time (median of 5 for the fast ones),
peak memory above its loaded input, the ratios to ours, and its true and false positives against the
documented materiality floors (0.1 sd normed Wasserstein, PSI 0.1). Each tool runs in its own
process; Evidently and NannyML in their own virtual environments with the versions pinned in
bench/peers/*.txt, created under bench/.venvs on first use.

    python bench/stats.py [--rows 10000,100000,1000000] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PEERS = {"evidently": "Evidently 0.7 DataDriftPreset", "nannyml": "NannyML 0.13 univariate drift"}
LOCAL = {
    "floor": "np.sort of numerical columns",
    "floor-threads": "np.sort, one thread per core",
    "ours": "driftledger, one thread per core",
    "ours-1": "driftledger, one thread",
    "scipy": "scipy per-column loop",
}
NUMERICAL_SHIFTS = {0: 0.02, 1: 0.05, 2: 0.15, 3: 0.3, 4: 1.0}  # in reference standard deviations
CATEGORICAL_SHIFTS = {20: 0.02, 21: 0.1, 22: 0.2, 23: 0.3}  # share of rows moved into category "a"
MATERIAL_SD, MATERIAL_PSI = 0.1, 0.1  # the documented floors (docs/statistics.md)


def population_psi(moved: float) -> float:
    """PSI of moving a share of rows from five equal categories into one of them."""
    if moved == 0:
        return 0.0
    return 0.8 * moved * np.log(1 + 4 * moved) - 0.8 * moved * np.log(1 - moved)


def generate(rows: int, directory: Path, seed: int = 0) -> dict[str, bool]:
    """Writes the data set as .npy files; returns which features truly drifted materially."""
    rng = np.random.default_rng(seed)
    kinds, truth = {}, {}
    labels = np.array(["a", "b", "c", "d", "e"])
    for i in range(25):
        if i < 20:
            name, shift = f"num_{i}", NUMERICAL_SHIFTS.get(i, 0.0)
            reference, current = rng.normal(0, 1, rows), rng.normal(shift, 1, rows)
            kinds[name], truth[name] = "numerical", shift >= MATERIAL_SD
        else:
            name, moved = f"cat_{i}", CATEGORICAL_SHIFTS.get(i, 0.0)
            reference, current = labels[rng.integers(0, 5, rows)], labels[rng.integers(0, 5, rows)]
            current[rng.random(rows) < moved] = "a"
            kinds[name], truth[name] = "categorical", population_psi(moved) >= MATERIAL_PSI
        np.save(directory / f"reference-{name}.npy", reference)
        np.save(directory / f"current-{name}.npy", current)
    (directory / "kinds.json").write_text(json.dumps(kinds))
    return truth


def peer_python(tool: str) -> Path:
    environment = HERE / ".venvs" / tool
    python = environment / "bin" / "python"
    if not python.exists():
        print(f"creating {environment} (pinned: {HERE / 'peers' / f'{tool}.txt'}) …", flush=True)
        venv.create(environment, with_pip=True)
        requirements = HERE / "peers" / f"{tool}.txt"
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", requirements], check=True)
    return python


def run(python: Path | str, tool: str, directory: Path, repeats: int) -> dict:
    command = [str(python), str(HERE / "peers" / "run.py"), tool, str(directory), str(repeats)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(rows: int, truth: dict[str, bool], results: dict[str, dict]) -> None:
    ours, floor = results["ours"]["seconds"], results["floor"]["seconds"]
    print(f"\n{rows:,} rows per window · 25 features · {sum(truth.values())} material drifts")
    print(f"{'tool':34} {'seconds':>8} {'vs ours':>8} {'x floor':>8} {'peak MB':>8} {'TP':>3} {'FP':>3}")
    for tool, result in results.items():
        flagged = result["flagged"]
        tp = sum(bool(flagged.get(f)) and truth[f] for f in truth)
        fp = sum(bool(flagged.get(f)) and not truth[f] for f in truth)
        hits = f"{tp:3d} {fp:3d}" if flagged else "  -   -"
        name = {**PEERS, **LOCAL}[tool]
        seconds = result["seconds"]
        print(f"{name:34} {seconds:8.2f} {seconds / ours:7.1f}x {seconds / floor:8.1f} {result['peak_mb']:8.0f} {hits}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--no-peers", action="store_true", help="only ours, the scipy loop and the sort floor")
    options = parser.parse_args()
    peers = {} if options.no_peers else {tool: peer_python(tool) for tool in PEERS}
    for rows in (int(r) for r in options.rows.split(",")):
        with tempfile.TemporaryDirectory() as scratch:
            directory = Path(scratch)
            truth = generate(rows, directory)
            local = ("floor", "floor-threads", "ours", "ours-1")
            results = {tool: run(sys.executable, tool, directory, repeats=5) for tool in local}
            results["scipy"] = run(sys.executable, "scipy", directory, repeats=1)
            for tool, python in peers.items():
                results[tool] = run(python, tool, directory, repeats=1)
            report(rows, truth, results)
    print(f"\n{os.cpu_count()} cores. 'x floor' is against single-threaded sorting.")
    print(
        "\nimmaterial drifts injected: 0.02 and 0.05 sd; 2 % and 10 % of rows moved between categories "
        "(PSI 0.006 and 0.035). 'peak MB' is the peak resident size above the loaded input."
    )


if __name__ == "__main__":
    main()
