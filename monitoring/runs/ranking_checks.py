"""A ranking model's checks (pure): the quality of its ranked lists once outcomes are known
(NDCG@k, MAP@k, MRR@k, hit rate@k) and what it recommends from the catalogue (coverage and
popularity share), each against the same figure on the reference.

Outcomes arrive as labels per row (a click, a purchase, a grade of relevance). A list is judged
once any of its rows has a label; its rows without one count as not relevant (an impression
nobody clicked). The reference's lists carry their outcomes in the target column. A quality
figure is a mean over lists: it carries its 95 % interval, and a drop is graded only when it is
both material (the policy's drops) and significant (the standard errors of both means)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from monitoring.registry.data_schema import DataSchema
from monitoring.runs.domain import CheckKind, Level
from monitoring.runs.grading import graded
from monitoring.stats.ranking import (
    RankingQuality,
    coverage,
    popular_items,
    popularity_share,
    ranking_quality,
    top_k_items,
)
from monitoring.stats.uncertainty import Z_95, significant_gap

Columns = Mapping[str, np.ndarray]
QUALITY = ("ndcg", "map", "mrr", "hit_rate")


def ranking_realized(
    current: Columns, labels: Mapping[Any, Any], schema: DataSchema, k: int
) -> tuple[RankingQuality, int] | None:
    """The quality of the window's lists that have a label, and how many rows are labelled."""
    if not schema.query or schema.query not in current or schema.id not in current:
        return None
    ids = current[schema.id].tolist()
    labelled = np.array([key in labels for key in ids], dtype=bool)
    if not labelled.any():
        return None
    queries = np.asarray(current[schema.query], dtype=object)
    judged = np.isin(queries, np.unique(queries[labelled]))
    relevance = np.array([float(labels[key]) if key in labels else 0.0 for key in ids], dtype=float)[judged]
    scores = np.asarray(current[schema.score_column(current)], dtype=float)[judged]
    usable = np.isfinite(scores) & np.isfinite(relevance)
    quality = ranking_quality(queries[judged][usable], scores[usable], relevance[usable], k)
    return quality, int(labelled.sum())


def ranking_quality_checks(
    reference: Columns, current: Columns, labels: Mapping[Any, Any], schema: DataSchema, policy
) -> list[dict]:
    k = policy["ranking"]["k"]
    realized = ranking_realized(current, labels, schema, k)
    if realized is None or realized[0].queries == 0:
        return []
    now, labelled = realized
    before = _reference_quality(reference, schema, k)
    checks = []
    for name in QUALITY:
        value, error = getattr(now, name), now.standard_errors.get(name, math.nan)
        then = getattr(before, name) if before is not None else math.nan
        extra: dict = {"labelled_rows": labelled}
        if math.isfinite(error):
            extra |= {"lower": max(value - Z_95 * error, 0.0), "upper": min(value + Z_95 * error, 1.0)}
        check = graded(CheckKind.PERFORMANCE, f"{name}@{k}", value, then, then - value, policy, extra)
        spread = before.standard_errors.get(name, math.nan) ** 2 if before is not None else math.nan
        if check["status"] != Level.OK and not significant_gap(then - value, error**2, spread):
            check["status"] = Level.OK  # a few hundred lists move by chance: material, not established
        checks.append(check)
    return checks


def catalogue_checks(reference: Columns, current: Columns, schema: DataSchema, policy) -> list[dict]:
    """Coverage of the catalogue (the reference's items) on as many lists as both sides have,
    since coverage grows with the number of lists; and the share of top-k slots given to the
    reference's most popular items."""
    k = policy["ranking"]["k"]
    score = schema.score_column(current)
    needed = (schema.query, schema.item, score)
    if not schema.item or not all(name in current and name in reference for name in needed):
        return []
    ref_lists, cur_lists = _lists(reference, schema, score), _lists(current, schema, score)
    if ref_lists is None or cur_lists is None:
        return []
    lists = min(np.unique(ref_lists[0]).size, np.unique(cur_lists[0]).size)
    catalogue = np.asarray(reference[schema.item], dtype=object)
    popular = popular_items(catalogue)
    figures = {}
    for side, (queries, scores, items) in (("reference", ref_lists), ("current", cur_lists)):
        top = top_k_items(queries, scores, items, k, lists=lists)
        everything = top_k_items(queries, scores, items, k)
        figures[side] = (coverage(top, catalogue), popularity_share(everything, popular))
    (ref_coverage, ref_popular), (cur_coverage, cur_popular) = figures["reference"], figures["current"]
    return [
        graded(
            CheckKind.PREDICTION_DRIFT,
            f"coverage@{k}",
            cur_coverage,
            ref_coverage,
            (ref_coverage - cur_coverage) / ref_coverage if ref_coverage else math.nan,
            policy,
            {},
        ),
        graded(
            CheckKind.PREDICTION_DRIFT,
            f"popularity_share@{k}",
            cur_popular,
            ref_popular,
            cur_popular - ref_popular,
            policy,
            {},
        ),
    ]


def _lists(columns: Columns, schema: DataSchema, score: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    queries = np.asarray(columns[schema.query or ""], dtype=object)
    scores = np.asarray(columns[score], dtype=float)
    items = np.asarray(columns[schema.item or ""], dtype=object)
    usable = np.isfinite(scores) & np.array(
        [q is not None and i is not None for q, i in zip(queries, items, strict=True)]
    )
    if not usable.any():
        return None
    return queries[usable], scores[usable], items[usable]


def _reference_quality(reference: Columns, schema: DataSchema, k: int) -> RankingQuality | None:
    score = schema.score_column(reference)
    if not (schema.query and schema.target) or not all(c in reference for c in (schema.query, schema.target, score)):
        return None
    queries = np.asarray(reference[schema.query], dtype=object)
    scores = np.asarray(reference[score], dtype=float)
    relevance = np.array([math.nan if v is None else float(v) for v in reference[schema.target].tolist()])
    usable = np.isfinite(scores) & np.isfinite(relevance) & np.array([q is not None for q in queries])
    quality = ranking_quality(queries[usable], scores[usable], relevance[usable], k)
    return quality if quality.queries else None
