"""Ranking quality at 1,000,000 rows (100,000 lists of 10): NDCG@10, MAP@10, MRR@10 and hit
rate@10 in one pass, against scikit-learn's ndcg_score alone on the same lists (the baseline),
median of 5; and the agreement of the two NDCG figures.

    .venv/bin/python bench/ranking.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import ndcg_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_time

from monitoring.stats.ranking import ranking_quality

LISTS, LENGTH, K = 100_000, 10, 10


def main() -> None:
    rng = np.random.default_rng(1)
    relevance = rng.choice([0, 0, 0, 1, 2], size=(LISTS, LENGTH)).astype(float)
    relevance[:, 0] += 1  # every list has a relevant item, so that both average over the same lists
    scores = np.round(rng.random((LISTS, LENGTH)) + 0.2 * relevance, 2)  # ties, as real scores have
    queries = np.repeat(np.arange(LISTS), LENGTH)
    ours, quality = median_time(ranking_quality, queries, scores.ravel(), relevance.ravel(), K)
    theirs, expected = median_time(ndcg_score, relevance, scores, k=K, ignore_ties=False)
    print(f"{LISTS * LENGTH:,} rows ({LISTS:,} lists of {LENGTH}): NDCG, MAP, MRR and hit rate @{K} "
          f"{ours * 1000:.0f} ms; scikit-learn ndcg_score alone {theirs * 1000:.0f} ms "
          f"(ratio {ours / theirs:.2f})")  # fmt: skip
    print(f"  NDCG@{K} {quality.ndcg:.12f} against scikit-learn's {expected:.12f}: "
          f"difference {abs(quality.ndcg - expected):.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
