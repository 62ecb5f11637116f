"""Cost at 1,000,000 rows of the run checks issue 16 added, each against the realized ROC AUC
on the same rows (the baseline: every run with labels computes it), median of 3:

- multivariate drift (PCA reconstruction error of 3 numerical features, reference 100,000 rows);
- direct loss estimation of a regression's MAE and RMSE (reference 100,000 rows);
- cohort performance over two overlapping segment columns, with intervals and attribution;
- KPIs per segment (two columns; 1,000,000 KPI rows).

    .venv/bin/python bench/methods.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from monitoring.policies.document import complete_policy
from monitoring.registry.data_schema import DataSchema
from monitoring.runs.checks import _kpis, _segment_performance
from monitoring.runs.estimation_checks import estimated_checks
from monitoring.runs.multivariate_checks import multivariate_checks
from monitoring.stats.performance import roc_auc

ROWS = 1_000_000
SCHEMA = DataSchema(numerical=("a", "b", "c"), categorical=("region", "plan"), prediction="p", target="y",
                    segments=("region", "plan"))  # fmt: skip
POLICY = complete_policy({"estimation": {"regression_metrics": ["mae", "rmse"]}}, SCHEMA.features)


def _columns(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, rows)
    region = rng.choice(["north", "south", "east", "west", "online"], rows).astype(object)
    plan = np.where(region == "online", rng.choice(["basic", "standard"], rows), rng.choice(["basic", "pro"], rows))
    score = 1 / (1 + np.exp(-(1.5 * a - 0.3)))
    return {"a": a, "b": 0.8 * a + rng.normal(0, 0.6, rows), "c": rng.normal(0, 1, rows), "p": score,
            "y": (rng.random(rows) < score) * 1.0, "region": region, "plan": plan.astype(object)}  # fmt: skip


def main() -> None:
    reference, current = _columns(100_000, 1), _columns(ROWS, 2)
    baseline = median_time(roc_auc, current["y"], current["p"], repeat=3)[0]
    truth = (current["y"].astype(object), current["p"], np.arange(ROWS))
    regression = DataSchema(numerical=("a", "b", "c"), categorical=(), prediction="p", target="y")
    kpis = {
        "kpi": np.full(ROWS, "ctr", dtype=object),
        "value": np.random.default_rng(3).random(ROWS),
        "region": current["region"],
        "plan": current["plan"],
    }
    timed = {
        "multivariate drift (PCA reconstruction)": median_time(
            multivariate_checks, reference, current, SCHEMA, repeat=3
        )[0],
        "direct loss estimation (MAE, RMSE)": median_time(
            estimated_checks, reference, current, "y", regression, "regression", POLICY, repeat=3
        )[0],
        "cohort performance with attribution": median_time(
            _segment_performance, reference, current, truth, "y", SCHEMA, "binary_classification", POLICY, repeat=3
        )[0],
        "KPIs per segment": median_time(_kpis, kpis, kpis, POLICY, ("region", "plan"), repeat=3)[0],
    }
    print(f"{ROWS:,} rows; baseline: realized ROC AUC {baseline * 1000:.0f} ms")
    for name, seconds in timed.items():
        print(f"  {name}: {seconds * 1000:,.0f} ms ({seconds / baseline:.1f}x the baseline)")


if __name__ == "__main__":
    main()
