"""Cost of a cohort figure's uncertainty at 1,000,000 rows: DeLong's AUC variance against the
AUC itself (the baseline: every run computes it already), median of 5.

    python bench/uncertainty.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_time

from monitoring.stats.performance import roc_auc
from monitoring.stats.uncertainty import auc_variance

ROWS = 1_000_000


def main() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(ROWS) < 0.2
    p = rng.normal(0.8 * y, 1.0)
    auc, variance = median_time(roc_auc, y.astype(float), p)[0], median_time(auc_variance, y, p)[0]
    print(f"1,000,000 rows: ROC AUC {auc * 1000:.0f} ms, DeLong variance {variance * 1000:.0f} ms "
          f"({variance / auc:.2f}x the AUC itself)")  # fmt: skip


if __name__ == "__main__":
    main()
