"""The models: an overview of every model's health, and one model's page (timelines over its
runs, deployment history, policy versions and their diff, batches received). Views of the read
models and the signed log; nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Count, F, Max, Q, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import RowNumber
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.log import LogFilter, log_page
from audit.selectors import stream_events
from monitoring.alerting.models import Alert
from monitoring.ingestion.models import Batch
from monitoring.policies.change import policy_diff
from monitoring.policies.domain import PolicySet
from monitoring.policies.services import policy_load
from monitoring.registry.models import Deployment, RegisteredModel
from monitoring.remediation.models import Remediation
from monitoring.runs.models import Run
from web import charts
from web.access import page_view

TREND_RUNS = 20
TIMELINE_RUNS = 50
OPEN = ("open", "acknowledged")
SAME_SCALE_THRESHOLDS = ("feature_drift", "prediction_drift", "label_drift", "data_quality")
JUDGED_AGAINST_A_BASELINE = ("performance", "estimated_performance", "kpis")  # their `reference` is a figure
STALE_AFTER = dt.timedelta(hours=24)  # without a heartbeat in the policy, a day without data stands out
# The model's main figure per run: realized performance, else the estimate, else nothing.
MAIN_METRIC = RawSQL(
    """COALESCE(
        jsonb_path_query_first(checks, '$[*] ? (@.check == "performance" && !exists(@.segment)).value'),
        jsonb_path_query_first(checks, '$[*] ? (@.check == "estimated_performance").value'))::float""",
    [],
)


@page_view("models")
def models_overview(request: HttpRequest) -> HttpResponse:
    models = list(RegisteredModel.objects.filter(retired=False).order_by("name"))
    deployments = {d.model_id: d for d in Deployment.objects.all()}
    recent = (
        Run.objects.filter(status="completed")
        .annotate(
            main=MAIN_METRIC, rank=Window(RowNumber(), partition_by=F("model_name"), order_by=F("window_end").desc())
        )
        .filter(rank__lte=TREND_RUNS)
        .values_list("model_name", "window_end", "level", "main", "run_id")
    )
    runs: dict[str, list[tuple]] = defaultdict(list)
    for row in recent:
        runs[row[0]].append(row)
    alerts = {
        row["model_name"]: row
        for row in Alert.objects.filter(status__in=OPEN)
        .values("model_name")
        .annotate(
            open=Count("alert_id"),
            incidents=Count("run_id", distinct=True),
            critical=Count("alert_id", filter=Q(severity="critical")),
        )
    }
    arrived = dict(Batch.objects.values_list("model_id").annotate(last=Max("ingested_at")))
    now = timezone.now()
    rows = []
    for model in models:
        history = runs.get(model.name, [])
        last_data = arrived.get(model.name)
        rows.append(
            {
                "model": model,
                "deployment": deployments.get(model.name),
                "last_run": history[0] if history else None,
                "alerts": alerts.get(model.name, {}),
                "last_data": last_data,
                "stale": last_data is None or now - last_data > STALE_AFTER,
                "trend": charts.safe(
                    charts.sparkline([row[3] for row in reversed(history)], label=f"{model.name} main metric")
                ),
            }
        )
    return render(request, "web/models.html", {"rows": rows})


@page_view("models")
def model_page(request: HttpRequest, name: str) -> HttpResponse:
    model = RegisteredModel.objects.filter(name=name).first()
    if model is None:
        raise Http404(f"no model named {name}")
    runs = list(Run.objects.filter(model_name=name).order_by("-window_end")[:TIMELINE_RUNS])[::-1]
    versions = _policy_versions(name)
    older, newer = _chosen_versions(request, versions)
    policy = policy_load(name)
    context = {
        "model": model,
        "deployment": Deployment.objects.filter(model=model).first(),
        "runs": runs[::-1][:15],
        "charts": _timelines(runs),
        "history": log_page(LogFilter(stream=("model", name), limit=30))[0],
        "versions": versions,
        "older": older,
        "newer": newer,
        "diff": policy_diff(older["policy"], newer["policy"], features=policy.features) if older and newer else [],
        "policy": policy,
        "batches": Batch.objects.filter(model=model).order_by("-seq")[:20],
        "alerts": Alert.objects.filter(model_name=name, status__in=OPEN).order_by("-raised_seq")[:20],
        "requests": Remediation.objects.filter(model_name=name).order_by("-requested_seq")[:20],
    }
    return render(request, "web/model.html", context)


def _policy_versions(name: str) -> list[dict[str, Any]]:
    return [
        {"version": event.version, "policy": event.policy, "actor": actor}
        for event, actor in stream_events("policy", name)
        if isinstance(event, PolicySet)
    ]


def _chosen_versions(request: HttpRequest, versions: list[dict]) -> tuple[dict | None, dict | None]:
    """The two versions to compare: ?a=&b= when given, else the last two."""
    by_number = {v["version"]: v for v in versions}
    try:
        a, b = int(request.GET.get("a", 0)), int(request.GET.get("b", 0))
    except ValueError:
        a = b = 0
    if a in by_number and b in by_number:
        return by_number[a], by_number[b]
    return (versions[-2], versions[-1]) if len(versions) > 1 else (None, None)


def _timelines(runs: list[Run]) -> list[dict[str, Any]]:
    """One chart per (check, subject): drift per feature (the worst last), prediction and label
    drift, performance realized and estimated (with its band), KPIs, data quality counts."""
    series: dict[tuple[str, str, str], list] = defaultdict(lambda: [None] * len(runs))
    thresholds: dict[tuple[str, str, str], float | None] = {}
    for index, run in enumerate(runs):
        for check in run.checks or []:
            if check.get("segment") or check.get("value") is None:
                continue  # segments have their own table on the run page
            key = (check["check"], check.get("feature") or check.get("metric") or "", check.get("metric") or "")
            band = (
                (check["lower"], check["upper"])
                if check.get("lower") is not None and check.get("upper") is not None
                else None
            )
            series[key][index] = (check["value"], check["status"], band, check.get("reference"))
            if check["check"] in SAME_SCALE_THRESHOLDS:  # elsewhere the threshold is a drop, not a level
                thresholds[key] = check.get("threshold")
    order = {
        "feature_drift": 0,
        "prediction_drift": 1,
        "label_drift": 2,
        "performance": 3,
        "estimated_performance": 4,
        "kpis": 5,
        "data_quality": 6,
    }
    found = []
    for key, values in series.items():
        points = [
            (_short(run.window_end), v[0] if v else None, v[1] if v else "")
            for run, v in zip(runs, values, strict=True)
        ]
        last = next((v for v in reversed(values) if v), None)
        severity = {"critical": 0, "warning": 1}.get(last[1] if last else "", 2)
        bands = [v[2] if v else None for v in values]
        baselines = [v[3] if v else None for v in values] if key[0] in JUDGED_AGAINST_A_BASELINE else []
        found.append(
            {
                "check": key[0],
                "subject": key[1],
                "metric": key[2],
                "severity": severity,
                "svg": charts.safe(
                    charts.timeline(
                        points,
                        threshold=thresholds.get(key),
                        band=bands if any(bands) else None,
                        baseline=baselines if any(b is not None for b in baselines) else None,
                        label=f"{key[0]} {key[1]}",
                    )
                ),
            }
        )
    return sorted(found, key=lambda c: (order.get(c["check"], 9), c["severity"], c["subject"]))


def _short(moment: dt.datetime | None) -> str:
    return moment.strftime("%m-%d %H:%M") if moment else "?"
