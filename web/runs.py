"""A run's page: the diagnosis first, then its checks grouped by kind with their figures and
thresholds, the segments that drive a problem, each feature's reference and current
distributions (loaded as the reader scrolls), and what the run read (its inputs, whether they
are all still stored, how to recompute it)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from audit.blobs import BlobCorrupt, blob_exists, blob_read
from monitoring.access.authentication import actor_of
from monitoring.access.permissions import CanRequest
from monitoring.alerting.models import Alert
from monitoring.ingestion.selectors import window_from_batches
from monitoring.registry.data_schema import parse_schema
from monitoring.registry.models import RegisteredModel
from monitoring.runs.api import ModelRunsView
from monitoring.runs.domain import RunStatus
from monitoring.runs.models import Run
from monitoring.runs.requests import StillRunning, run_request
from web import charts
from web.access import forbidden, may, page_view

KIND_ORDER = ["data_quality", "feature_drift", "prediction_drift", "label_drift", "performance",
              "estimated_performance", "kpis", "segments"]  # fmt: skip
BINS = 20
TOP_CATEGORIES = 12


@page_view("models")
def run_page(request: HttpRequest, run_id) -> HttpResponse:
    run = Run.objects.filter(run_id=run_id).first()
    if run is None:
        raise Http404(f"no run {run_id}")
    grouped: dict[str, list[dict]] = defaultdict(list)
    for check in run.checks or []:
        subject = check.get("feature") or check.get("metric") or ""
        grouped["segments" if check.get("segment") else check["check"]].append({**check, "subject": subject})
    for checks in grouped.values():
        checks.sort(key=lambda c: ({"critical": 0, "warning": 1}.get(c["status"], 2), c.get("feature") or ""))
    schema = parse_schema(RegisteredModel.objects.get(name=run.model_name).data_schema)
    stored = _stored(run)
    missing = _missing(run)
    context = {
        "run": run,
        "groups": [(kind, grouped[kind]) for kind in KIND_ORDER if kind in grouped],
        "features": [f for f in schema.features if any(c.get("feature") == f for c in run.checks or [])],
        "alerts": Alert.objects.filter(run_id=str(run.run_id)).order_by("-raised_seq"),
        "stored": len(stored),
        "missing": missing,
        "may_request": may(request, CanRequest),
        "may_rerun": _rerunnable(run) and may(request, ModelRunsView.permissions_by_method["POST"]),
        "revisions": Run.objects.filter(
            model_name=run.model_name, window_start=run.window_start, window_end=run.window_end
        )
        .exclude(run_id=run.run_id)
        .order_by("started_seq"),
    }
    return render(request, "web/run.html", context)


def _stored(run: Run) -> list[str]:
    """The digests of the files the run read and wrote."""
    return [digest for digest in [run.result_digest, *run.input_digests] if digest]


def _missing(run: Run) -> list[str]:
    return [digest for digest in _stored(run) if not blob_exists(digest)]


def _rerunnable(run: Run) -> bool:
    """A finished run of a window, of a model still monitored (as the API's rule)."""
    return (
        run.status != RunStatus.RUNNING
        and run.window_start is not None
        and RegisteredModel.objects.filter(name=run.model_name, retired=False).exists()
    )


@page_view("models")
def run_again(request: HttpRequest, run_id) -> HttpResponse:
    """A re-run of the run's window under the model's current policy: a new revision, linked to
    the window's first run, listed on this page once a worker starts it."""
    run = get_object_or_404(Run, run_id=run_id)
    if request.method != "POST":
        return redirect("web:run", run_id=run.run_id)
    permission = ModelRunsView.permissions_by_method["POST"]
    if not may(request, permission):
        return forbidden(request, permission.message)
    if not _rerunnable(run):
        messages.error(request, "This window cannot be run again: the model is retired, or the run is still running.")
        return redirect("web:run", run_id=run.run_id)
    try:
        requested = run_request(
            model=run.model_name, start=run.window_start, end=run.window_end, rerun=True, actor=actor_of(request)
        )
    except StillRunning as refusal:
        messages.error(request, str(refusal))
        return redirect("web:run", run_id=run.run_id)
    queued = (
        f"Revision {requested.revision} of this window is queued as run {requested.run_id[:8]}"
        if requested.revision
        else f"The window's first run under the current policy is queued as run {requested.run_id[:8]}"
    )
    messages.success(request, f"{queued}; it is listed under “Runs of this window” once a worker starts it.")
    return redirect("web:run", run_id=run.run_id)


@page_view("models")
def run_feature(request: HttpRequest, run_id, feature: str) -> HttpResponse:
    """One feature's reference and current distributions, from exactly the batches the run read."""
    run = Run.objects.filter(run_id=run_id).first()
    if run is None or not run.result_digest:
        raise Http404("no stored result for this run")
    schema = parse_schema(RegisteredModel.objects.get(name=run.model_name).data_schema)
    kind = schema.features.get(feature)
    if kind is None:
        raise Http404(f"{run.model_name} has no feature {feature!r}")
    figure: dict[str, Any]
    if _missing(run):  # the run page says so too; a 500 would leave the card "loading…"
        figure = {"svg": None, "note": "the files this run read are no longer stored: no distribution to draw"}
    else:
        try:
            reference, current = _columns(run, json.loads(blob_read(run.result_digest)), feature)
            figure = _numerical(reference, current) if kind == "numerical" else _categorical(reference, current)
        except BlobCorrupt:
            figure = {"svg": None, "note": "this run's stored result is not the one the log recorded: not drawn"}
    checks = [c for c in run.checks or [] if c.get("feature") == feature and not c.get("segment")]
    return render(request, "web/run_feature.html", {"feature": feature, "figure": figure, "checks": checks})


def _columns(run: Run, result: dict[str, Any], feature: str) -> tuple[np.ndarray, np.ndarray]:
    inputs = result["inputs"]
    reference_kind = "reference" if result["policy"].get("reference", "dataset") == "dataset" else "predictions"
    reference = window_from_batches(
        model=run.model_name, kind=reference_kind, digests=inputs["reference"], columns=[feature]
    ).columns[feature]
    current = window_from_batches(
        model=run.model_name,
        kind="predictions",
        digests=inputs["predictions"],
        start=run.window_start,
        end=run.window_end,
        columns=[feature],
    ).columns[feature]
    return reference, current


def _numerical(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    ref = reference[np.isfinite(reference)]
    cur = current[np.isfinite(current)]
    if not len(ref) or not len(cur):
        return {"svg": None, "note": "no present value on one side"}
    low, high = np.quantile(np.concatenate([ref, cur]), [0.005, 0.995])  # a few extremes must not flatten the rest
    edges = np.linspace(low, high, BINS + 1) if high > low else np.array([low - 0.5, high + 0.5])
    shares = [np.histogram(np.clip(side, edges[0], edges[-1]), bins=edges)[0] / len(side) for side in (ref, cur)]
    return {
        "svg": charts.safe(
            charts.histogram_overlay(list(edges), list(shares[0]), list(shares[1]), label="distribution")
        ),
        "rows": [("reference", len(ref), float(np.median(ref))), ("current", len(cur), float(np.median(cur)))],
        "missing": (int(len(reference) - len(ref)), int(len(current) - len(cur))),
    }


def _categorical(reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    def shares(column: np.ndarray) -> dict[str, float]:
        present = [value for value in column.tolist() if value is not None]
        counts: dict[str, int] = defaultdict(int)
        for value in present:
            counts[str(value)] += 1
        return {name: count / len(present) for name, count in counts.items()} if present else {}

    ref, cur = shares(reference), shares(current)
    names = sorted(ref.keys() | cur.keys(), key=lambda name: -max(ref.get(name, 0), cur.get(name, 0)))
    rows = [(name, ref.get(name, 0.0), cur.get(name, 0.0), name not in ref) for name in names[:TOP_CATEGORIES]]
    return {"categories": rows, "more": max(len(names) - TOP_CATEGORIES, 0)}
