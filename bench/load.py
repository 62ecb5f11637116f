"""Load on the served product: model services reporting predictions and people browsing, driven
from this process over loopback against the production topology of deploy/topology.py
(gunicorn, 2 Celery workers and beat on Redis, PostgreSQL through PgBouncer, the S3 server).

    .venv/bin/python bench/load.py [--seconds 120] [--services 50] [--people 20] [--every 10]

Each of --services models has its own reporting key and sends a batch of 1,000 predictions every
--every seconds on a fixed schedule (open loop: a batch's latency counts from the time it was due,
so a slow server cannot hide behind late sends). Each of --people signs in once and opens a page
every 2 s (home, models, a model's page, alerts, the audit log, integrity, remediations). Beat
runs its schedule meanwhile, as in production.

Prints throughput, p50 and p99 latency and errors per kind. Target (issue 17): no error, and the
p99 of ingestion under 1 s on a 2-core machine. Baseline in the same run: one service alone,
20 batches one after another before the load; the ratio is what the load costs. After the load,
every batch sent must be stored once and `audit_verify` must pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))

from topology import DATABASE, PASSWORD, SCHEMA, Failed, Person, Topology, psql  # noqa: E402

PAGES = ("/", "/models/", "/models/{model}/", "/alerts/", "/log/", "/integrity/", "/remediations/")


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def batch(model: int, number: int, rows: int, rng: np.random.Generator) -> bytes:
    now = dt.datetime.now(dt.UTC)
    income = rng.lognormal(10.6, 0.35, rows)
    scores = rng.beta(2, 12, rows)
    return orjson.dumps(
        [
            {
                "application_id": f"m{model}-b{number}-{i}",
                "scored_at": (now - dt.timedelta(seconds=rows - i)).isoformat(),
                "income": round(float(income[i]), 2),
                "debt_ratio": 0.3,
                "age": 40,
                "region": ("north", "south", "east", "west")[i % 4],
                "default_score": round(float(scores[i]), 4),
            }
            for i in range(rows)
        ]
    )


def report(
    web: str, model: int, key: str, *, rows: int, every: float, start: float, stop: float, samples: Samples, sent: list
) -> None:
    """One model service: a batch every `every` seconds from `start` (its phase) until `stop`."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Api-Key {key}", "Content-Type": "application/json"})
    rng = np.random.default_rng(model)
    number, due = 0, start
    while due < stop:
        time.sleep(max(0.0, due - time.monotonic()))
        body = batch(model, number, rows, rng)
        try:
            answer = session.post(f"{web}/api/v1/models/load-{model}/predictions/", data=body, timeout=30)
            error = None if answer.status_code == 201 else f"{answer.status_code} {answer.text[:120]}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        samples.add(time.monotonic() - due, error)
        if error is None:
            sent.append(rows)
        number, due = number + 1, due + every


