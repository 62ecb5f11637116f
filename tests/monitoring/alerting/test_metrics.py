"""/metrics: parsed with prometheus-client's own text parser, figures checked against the data."""

import datetime as dt

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from audit.checkpoints import checkpoint_create
from monitoring.alerting.services import alerts_from_run
from tests.monitoring.conftest import ALICE
from tests.monitoring.runs.conftest import _ingest, _rows

pytestmark = pytest.mark.django_db
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _samples(body: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_expose_runs_drift_alerts_and_the_log(credit_model, settings):
    from monitoring.runs.services import run_execute

    settings.METRICS_PUBLIC = True
    _ingest("reference", _rows(2000, start=NOW, seed=1, reference=True))
    _ingest("predictions", _rows(1500, start=NOW - dt.timedelta(hours=2), shift=0.8, seed=2))
    run_execute(model="credit", start=NOW - dt.timedelta(hours=3), end=NOW)
    alerts_from_run(model="credit", run_id="x", checks=[], actor=ALICE)
    checkpoint_create(publish=False)
    samples = _samples(Client().get("/metrics").content.decode())
    assert samples[("driftledger_runs_total", (("model", "credit"), ("status", "completed")))] == 1
    income = (
        "driftledger_drift_effect",
        (("check", "feature_drift"), ("feature", "income"), ("metric", "wasserstein_normed"), ("model", "credit")),
    )
    assert samples[income] > 0.5
    assert samples[("driftledger_run_duration_seconds_count", (("model", "credit"),))] == 1
    open_critical = [
        v
        for (name, labels), v in samples.items()
        if name == "driftledger_open_alerts" and ("severity", "critical") in labels
    ]
    assert open_critical and open_critical[0] >= 2  # income and region drifted
    assert samples[("driftledger_log_events_total", ())] > 5
    assert 0 <= samples[("driftledger_checkpoint_age_seconds", ())] < 60
    assert samples[("driftledger_events_since_checkpoint", ())] == 0


def test_metrics_are_closed_unless_a_token_is_set_or_the_operator_opens_them(settings):
    closed = Client().get("/metrics")
    assert closed.status_code == 403 and b"METRICS_TOKEN" in closed.content and b"driftledger_" not in closed.content
    settings.METRICS_TOKEN = "scrape-me"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me!").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200
    settings.METRICS_TOKEN = ""
    settings.METRICS_PUBLIC = True
    assert b"driftledger_" in Client().get("/metrics").content
