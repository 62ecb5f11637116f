"""The demo's two other situations, told through the product's own paths (registry, the
ingestion API with each model's reporting key, daily monitoring runs): a churn model meeting
a new customer segment, whose outcomes arrive after the run and revise its diagnosis; and a
recommender whose click-through rate falls while its model and data hold (after a day of
broken upstream data). Every figure printed is one a run recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import orjson
from django.test import Client

from audit.envelope import format_time
from audit.store import Actor
from monitoring.registry.models import RegisteredModel
from monitoring.registry.services import api_key_issue, deployment_change, model_register, version_register
from monitoring.runs.models import Run
from monitoring.runs.services import run_execute

Say = Callable[[str], None]
DAYS = 7  # daily runs, so that the model pages show a week of timelines

CHURN = "churn-telco"
CHURN_SCHEMA = {
    "numerical": ["tenure_months", "monthly_charges", "support_calls"],
    "categorical": ["plan", "region"],
    "id": "customer_id",
    "timestamp": "scored_at",
    "prediction": "churn_score",
    "target": "churned",
    "segments": ["region"],
}
RECOMMENDER = "recommender-home"
RECOMMENDER_SCHEMA = {
    "numerical": ["item_popularity", "user_activity", "position"],
    "categorical": ["surface"],
    "id": "impression_id",
    "timestamp": "served_at",
    "prediction": "click_score",
    "target": "clicked",
}


def churn_story(say: Say, *, actor: Actor, today: dt.datetime, step: int) -> None:
    """A week of daily runs; on the last day an online channel in a new region brings customers
    the model never saw (short tenure, high charges), who churn far more than it predicts."""
    client = _registered(
        CHURN, CHURN_SCHEMA, actor, "Monthly churn risk of telecom subscribers.", "binary_classification"
    )
    if client is None:
        say(f"{step}. Model {CHURN!r} already tells its story in this log.")
        return
    _post(client, CHURN, "reference", _customers(today - dt.timedelta(days=30), 20_000, new_share=0.0, seed=30))
    late: list[dict] = []
    for day in _days(today):
        new_share = 0.2 if day == _days(today)[-1] else 0.0
        rows = _customers(day, 6_000, new_share=new_share, seed=(today - day).days)
        _post(client, CHURN, "predictions", [{k: v for k, v in row.items() if k != "churned"} for row in rows])
        outcomes = [{"customer_id": row["customer_id"], "churned": row["churned"]} for row in rows]
        if day == _days(today)[-1]:
            late = outcomes  # the last day's outcomes are known only after its run
        else:
            _post(client, CHURN, "labels", outcomes)
    last = _runs(CHURN, today, actor)
    moved = [c for c in last.checks if c.get("segment") and c["status"] != "ok"]
    said = "; ".join(f"{c['segment']} {c.get('metric')} {c['value']:.3g} [{c['status']}]" for c in moved[:3])
    diagnosis = last.diagnosis or {}
    say(
        f"{step}. Churn model {CHURN!r}: {DAYS} daily runs; the last ({last.level}) found {said}. "
        f"Diagnosis: {diagnosis.get('cause')} ({diagnosis.get('scope')})."
    )
    _post(client, CHURN, "labels", late)  # the product evaluates them as they arrive
    last.refresh_from_db()
    realized, revised = last.realized or {}, last.diagnosis or {}
    band = f" (estimated {realized['estimated']:.3f})" if realized.get("estimated") is not None else ""
    cohorts = [c for c in last.checks if c.get("segment") and c.get("metric") == "roc_auc" and c["status"] != "ok"]
    named = "; ".join(f"{c['segment']} roc_auc {c['value']:.3f} against {c['reference']:.3f}" for c in cohorts)
    if revised.get("revision"):
        say(
            f"   Its outcomes arrived a day later: realized roc_auc {realized.get('realized', 0):.3f}{band}; "
            f"diagnosis revised (revision {revised['revision']}): {revised['cause']} ({revised['scope']})"
            f"{'; ' + named if named else ''}."
        )


def recommender_story(say: Say, *, actor: Actor, today: dt.datetime, step: int) -> None:
    """A week of daily runs; three days ago an upstream bug blanked a third of user_activity;
    yesterday the click-through rate fell by a quarter while inputs, scores and the estimated
    performance held: users changed, not the model."""
    client = _registered(
        RECOMMENDER, RECOMMENDER_SCHEMA, actor, "Probability that a home-page recommendation is clicked.",
        "binary_classification",
    )  # fmt: skip
    if client is None:
        say(f"{step}. Model {RECOMMENDER!r} already tells its story in this log.")
        return
    _post(client, RECOMMENDER, "reference", _impressions(today - dt.timedelta(days=30), 6_000, outcomes=True, seed=30))
    days = _days(today)
    for day in [days[0] - dt.timedelta(days=1), *days]:
        blanked = 0.35 if day == days[-3] else 0.0
        rows = _impressions(day, 1_500, outcomes=False, blanked=blanked, seed=(today - day).days)
        _post(client, RECOMMENDER, "predictions", rows)
        ctr = 0.074 if day == days[-1] else 0.10
        _post(client, RECOMMENDER, "kpis", _ctr(day, ctr, seed=(today - day).days))
    _runs(RECOMMENDER, today, actor)
    runs = list(Run.objects.filter(model_name=RECOMMENDER).order_by("window_end"))
    told = ", ".join(f"{run.window_start:%m-%d} {(run.diagnosis or {}).get('cause')}" for run in runs[-3:])
    last = runs[-1]
    kpi: dict = next((c for c in last.checks if c["check"] == "kpis"), {})
    say(
        f"{step}. Recommender {RECOMMENDER!r}: {DAYS} daily runs, the last three diagnosed {told}; "
        f"yesterday ctr {kpi.get('value', 0):.3f} against {kpi.get('reference', 0):.3f} the day before "
        f"[{kpi.get('status')}], no input or prediction drift."
    )


def _registered(name: str, schema: dict, actor: Actor, description: str, task: str) -> Client | None:
    """The model registered with its first version live, and a client with its reporting key;
    None when the model exists already (a second demo run continues the log, it does not repeat)."""
    if RegisteredModel.objects.filter(name=name).exists():
        return None
    model_register(name=name, task=task, owner=actor.id, data_schema=schema, description=description, actor=actor,
                   reason="Enters production with monitoring.")  # fmt: skip
    version_register(name=name, version="1.0", artifact_uri=f"s3://models/{name}/1.0", actor=actor)
    deployment_change(name=name, action="promote", version="1.0", actor=actor, reason="First release.")
    _, key = api_key_issue(name=name, label="serving", expires_at=None, actor=actor)
    return Client(HTTP_AUTHORIZATION=f"Api-Key {key}")


def _post(client: Client, model: str, kind: str, rows: list[dict]) -> None:
    answer = client.post(f"/api/v1/models/{model}/{kind}/", orjson.dumps(rows), content_type="application/json")
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"reporting {kind} of {model} failed: {answer.status_code} {answer.content[:300]!r}")


def _days(today: dt.datetime) -> list[dt.datetime]:
    return [today - dt.timedelta(days=DAYS - i) for i in range(DAYS)]


def _runs(model: str, today: dt.datetime, actor: Actor) -> Run:
    for day in _days(today):
        run_execute(model=model, start=day, end=day + dt.timedelta(days=1), actor=actor)
    return Run.objects.filter(model_name=model).order_by("-window_end").first()


def _customers(day: dt.datetime, rows: int, *, new_share: float, seed: int) -> list[dict]:
    """A day of scored customers with their outcome (the caller sends it as labels, or with the
    reference); a share `new_share` of them from the new online channel. `seed` is the day's
    distance from today, not its date, so that the story tells the same figures every day."""
    rng = np.random.default_rng(seed * 100 + 7)
    new = rng.random(rows) < new_share
    tenure = np.where(new, rng.gamma(2.0, 3.0, rows), rng.gamma(3.0, 9.0, rows))
    charges = np.where(new, rng.normal(85, 10, rows), rng.normal(62, 15, rows))
    calls = rng.poisson(np.where(new, 2.0, 1.2))
    score = 1 / (1 + np.exp(-(-1.2 - 0.05 * tenure + 0.02 * (charges - 60) + 0.3 * calls)))
    truth = np.where(new, 0.6, score)  # the new cohort churns far more than scored, and not as the score ranks it
    churned = rng.random(rows) < truth
    regions = rng.choice(["north", "south", "east", "west"], rows)
    return [
        {
            "customer_id": f"c-{day:%Y%m%d}-{i}",
            "scored_at": format_time(day + dt.timedelta(seconds=int(i * 86_400 / rows))),
            "tenure_months": round(float(tenure[i]), 1),
            "monthly_charges": round(float(charges[i]), 2),
            "support_calls": int(calls[i]),
            "plan": "prepaid" if new[i] else str(rng.choice(["monthly", "annual"])),
            "region": "online-apac" if new[i] else str(regions[i]),
            "churn_score": round(float(score[i]), 4),
            "churned": int(churned[i]),
        }
        for i in range(rows)
    ]


def _impressions(day: dt.datetime, rows: int, *, outcomes: bool, seed: int, blanked: float = 0.0) -> list[dict]:
    rng = np.random.default_rng(seed * 100 + 11)
    popularity = rng.beta(2, 5, rows)
    activity = rng.gamma(2.0, 3.0, rows)
    position = rng.integers(1, 11, rows)
    score = 1 / (1 + np.exp(-(-2.6 + 2.0 * popularity + 0.05 * activity - 0.08 * position)))
    clicked = rng.random(rows) < score
    gone = rng.random(rows) < blanked
    return [
        {
            "impression_id": f"i-{day:%Y%m%d}-{i}",
            "served_at": format_time(day + dt.timedelta(seconds=int(i * 86_400 / rows))),
            "item_popularity": round(float(popularity[i]), 4),
            "user_activity": None if gone[i] else round(float(activity[i]), 2),
            "position": int(position[i]),
            "surface": str(rng.choice(["home", "feed", "email"])),
            "click_score": round(float(score[i]), 4),
            **({"clicked": int(clicked[i])} if outcomes else {}),
        }
        for i in range(rows)
    ]


def _ctr(day: dt.datetime, level: float, *, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed * 100 + 13)
    return [
        {
            "timestamp": format_time(day + dt.timedelta(hours=hour, minutes=30)),
            "kpi": "ctr",
            "value": round(float(level * (1 + rng.normal(0, 0.02))), 4),
            "count": 2_000,
        }
        for hour in range(24)
    ]
