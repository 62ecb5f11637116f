"""Cost of a cohort figure's uncertainty at 1,000,000 rows: DeLong's AUC variance against the
AUC itself (the baseline: every run computes it already), median of 5.

    python bench/uncertainty.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.stats.performance import roc_auc
from monitoring.stats.uncertainty import auc_variance

ROWS = 1_000_000


def _median(function, *args) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(ROWS) < 0.2
    p = rng.normal(0.8 * y, 1.0)
    auc, variance = _median(roc_auc, y.astype(float), p), _median(auc_variance, y, p)
    print(f"1,000,000 rows: ROC AUC {auc * 1000:.0f} ms, DeLong variance {variance * 1000:.0f} ms "
          f"({variance / auc:.2f}x the AUC itself)")  # fmt: skip


if __name__ == "__main__":
    main()
