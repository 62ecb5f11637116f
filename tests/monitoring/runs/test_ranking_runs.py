"""A recommender registered as a ranking model: its lists' quality once clicks arrive (checked
against scikit-learn), what it recommends from the catalogue, and a drop diagnosed."""

import datetime as dt

import numpy as np
import orjson
import pytest
from sklearn.metrics import ndcg_score

from audit.errors import InvalidCommand
from audit.models import Event
from monitoring.ingestion.services import batch_ingest
from monitoring.registry import services as registry
from monitoring.runs.models import Run
from monitoring.runs.services import run_execute
from tests.monitoring.conftest import ALICE

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
SCHEMA = {
    "numerical": ["user_activity"],
    "categorical": ["surface"],
    "prediction": "score",
    "target": "clicked",
    "query": "user",
    "item": "item",
}
USERS, SHOWN, ITEMS = 400, 10, 200


def _lists(seed: int, *, informative: bool, start: dt.datetime | None, prefix: str, users: int = USERS):
    """Each user sees 10 of 200 items ranked by score; a click follows the user's taste, which
    the score reads (informative) or no longer does (the users changed what they like)."""
    rng = np.random.default_rng(seed)
    rows, clicks = [], {}
    for u in range(users):
        items = rng.choice(ITEMS, SHOWN, replace=False, p=_popularity())
        taste = rng.random(SHOWN)
        score = taste + rng.normal(0, 0.15, SHOWN) if informative else rng.random(SHOWN)
        clicked = (taste > 0.75).astype(int)
        for j in range(SHOWN):
            row = {"user": f"{prefix}{u}", "item": f"item-{items[j]}", "score": float(score[j]),
                   "user_activity": float(rng.gamma(2, 3)), "surface": "home"}  # fmt: skip
            if start is None:
                row["clicked"] = int(clicked[j])
            else:
                row |= {
                    "id": f"{prefix}{u}-{j}",
                    "timestamp": (start + dt.timedelta(seconds=u * SHOWN + j)).isoformat(),
                }
                clicks[row["id"]] = int(clicked[j])
            rows.append(row)
    return rows, clicks


def _popularity():
    weights = 1.0 / np.arange(1, ITEMS + 1)
    return weights / weights.sum()


def _post(kind, rows):
    batch_ingest(model="recs", kind=kind, body=orjson.dumps(rows), content_type="application/json", actor=ALICE)


@pytest.fixture
def recommender(db):
    registry.model_register(name="recs", task="ranking", owner="alice", data_schema=SCHEMA, actor=ALICE)
    _post("reference", _lists(1, informative=True, start=None, prefix="r")[0])


def _sklearn_ndcg(rows, clicks, k):
    by_user: dict[str, tuple[list, list]] = {}
    for row in rows:
        rel, score = by_user.setdefault(row["user"], ([], []))
        rel.append(clicks[row["id"]])
        score.append(row["score"])
    judged = [(r, s) for r, s in by_user.values() if sum(r) > 0]
    return ndcg_score([r for r, _ in judged], [s for _, s in judged], k=k)


@pytest.mark.parametrize("informative", [True, False])
def test_clicks_arriving_measure_the_lists_and_a_ranking_that_lost_its_users_is_concept_drift(
    recommender, django_capture_on_commit_callbacks, informative
):
    start = NOW - dt.timedelta(hours=3)
    rows, clicks = _lists(2, informative=informative, start=start, prefix="w")
    _post("predictions", rows)
    outcome = run_execute(model="recs", start=start, end=NOW)
    run = Run.objects.get(run_id=outcome.run_id)
    catalogue = {c["metric"]: c for c in run.checks if c["metric"] in ("coverage@10", "popularity_share@10")}
    assert set(catalogue) == {"coverage@10", "popularity_share@10"}
    assert catalogue["coverage@10"]["status"] == "ok" and 0 < catalogue["coverage@10"]["value"] <= 1
    assert not [c for c in run.checks if c["check"] == "performance"]  # no clicks yet

    with django_capture_on_commit_callbacks(execute=True):  # the clicks (label rows: clicked ones and not)
        batch_ingest(
            model="recs",
            kind="labels",
            body=orjson.dumps([{"id": key, "clicked": value} for key, value in clicks.items()]),
            content_type="application/json",
            actor=ALICE,
        )
    realized = Event.objects.get(event_type="monitoring.PerformanceRealized", stream_id=outcome.run_id).payload
    assert realized["metric"] == "ndcg@10"
    assert realized["realized"] == pytest.approx(_sklearn_ndcg(rows, clicks, 10), abs=1e-12)
    run.refresh_from_db()
    quality = {c["metric"]: c for c in run.checks if c["check"] == "performance"}
    assert set(quality) == {"ndcg@10", "map@10", "mrr@10", "hit_rate@10"}
    assert quality["ndcg@10"]["value"] == pytest.approx(realized["realized"])
    if informative:  # the ranking holds: no revision was needed, or one that finds no performance problem
        assert all(c["status"] == "ok" for c in quality.values())
    else:
        assert quality["ndcg@10"]["status"] == "critical" and quality["ndcg@10"]["drop"] > 0.1
        assert run.diagnosis["cause"] == "concept_drift" and run.diagnosis["revision"] == 1


def test_a_ranking_model_must_name_its_lists(db):
    schema = {k: v for k, v in SCHEMA.items() if k != "query"}
    with pytest.raises(InvalidCommand, match="names its query"):
        registry.model_register(name="recs", task="ranking", owner="alice", data_schema=schema, actor=ALICE)


def test_a_prediction_without_its_list_is_refused(recommender):
    from monitoring.ingestion.conform import BatchRejected

    rows, _ = _lists(2, informative=True, start=NOW - dt.timedelta(hours=1), prefix="w")
    with pytest.raises(BatchRejected) as refused:
        _post("predictions", [{k: v for k, v in row.items() if k != "user"} for row in rows[:5]])
    assert ("user", "missing column") in [(p.column, p.reason) for p in refused.value.problems]


def test_chance_differences_on_a_few_lists_raise_nothing(recommender, django_capture_on_commit_callbacks):
    """Forty lists a window: their NDCG moves by several hundredths by chance alone; the figure
    carries its interval and no drop within chance is called a problem."""
    drops = []
    for seed in range(10, 16):
        start = NOW - dt.timedelta(days=seed)
        rows, clicks = _lists(seed, informative=True, start=start, prefix=f"s{seed}-", users=40)
        _post("predictions", rows)
        with django_capture_on_commit_callbacks(execute=True):
            _post("labels", [{"id": key, "clicked": value} for key, value in clicks.items()])
        run = Run.objects.get(run_id=run_execute(model="recs", start=start, end=start + dt.timedelta(hours=1)).run_id)
        ndcg = next(c for c in run.checks if c["metric"] == "ndcg@10")
        assert ndcg["status"] == "ok", ndcg
        assert ndcg["lower"] < ndcg["value"] < ndcg["upper"]
        drops.append(ndcg["drop"])
    assert max(drops) > 0.02  # what the fixed drop alone would have called a warning


def test_a_negative_relevance_is_refused_at_the_door(recommender):
    from monitoring.ingestion.conform import BatchRejected

    rows, clicks = _lists(2, informative=True, start=NOW - dt.timedelta(hours=1), prefix="w", users=3)
    _post("predictions", rows)
    with pytest.raises(BatchRejected) as refused:
        _post("labels", [{"id": key, "clicked": -1} for key in list(clicks)[:2]])
    assert [(p.column, p.reason) for p in refused.value.problems] == [
        ("clicked", "a ranking target (relevance) must be 0 or more")
    ]
