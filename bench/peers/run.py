"""One drift tool on the benchmark's data: `python run.py TOOL DATA_DIR` prints JSON.

Runs in whichever interpreter has the tool (ours in the project's venv, each peer in its own
pinned venv), so it imports nothing of the project unless the tool is ours. Time is the tool's
compute only; memory is the peak resident size above what loading the data took."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def load(directory: Path) -> tuple[dict, dict, dict]:
    kinds = json.loads((directory / "kinds.json").read_text())
    reference = {name: np.load(directory / f"reference-{name}.npy") for name in kinds}
    current = {name: np.load(directory / f"current-{name}.npy") for name in kinds}
    return reference, current, kinds


def ours(reference, current, kinds, workers=None):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from monitoring.stats.drift import drift_report

    drift_report({k: v[:2000] for k, v in reference.items()}, {k: v[:2000] for k, v in current.items()}, kinds)

    def run():  # compiled kernels are cached on disk; the warm-up above only loads them
        return {r.feature: r.decision.drifted for r in drift_report(reference, current, kinds, workers=workers)}

    return run


def ours_one_thread(reference, current, kinds):
    return ours(reference, current, kinds, workers=1)


def scipy_loop(reference, current, kinds):
    from scipy import stats

    def run():
        flagged = {}
        for name, kind in kinds.items():
            if kind == "numerical":
                p = stats.ks_2samp(reference[name], current[name]).pvalue
                stats.wasserstein_distance(reference[name], current[name])
            else:
                categories = np.union1d(reference[name], current[name])
                table = [[np.sum(side[name] == c) for c in categories] for side in (reference, current)]
                p = stats.chi2_contingency(table).pvalue
            flagged[name] = bool(p < 0.05)
        return flagged

    return run


def sort_floor(reference, current, kinds):
    def run():
        for name, kind in kinds.items():
            if kind == "numerical":
                np.sort(reference[name])
                np.sort(current[name])
        return {}

    return run


def sort_floor_threads(reference, current, kinds):
    import os
    from concurrent.futures import ThreadPoolExecutor

    columns = [side[name] for name, kind in kinds.items() if kind == "numerical" for side in (reference, current)]

    def run():
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(np.sort, columns))
        return {}

    return run


def evidently(reference, current, kinds):
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[n for n, k in kinds.items() if k == "numerical"],
        categorical_columns=[n for n, k in kinds.items() if k == "categorical"],
    )
    ref = Dataset.from_pandas(pd.DataFrame(reference), data_definition=definition)
    cur = Dataset.from_pandas(pd.DataFrame(current), data_definition=definition)

    def run():
        flagged = {}
        for metric in Report([DataDriftPreset()]).run(cur, ref).dict()["metrics"]:
            config = metric["config"]
            if config.get("type") == "evidently:metric_v2:ValueDrift":
                is_p_value = "p_value" in config["method"]
                value, threshold = metric["value"], config["threshold"]
                flagged[config["column"]] = bool(value < threshold if is_p_value else value >= threshold)
        return flagged

    return run


def nannyml(reference, current, kinds):
    import nannyml as nml
    import pandas as pd

    ref, cur = pd.DataFrame(reference), pd.DataFrame(current)
    rows = len(ref)
    methods = {"numerical": ["kolmogorov_smirnov", "jensen_shannon"], "categorical": ["chi2", "jensen_shannon"]}

    def run():  # its defaults, ten chunks per period; a feature is flagged if any chunk alerts
        calculator = nml.UnivariateDriftCalculator(
            column_names=list(kinds),
            chunk_size=max(rows // 10, 1),
            continuous_methods=methods["numerical"],
            categorical_methods=methods["categorical"],
        )
        calculator.fit(ref)
        result = calculator.calculate(cur).filter(period="analysis").to_df()
        return {n: bool(any(result[(n, m, "alert")].any() for m in methods[k])) for n, k in kinds.items()}

    return run


TOOLS = {
    "ours": ours,
    "ours-1": ours_one_thread,
    "scipy": scipy_loop,
    "floor": sort_floor,
    "floor-threads": sort_floor_threads,
    "evidently": evidently,
    "nannyml": nannyml,
}


def main() -> None:
    tool, directory = sys.argv[1], Path(sys.argv[2])
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    run = TOOLS[tool](*load(directory))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        flagged = run()
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline
    print(json.dumps({"seconds": sorted(times)[len(times) // 2], "peak_mb": peak / 1024, "flagged": flagged}))


if __name__ == "__main__":
    main()
