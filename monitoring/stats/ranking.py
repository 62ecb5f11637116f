"""Ranking quality from ranked lists: each query (a user, a request) is one list, ordered by the
model's score, highest first; each row's relevance is its outcome (a click, a purchase, a grade).

NDCG@k takes the relevance itself as gain (as scikit-learn's `ndcg_score` does) and averages
over tied scores as it does; MAP@k, MRR@k and hit rate@k call an item relevant when its
relevance is above 0 and break ties between equal scores in the order the rows came. Queries
without any relevant item have no defined quality and are left out of every figure (their
count is reported). Each figure is a mean over lists, so it comes with its standard error (the
lists' spread over √lists). Vectorised over all queries at once: no loop per query.

Catalogue figures need no outcomes: the share of the catalogue recommended in someone's top k
(coverage, on a given number of queries, since it grows with them) and the share of top-k
slots given to the most popular items (popularity share)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

POPULAR_SHARE = 0.1  # the most frequent tenth of the catalogue is "popular"


@dataclass(frozen=True)
class RankingQuality:
    k: int
    ndcg: float
    map: float
    mrr: float
    hit_rate: float
    queries: int  # with at least one relevant item: those the figures average over
    without_relevant: int
    standard_errors: dict[str, float] = field(default_factory=dict)  # of each mean, over the lists


@dataclass(frozen=True)
class _Lists:
    """Rows ordered by query, then score (highest first), with each row's place in its list."""

    query: np.ndarray  # query code per row, sorted
    position: np.ndarray  # 0 for a list's first row
    order: np.ndarray  # the rows' original indices in this order
    queries: int


def _lists(queries: np.ndarray, keys: np.ndarray) -> _Lists:
    codes, inverse = np.unique(queries, return_inverse=True)
    order = np.lexsort((-keys, inverse))  # stable: ties stay in the order the rows came
    query = inverse[order]
    starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
    position = np.arange(query.size) - np.repeat(starts, np.diff(np.r_[starts, query.size]))
    return _Lists(query, position, order, codes.size)


def ranking_quality(queries: np.ndarray, scores: np.ndarray, relevance: np.ndarray, k: int) -> RankingQuality:
    """NDCG@k, MAP@k, MRR@k and hit rate@k, averaged over the queries that have a relevant item."""
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    scores = np.asarray(scores, dtype=float)
    relevance = np.asarray(relevance, dtype=float)
    if not (np.isfinite(scores).all() and np.isfinite(relevance).all()):
        raise ValueError("scores and relevance must be finite numbers")
    if (relevance < 0).any():
        raise ValueError("relevance must be 0 or more")
    if scores.size == 0:
        return RankingQuality(k, math.nan, math.nan, math.nan, math.nan, 0, 0)
    ranked = _lists(np.asarray(queries), scores)
    count = ranked.queries
    gain = relevance[ranked.order]
    discount = np.where(ranked.position < k, 1.0 / np.log2(ranked.position + 2.0), 0.0)

    # DCG with ties averaged: the rows of one query sharing one score share their mean gain.
    ordered = scores[ranked.order]
    tied = np.r_[True, (ranked.query[1:] != ranked.query[:-1]) | (ordered[1:] != ordered[:-1])]
    group = np.cumsum(tied) - 1
    mean_gain = np.bincount(group, weights=gain) / np.bincount(group)
    dcg = np.bincount(ranked.query, weights=mean_gain[group] * discount, minlength=count)
    ideal = _lists(np.asarray(queries)[ranked.order], gain)  # each list by relevance, highest first
    ideal_discount = np.where(ideal.position < k, 1.0 / np.log2(ideal.position + 2.0), 0.0)
    idcg = np.bincount(ideal.query, weights=gain[ideal.order] * ideal_discount, minlength=count)

    relevant = gain > 0
    within = ranked.position < k
    total_relevant = np.bincount(ranked.query, weights=relevant, minlength=count)
    judged = total_relevant > 0
    hits_so_far = _running_count(relevant, ranked.query)
    precision = np.where(relevant & within, hits_so_far / (ranked.position + 1.0), 0.0)
    average_precision = np.bincount(ranked.query, weights=precision, minlength=count) / np.maximum(
        np.minimum(total_relevant, k), 1
    )
    first = np.full(count, np.inf)
    np.minimum.at(first, ranked.query[relevant & within], ranked.position[relevant & within])
    reciprocal = np.where(np.isfinite(first), 1.0 / (first + 1.0), 0.0)
    if not judged.any():
        return RankingQuality(k, math.nan, math.nan, math.nan, math.nan, 0, count)
    per_list = {
        "ndcg": dcg[judged] / idcg[judged],
        "map": average_precision[judged],
        "mrr": reciprocal[judged],
        "hit_rate": np.isfinite(first[judged]).astype(float),
    }
    lists = int(judged.sum())
    return RankingQuality(
        k=k,
        **{name: float(np.mean(values)) for name, values in per_list.items()},
        queries=lists,
        without_relevant=int(count - lists),
        standard_errors={
            name: float(np.std(values, ddof=1) / math.sqrt(lists)) if lists > 1 else math.nan
            for name, values in per_list.items()
        },
    )


def _running_count(flags: np.ndarray, query: np.ndarray) -> np.ndarray:
    """How many flagged rows so far in each row's list, itself included (rows sorted by list)."""
    running = np.cumsum(flags)
    starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
    before = np.r_[0, running][starts]
    return running - np.repeat(before, np.diff(np.r_[starts, query.size]))


def top_k_items(queries: np.ndarray, scores: np.ndarray, items: np.ndarray, k: int, *, lists: int | None = None):
    """The items in the top k of each list, for the first `lists` queries in query order (all
    when None)."""
    ranked = _lists(np.asarray(queries), np.asarray(scores, dtype=float))
    keep = ranked.position < k
    if lists is not None:
        keep &= ranked.query < lists
    return np.asarray(items)[ranked.order][keep]


def popular_items(catalogue_rows: np.ndarray) -> set:
    """The most frequent tenth of the items (at least one) among the catalogue's rows."""
    values, counts = np.unique(np.asarray(catalogue_rows), return_counts=True)
    if values.size == 0:
        return set()
    top = max(1, math.ceil(values.size * POPULAR_SHARE))
    return set(values[np.argsort(-counts, kind="stable")[:top]].tolist())


def coverage(recommended: np.ndarray, catalogue: np.ndarray) -> float:
    """The share of the catalogue's distinct items that were recommended."""
    known = np.unique(np.asarray(catalogue))
    if known.size == 0:
        return math.nan
    return float(np.isin(known, np.asarray(recommended)).mean())


def popularity_share(recommended: np.ndarray, popular: set) -> float:
    """The share of recommendations that went to popular items."""
    if len(recommended) == 0:
        return math.nan
    return float(np.isin(np.asarray(recommended), np.array(sorted(popular), dtype=object)).mean())
