"""Server time of the monitoring pages, and their load time in a real Chromium.

Builds (once; `--keep` reuses it) a database `driftledger_bench_ui_models` through the product's
own paths (registry, ingestion, real monitoring runs): 200 models with three daily runs each,
one model with 1,000 hourly runs, one model of 100 features. Then times, in-process through the
whole Django stack as a signed-in engineer (median of 15):

- the models overview with 200 models (target < 300 ms),
- the page of the model with 1,000 runs (target < 300 ms),
- the page of a run with 100 features (target < 300 ms),

and serves the app on a local port to load those pages in Debian's Chromium (Playwright):
from navigation to the load event, charts included (target < 1 s).

    python bench/ui_models.py [--keep] [--repeat 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson
from _common import page_median
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from audit import keyring
from audit.keys import SigningKey
from audit.store import Actor
from monitoring.access.services import person_register
from monitoring.ingestion.services import batch_ingest
from monitoring.registry.models import RegisteredModel
from monitoring.registry.services import deployment_change, model_register, version_register
from monitoring.runs.models import Run
from monitoring.runs.services import run_execute

NAME = "driftledger_bench_ui_models"
ENGINEER = Actor("user", "bench-engineer", "Bench Engineer")
START = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
TARGET = 0.300
BROWSER_TARGET = 1.0
LOAD_TIME = "() => { const t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd - t.startTime; }"


def _schema(features: int) -> dict:
    return {"numerical": [f"f{i:03d}" for i in range(features)], "id": "id", "timestamp": "ts", "prediction": "score"}


def _rows(count: int, features: int, start: dt.datetime, span: dt.timedelta, shift: float, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    values = rng.normal(shift, 1.0, (count, features)).round(4)
    step = span / count
    return orjson.dumps(
        [
            {
                "id": f"{seed}-{i}",
                "ts": (start + step * i).isoformat(),
                "score": float(rng.random()),
                **{f"f{j:03d}": float(values[i, j]) for j in range(features)},
            }
            for i in range(count)
        ]
    )


def _model(name: str, features: int) -> None:
    model_register(
        name=name, task="binary_classification", owner="bench", data_schema=_schema(features), actor=ENGINEER
    )
    version_register(name=name, version="1", artifact_uri=f"s3://bench/{name}", actor=ENGINEER)
    deployment_change(name=name, action="promote", version="1", actor=ENGINEER, reason="first release")


def _ingest(name: str, kind: str, body: bytes) -> None:
    batch_ingest(model=name, kind=kind, body=body, content_type="application/json", actor=ENGINEER)


def _build() -> None:
    started = time.perf_counter()
    for index in range(200):
        name = f"fleet-{index:03d}"
        _model(name, 3)
        _ingest(name, "reference", _rows(300, 3, START - dt.timedelta(days=10), dt.timedelta(days=1), 0, index))
        _ingest(name, "predictions", _rows(600, 3, START, dt.timedelta(days=3), 0.3 * (index % 3), index + 1000))
        for day in range(3):
            run_execute(model=name, start=START + dt.timedelta(days=day), end=START + dt.timedelta(days=day + 1))
        if index % 20 == 0:
            print(f"  {index + 1} fleet models ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    _model("busy", 5)
    _ingest("busy", "reference", _rows(500, 5, START - dt.timedelta(days=10), dt.timedelta(days=1), 0, 7))
    for chunk in range(10):
        first = START + dt.timedelta(hours=100 * chunk)
        _ingest("busy", "predictions", _rows(3000, 5, first, dt.timedelta(hours=100), 0.002 * chunk, 100 + chunk))
    for hour in range(1000):
        run_execute(model="busy", start=START + dt.timedelta(hours=hour), end=START + dt.timedelta(hours=hour + 1))
        if hour % 100 == 0:
            print(f"  busy: {hour + 1} runs ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    _model("wide", 100)
    _ingest("wide", "reference", _rows(2000, 100, START - dt.timedelta(days=10), dt.timedelta(days=1), 0, 9))
    _ingest("wide", "predictions", _rows(2000, 100, START, dt.timedelta(days=1), 0.2, 10))
    run_execute(model="wide", start=START, end=START + dt.timedelta(days=1))
    person_register(username="bench-engineer", full_name="Bench Engineer", password="bench-pass-phrase",
                    roles=["ml_engineer"], actor=Actor("user", "cli:bench", "bench"), reason="bench")  # fmt: skip
    print(f"  built in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _browser(urls: dict[str, str]) -> dict[str, float]:
    """Navigation to load event in Chromium, charts included, served by a threaded WSGI server."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from django.core.wsgi import get_wsgi_application
    from playwright.sync_api import sync_playwright

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    application = get_wsgi_application()

    def app(environ, start_response):
        try:
            return application(environ, start_response)
        finally:
            connections.close_all()

    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    figures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        page.goto(f"{base}/signin/")
        page.fill("#username", "bench-engineer")
        page.fill("#password", "bench-pass-phrase")
        page.click("button[type=submit]")
        for name, url in urls.items():
            page.goto(base + url)  # warm
            loads = []
            for _ in range(5):
                page.goto(base + url)
                loads.append(page.evaluate(LOAD_TIME) / 1000)
            figures[name] = statistics.median(loads)
        browser.close()
    server.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the database, and reuse it when it exists")
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    settings.ALLOWED_HOSTS = ["testserver", "127.0.0.1"]
    scratch = Path(settings.DATA_DIR) / "bench" / "ui-models"
    scratch.mkdir(parents=True, exist_ok=True)
    key = scratch / "signing-key.pem"
    if not (options.keep and key.exists()):
        SigningKey.generate().save(key)
    settings.AUDIT_SIGNING_KEY_FILE, settings.AUDIT_WITNESSES = key, []
    settings.MEDIA_ROOT = str(scratch / "media")
    keyring.current_signing_key(reload=True)
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = NAME
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=options.keep)
    try:
        if not RegisteredModel.objects.filter(name="wide").exists():
            print("Building 200 models, 1,600 runs through the product's paths...", file=sys.stderr)
            _build()
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        client = Client()
        assert (
            client.post("/signin/", {"username": "bench-engineer", "password": "bench-pass-phrase"}).status_code == 302
        )
        wide = Run.objects.get(model_name="wide").run_id
        urls = {
            "overview, 200 models": "/models/",
            "model with 1,000 runs": "/models/busy/",
            "run with 100 features": f"/runs/{wide}/",
        }
        server = {name: page_median(client, url, options.repeat) for name, url in urls.items()}
        runs = Run.objects.count()
        loads = _browser(urls)
    finally:
        connections.close_all()
        if not options.keep:
            connection.creation.destroy_test_db(NAME, verbosity=0)
    print(f"\nMonitoring pages ({runs:,} runs in all; server time in-process, median of {options.repeat};")
    print("Chromium: from navigation to the load event, charts included, median of 5):")
    print(f"{'page':<24}{'server ms':>10}{'target':>8}{'ratio':>7}{'browser ms':>12}{'target':>8}{'ratio':>7}")
    for name in urls:
        served = f"{server[name] * 1000:>10.1f}{TARGET * 1000:>8.0f}{server[name] / TARGET:>7.2f}"
        loaded = f"{loads[name] * 1000:>12.1f}{BROWSER_TARGET * 1000:>8.0f}{loads[name] / BROWSER_TARGET:>7.2f}"
        print(f"{name:<24}{served}{loaded}")


if __name__ == "__main__":
    main()
