"""`/metrics` for Prometheus. Every figure is read from the database at scrape time by one
collector, so any web process (gunicorn workers included) answers the same and nothing needs
prometheus-client's multiprocess mode: counters come from rows that only ever grow.

Exposed: the latest run's drift effects per feature, realized and estimated performance, the
latest KPI values, open alerts by severity, runs by status and their duration, the event log's
size, the age of the last signed checkpoint, the appends waiting for the sequencer, and the
outcome of the latest full verification of the log (audit.selfcheck)."""

from __future__ import annotations

import datetime as dt
import hmac

from django.conf import settings
from django.db.models import Count, Max, Min
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from audit import cosigning
from audit.envelope import parse_time
from audit.models import Checkpoint, Event, PendingAppend
from audit.selfcheck import LogVerificationCollector
from monitoring.alerting.domain import AlertStatus
from monitoring.alerting.models import Alert
from monitoring.runs.domain import RunStatus
from monitoring.runs.models import Run

DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class DriftledgerCollector:
    def collect(self):
        yield from self._runs()
        yield from self._latest_checks()
        yield from self._alerts()
        yield from self._log()

    def _runs(self):
        total = CounterMetricFamily(
            "driftledger_runs", "Monitoring runs recorded, by outcome", labels=["model", "status"]
        )
        for row in Run.objects.values("model_name", "status").annotate(n=Count("run_id")):
            total.add_metric([row["model_name"], row["status"]], row["n"])
        yield total
        durations = HistogramMetricFamily(
            "driftledger_run_duration_seconds", "From RunStarted to RunCompleted or RunFailed", labels=["model"]
        )
        finished = Run.objects.exclude(finished_seq=None).values_list("model_name", "started_at", "finished_seq")
        ends = dict(Event.objects.filter(seq__in=[f for _, _, f in finished]).values_list("seq", "occurred_at"))
        per_model: dict[str, list[float]] = {}
        for model, started, seq in finished:
            per_model.setdefault(model, []).append((ends[seq] - started).total_seconds())
        for model, seconds in sorted(per_model.items()):
            buckets = [(str(b), sum(1 for s in seconds if s <= b)) for b in DURATION_BUCKETS]
            durations.add_metric([model], [*buckets, ("+Inf", len(seconds))], sum(seconds))
        yield durations

    def _latest_checks(self):
        drift = GaugeMetricFamily(
            "driftledger_drift_effect",
            "Effect size of the latest run's drift checks",
            labels=["model", "check", "feature", "metric"],
        )
        performance = GaugeMetricFamily(
            "driftledger_performance",
            "Realized or estimated performance of the latest run",
            labels=["model", "kind", "metric"],
        )
        kpis = GaugeMetricFamily(
            "driftledger_kpi", "Business KPIs over the latest run's window", labels=["model", "kpi"]
        )
        latest = Run.objects.filter(status=RunStatus.COMPLETED).values("model_name").annotate(seq=Max("finished_seq"))
        for run in Run.objects.filter(finished_seq__in=[r["seq"] for r in latest]):
            for check in run.checks:
                value = check.get("value")
                if not isinstance(value, int | float):
                    continue
                if check["check"] in ("feature_drift", "prediction_drift"):
                    drift.add_metric([run.model_name, check["check"], check["feature"], check["metric"]], value)
                elif check["check"] == "kpis":
                    kpis.add_metric([run.model_name, check["metric"]], value)
                elif check["check"] in ("performance", "estimated_performance"):
                    kind = "realized" if check["check"] == "performance" else "estimated"
                    performance.add_metric([run.model_name, kind, check["metric"]], value)
        yield drift
        yield performance
        yield kpis

    def _alerts(self):
        open_alerts = GaugeMetricFamily("driftledger_open_alerts", "Unresolved alerts", labels=["model", "severity"])
        for row in (
            Alert.objects.exclude(status=AlertStatus.RESOLVED)
            .values("model_name", "severity")
            .annotate(n=Count("alert_id"))
        ):
            open_alerts.add_metric([row["model_name"], row["severity"]], row["n"])
        yield open_alerts

    def _log(self):
        size = Event.objects.aggregate(n=Max("seq"))["n"] or 0
        yield CounterMetricFamily("driftledger_log_events", "Events in the audit log", value=size)
        latest = Checkpoint.objects.order_by("-tree_size").values_list("timestamp", "tree_size").first()
        age = GaugeMetricFamily("driftledger_checkpoint_age_seconds", "Seconds since the last signed checkpoint")
        behind = GaugeMetricFamily("driftledger_events_since_checkpoint", "Events appended after the last checkpoint")
        if latest is not None:
            age.add_metric([], (dt.datetime.now(dt.UTC) - parse_time(latest[0])).total_seconds())
            behind.add_metric([], size - latest[1])
        yield age
        yield behind
        yield from _cosigned(size)
        waiting_rows = PendingAppend.objects.filter(refused__isnull=True)
        pending = waiting_rows.aggregate(n=Count("id"), oldest=Min("submitted_at"))
        yield GaugeMetricFamily(
            "driftledger_pending_appends", "Appends submitted to the sequencer and not sealed yet", value=pending["n"]
        )
        waiting = GaugeMetricFamily(
            "driftledger_oldest_pending_append_seconds", "Age of the oldest append the sequencer has not sealed"
        )
        if pending["oldest"] is not None:
            waiting.add_metric([], (dt.datetime.now(dt.UTC) - pending["oldest"]).total_seconds())
        yield waiting


def _cosigned(size: int):
    """How fresh the newest checkpoint the witnesses vouch for is (a quorum of the configured
    cosigning witnesses): events after it could still be rewritten unnoticed by them."""
    freshest = cosigning.freshest_cosigned()
    if freshest is None:  # no cosigning witness configured
        return
    age = GaugeMetricFamily(
        "driftledger_cosigned_checkpoint_age_seconds",
        "Seconds since the newest checkpoint cosigned by a quorum of the witnesses (since the log began: none yet)",
    )
    behind = GaugeMetricFamily(
        "driftledger_events_since_cosigned_checkpoint", "Events appended after the newest cosigned checkpoint"
    )
    age.add_metric([], freshest.age_seconds)
    behind.add_metric([], size - freshest.tree_size)
    yield age
    yield behind


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(DriftledgerCollector())
REGISTRY.register(LogVerificationCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The figures name models and features: only for a scraper holding METRICS_TOKEN, or for
    anyone when the operator opened the endpoint (METRICS_PUBLIC=true)."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("unknown or missing bearer token\n", status=401, content_type="text/plain")
    elif not settings.METRICS_PUBLIC:
        closed = "/metrics is closed: set METRICS_TOKEN (scrapers send it as a bearer token) or METRICS_PUBLIC=true\n"
        return HttpResponse(closed, status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