def browse(web: str, username: str, models: int, *, stop: float, samples: Samples) -> None:
    """One person: signs in, then opens a page every 2 s until `stop`."""
    session = requests.Session()
    signin = session.get(f"{web}/signin/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', signin.text)
    _insecure_cookies(session)
    answer = session.post(
        f"{web}/signin/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1) if token else ""},
        timeout=30,
    )
    _insecure_cookies(session)
    if answer.status_code != 200 or "sessionid" not in session.cookies:
        samples.add(0.0, f"sign-in of {username}: {answer.status_code}")
        return
    rng = random.Random(username)
    while time.monotonic() < stop:
        page = rng.choice(PAGES).format(model=f"load-{rng.randrange(models)}")
        began = time.monotonic()
        try:
            answer = session.get(f"{web}{page}", timeout=30)
            error = None if answer.status_code == 200 else f"{page}: {answer.status_code}"
        except requests.RequestException as exc:
            error = f"{page}: {type(exc).__name__}"
        samples.add(time.monotonic() - began, error)
        time.sleep(max(0.0, 2.0 - (time.monotonic() - began)))


def _insecure_cookies(session: requests.Session) -> None:
    """The served product marks its cookies Secure (production mode, behind TLS); this client
    talks plain HTTP on loopback, where a TLS proxy would stand, so it sends them anyway."""
    for cookie in session.cookies:
        cookie.secure = False


def setup(topology: Topology, services: int, people: int) -> list[str]:
    """The administrator, an ML engineer who registers the models and issues their keys, and
    the people who browse (compliance officers). Returns the reporting keys."""
    topology.first_administrator()
    dana = Person(topology, "dana").use_token()
    dana.post(
        "/users/",
        {
            "username": "alice",
            "full_name": "Alice Martin",
            "password": PASSWORD,
            "roles": ["ml_engineer"],
            "reason": "load",
        },
    )
    for n in range(people):
        dana.post(
            "/users/",
            {
                "username": f"viewer{n}",
                "full_name": f"Viewer {n}",
                "password": PASSWORD,
                "roles": ["compliance_officer"],
                "reason": "load",
            },
        )
    alice = Person(topology, "alice").use_token()
    keys = []
    for n in range(services):
        alice.post("/models/", {"name": f"load-{n}", "task": "binary_classification", "data_schema": SCHEMA})
        keys.append(alice.post(f"/models/load-{n}/keys/", {"label": "scoring service"})["key"])
    return keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--every", type=float, default=10, help="seconds between one service's batches")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument(
        "--sequencer", action="store_true", help="AUDIT_SEQUENCER=true with two run_sequencer processes"
    )
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="driftledger-load-"))
    os.chmod(workdir, 0o755)  # pgbouncer runs as postgres and writes its log here
    topology = Topology(workdir, cuttable=False, sequencer=arguments.sequencer)
    try:
        topology.start()
        keys = setup(topology, arguments.services, arguments.people)
        web = topology.web

        baseline, sent_alone = Samples(), []
        for number in range(20):
            began = time.monotonic()
            body = batch(0, 10_000 + number, arguments.rows, np.random.default_rng(number))
            answer = requests.post(
                f"{web}/api/v1/models/load-0/predictions/",
                data=body,
                timeout=30,
                headers={"Authorization": f"Api-Key {keys[0]}", "Content-Type": "application/json"},
            )
            baseline.add(time.monotonic() - began, None if answer.status_code == 201 else str(answer.status_code))
            sent_alone.append(arguments.rows)

        ingestion, browsing, sent = Samples(), Samples(), []
        start = time.monotonic() + 1
        stop = start + arguments.seconds
        threads = [
            threading.Thread(
                target=report,
                args=(web, n, key),
                kwargs={
                    "rows": arguments.rows,
                    "every": arguments.every,
                    "samples": ingestion,
                    "sent": sent,
                    "start": start + arguments.every * n / arguments.services,
                    "stop": stop,
                },
            )
            for n, key in enumerate(keys)
        ]
        threads += [
            threading.Thread(
                target=browse, args=(web, f"viewer{n}", arguments.services), kwargs={"stop": stop, "samples": browsing}
            )
            for n in range(arguments.people)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=arguments.seconds + 120)
        elapsed = time.monotonic() - start

        stored = int(psql("SELECT coalesce(sum(rows), 0) FROM monitoring_batch WHERE kind = 'predictions'", DATABASE))
        runs = psql("SELECT count(*) FROM audit_event WHERE event_type = 'monitoring.RunCompleted'", DATABASE)
        verified = topology.manage("audit_verify")
    except Failed as exc:
        print(f"FAILED: {exc}\n\n{topology.processes.tails()}", file=sys.stderr)
        return 1
    finally:
        topology.stop()

    target = 1.0
    p99 = ingestion.quantile(0.99)
    print(
        f"bench/load.py on {os.cpu_count()} cores, {dt.date.today()}: {arguments.services} services x "
        f"{arguments.rows:,}-row batches every {arguments.every:g} s, {arguments.people} people browsing, "
        f"{arguments.seconds:g} s"
    )
    print(
        f"  baseline, one service alone: {len(baseline.latencies)} batches, p50 {baseline.quantile(0.5) * 1000:.0f} ms"
    )
    print(
        f"  ingestion: {len(ingestion.latencies)} batches, {sum(sent) / elapsed:,.0f} predictions/s, "
        f"p50 {ingestion.quantile(0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, errors {len(ingestion.errors)}"
    )
    print(
        f"  browsing: {len(browsing.latencies)} pages, {len(browsing.latencies) / elapsed:.1f} pages/s, "
        f"p50 {browsing.quantile(0.5) * 1000:.0f} ms, p99 {browsing.quantile(0.99) * 1000:.0f} ms, "
        f"errors {len(browsing.errors)}"
    )
    print(f"  under load / alone (p50 of ingestion): {ingestion.quantile(0.5) / baseline.quantile(0.5):.2f}x")
    print(f"  p99 of ingestion / target {target:g} s: {p99 / target:.2f} ({'met' if p99 < target else 'MISSED'})")
    print(
        f"  stored {stored:,} prediction rows of {sum(sent) + sum(sent_alone):,} sent; {runs} runs completed "
        f"meanwhile; {verified}"
    )
    for error in sorted(set(ingestion.errors + browsing.errors + baseline.errors))[:10]:
        print(f"  error: {error}")
    complete = stored == sum(sent) + sum(sent_alone)
    clean = not (ingestion.errors or browsing.errors or baseline.errors)
    return 0 if complete and clean and verified.startswith("OK") else 1


if __name__ == "__main__":
    sys.exit(main())
