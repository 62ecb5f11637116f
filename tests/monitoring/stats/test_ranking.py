"""Ranking quality against scikit-learn's ndcg_score and a plain per-list computation."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from monitoring.stats.ranking import coverage, popular_items, popularity_share, ranking_quality, top_k_items


def _lists(queries: int, length: int, seed: int, *, ties: bool):
    rng = np.random.default_rng(seed)
    relevance = rng.choice([0, 0, 0, 1, 2, 3], size=(queries, length)).astype(float)
    relevance[:5] = 0  # queries without any relevant item
    scores = rng.random((queries, length)) + 0.3 * relevance
    if ties:
        scores = np.round(scores, 1)
    return relevance, scores


def _flat(relevance, scores, seed):
    """The lists as rows in a shuffled order, as a window delivers them."""
    queries = np.repeat([f"u{i}" for i in range(relevance.shape[0])], relevance.shape[1]).astype(object)
    order = np.random.default_rng(seed).permutation(queries.size)
    return queries[order], scores.ravel()[order], relevance.ravel()[order]


@pytest.mark.parametrize("k", [1, 5, 10, 30])
@pytest.mark.parametrize("ties", [False, True])
def test_ndcg_equals_scikit_learns(k, ties):
    relevance, scores = _lists(300, 20, seed=k, ties=ties)
    judged = relevance.sum(axis=1) > 0
    quality = ranking_quality(*_flat(relevance, scores, seed=1), k=k)
    expected = ndcg_score(relevance[judged], scores[judged], k=k, ignore_ties=False)
    assert quality.ndcg == pytest.approx(expected, abs=1e-12)
    assert quality.queries == judged.sum() and quality.without_relevant == (~judged).sum()


def _by_hand(relevance_lists, score_lists, k):
    """MAP@k, MRR@k and hit rate@k one list at a time, ties in the order the rows came."""
    aps, rrs, hits = [], [], []
    for rel, score in zip(relevance_lists, score_lists, strict=True):
        if not any(r > 0 for r in rel):
            continue
        ranked = [r for _, _, r in sorted(zip([-s for s in score], range(len(rel)), rel, strict=True))][:k]
        found, precisions = 0, []
        for place, r in enumerate(ranked, start=1):
            if r > 0:
                found += 1
                precisions.append(found / place)
        aps.append(sum(precisions) / min(sum(r > 0 for r in rel), k))
        first = next((place for place, r in enumerate(ranked, start=1) if r > 0), None)
        rrs.append(1 / first if first else 0.0)
        hits.append(first is not None)
    return np.mean(aps), np.mean(rrs), np.mean(hits)


@pytest.mark.parametrize("k", [1, 3, 10])
def test_map_mrr_and_hit_rate_equal_a_plain_computation_on_lists_of_any_length(k):
    rng = np.random.default_rng(k)
    lengths = rng.integers(1, 25, 200)
    relevance_lists = [list(rng.choice([0, 0, 1], n).astype(float)) for n in lengths]
    score_lists = [list(np.round(rng.random(n), 2)) for n in lengths]  # some ties
    queries = np.concatenate([[f"q{i}"] * n for i, n in enumerate(lengths)]).astype(object)
    quality = ranking_quality(queries, np.concatenate(score_lists), np.concatenate(relevance_lists), k=k)
    expected = _by_hand(relevance_lists, score_lists, k)
    assert (quality.map, quality.mrr, quality.hit_rate) == pytest.approx(expected, abs=1e-12)


def test_a_perfect_ranking_scores_one_and_a_reversed_one_less():
    queries = np.array(["a"] * 4 + ["b"] * 4, dtype=object)
    relevance = np.array([3, 2, 0, 0, 1, 0, 0, 0], dtype=float)
    perfect = ranking_quality(queries, relevance + 0.5, relevance, k=4)
    assert (perfect.ndcg, perfect.map, perfect.mrr, perfect.hit_rate) == (1.0, 1.0, 1.0, 1.0)
    reversed_ = ranking_quality(queries, -relevance, relevance, k=2)
    assert reversed_.mrr == 0.0 and reversed_.hit_rate == 0.0 and reversed_.ndcg == 0.0


def test_bad_input_is_refused_and_no_relevant_item_gives_no_figure():
    queries = np.array(["a", "a"], dtype=object)
    with pytest.raises(ValueError, match="finite"):
        ranking_quality(queries, np.array([0.1, math.nan]), np.array([1.0, 0.0]), k=1)
    with pytest.raises(ValueError, match="0 or more"):
        ranking_quality(queries, np.array([0.1, 0.2]), np.array([-1.0, 0.0]), k=1)
    with pytest.raises(ValueError, match="at least 1"):
        ranking_quality(queries, np.array([0.1, 0.2]), np.array([1.0, 0.0]), k=0)
    nothing = ranking_quality(queries, np.array([0.1, 0.2]), np.zeros(2), k=1)
    assert math.isnan(nothing.ndcg) and nothing.queries == 0 and nothing.without_relevant == 1


def test_catalogue_coverage_and_popularity_share():
    catalogue = np.array(["i1"] * 50 + ["i2"] * 5 + [f"i{n}" for n in range(3, 21)], dtype=object)  # 20 items
    assert popular_items(catalogue) == {"i1", "i2"}  # the top tenth of 20 items
    queries = np.array(["a", "a", "a", "b", "b", "b"], dtype=object)
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.6, 0.5])
    items = np.array(["i1", "i3", "i4", "i1", "i5", "i6"], dtype=object)
    top = top_k_items(queries, scores, items, k=2)
    assert sorted(top.tolist()) == ["i1", "i1", "i3", "i5"]
    assert coverage(top, catalogue) == pytest.approx(3 / 20)
    assert popularity_share(top, popular_items(catalogue)) == pytest.approx(0.5)
    assert top_k_items(queries, scores, items, k=2, lists=1).tolist() == ["i1", "i3"]


def test_each_figure_carries_the_standard_error_of_its_mean_over_lists():
    relevance, scores = _lists(200, 10, seed=3, ties=False)
    judged = relevance.sum(axis=1) > 0
    per_list = [ndcg_score([r], [s], k=5) for r, s in zip(relevance[judged], scores[judged], strict=True)]
    quality = ranking_quality(*_flat(relevance, scores, seed=2), k=5)
    assert quality.standard_errors["ndcg"] == pytest.approx(np.std(per_list, ddof=1) / np.sqrt(len(per_list)))
