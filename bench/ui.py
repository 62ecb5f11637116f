"""Server time of the audit-log pages with 1,000,000 events in the log.

Builds (once; `--keep` reuses it) a database `driftledger_bench_ui` on the configured server
holding N signed events of 200 models, appended through the store like any other, and a
checkpoint over them. Then times, in-process through the whole Django stack (middleware,
session, permission, query, template), as a signed-in compliance officer:

- the first page of /log/ (target < 200 ms),
- /log/ filtered to one model and one week (target < 200 ms),
- an event's page /log/<seq>/ with its thread and inclusion proof (target < 100 ms),
- and, for the record, text searches over the whole log (no target).

    python bench/ui.py [--events 1000000] [--keep] [--repeat 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from pathlib import Path

from _common import page_median
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from audit import events, keyring
from audit.checkpoints import checkpoint_create
from audit.keys import SigningKey
from audit.models import Checkpoint, Event
from audit.store import Actor, NewEvent, append

NAME = "driftledger_bench_ui"
MODELS = 200
PER_TRANSACTION = 1000
KIND = "bench.PageEvent"
TARGETS = {"first page": 0.200, "one model, one week": 0.200, "event with proof": 0.100}


def _kind():
    try:
        return events.lookup(KIND)
    except events.UnknownEventType:

        @events.event_type(KIND)
        class PageEvent(events.Event):
            model: str
            run_id: str
            value: float

            def describe(self, about: events.Context) -> str:
                return f"{about.who} measured {self.value:.3f} on {self.model}{about.because}"

        return PageEvent


def _database(keep: bool) -> Path:
    scratch = Path(settings.DATA_DIR) / "bench" / "ui"
    scratch.mkdir(parents=True, exist_ok=True)
    key_file = scratch / "signing-key.pem"
    if not (keep and key_file.exists()):
        SigningKey.generate().save(key_file)
    settings.AUDIT_SIGNING_KEY_FILE = key_file
    settings.AUDIT_WITNESSES = []
    keyring.current_signing_key(reload=True)
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = NAME
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keep)
    return scratch


def _seed(count: int) -> None:
    """Two events per run stream (started, completed), runs spread over the models; one reason in
    five hundred mentions a rollback (what the text search looks for)."""
    kind, actor = _kind(), Actor("service", "scheduler", "Run scheduler")
    runs_per_transaction = PER_TRANSACTION // 2
    started = time.perf_counter()
    for first in range(Event.objects.count() // 2, count // 2, runs_per_transaction):
        batch, expected = [], {}
        for run in range(first, min(first + runs_per_transaction, count // 2)):
            run_id, model = str(uuid.UUID(int=run + 1)), f"model-{run % MODELS:03d}"
            reason = "rollback requested after drift in income" if run % 500 == 0 else f"scheduled run {run}"
            for step in range(2):
                payload = {"model": model, "run_id": run_id, "value": (run % 97) / 97 + step}
                batch.append(NewEvent("run", run_id, kind.from_payload(payload), actor, reason=reason))
            expected[("run", run_id)] = 0
        append(batch, expected=expected)
        if first % (50 * runs_per_transaction) == 0:
            print(f"  {2 * first + len(batch):,} events ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    checkpoint_create(publish=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database, and reuse it when it exists")
    parser.add_argument("--repeat", type=int, default=15)
    options = parser.parse_args()
    settings.ALLOWED_HOSTS = ["testserver"]
    _database(options.keep)
    try:
        _kind()
        if Event.objects.count() < options.events:
            print(f"Appending {options.events - Event.objects.count():,} signed events...", file=sys.stderr)
            _seed(options.events)
        elif not Checkpoint.objects.filter(tree_size=Event.objects.count()).exists():
            checkpoint_create(publish=False)
        with connection.cursor() as cursor:  # what autovacuum does after a bulk load: planner statistics
            cursor.execute("ANALYZE audit_event")
        _measure(options)
    finally:
        connections.close_all()
        if not options.keep:
            connection.creation.destroy_test_db(NAME, verbosity=0)


def _officer() -> Client:
    from django.contrib.auth.models import User

    from monitoring.access.services import person_register

    if not User.objects.filter(username="bench-officer").exists():
        person_register(
            username="bench-officer",
            full_name="Bench Officer",
            password="bench-pass-phrase",
            roles=["compliance_officer"],
            actor=Actor("user", "cli:bench", "bench"),
            reason="bench",
        )
    client = Client()
    assert client.post("/signin/", {"username": "bench-officer", "password": "bench-pass-phrase"}).status_code == 302
    return client


def _measure(options) -> None:
    client = _officer()
    size = Event.objects.count()
    now = dt.datetime.now(dt.UTC)
    week = f"since={(now - dt.timedelta(days=7)):%Y-%m-%dT%H:%M:%S}&until={now:%Y-%m-%dT%H:%M:%S}"
    middle = size // 2 - (size // 2) % 2 + 1
    figures = {
        "first page": page_median(client, "/log/", options.repeat),
        "one model, one week": page_median(client, f"/log/?model=model-017&{week}", options.repeat),
        "event with proof": page_median(client, f"/log/{middle}/", options.repeat),
        "text search, frequent word": page_median(client, "/log/?q=rollback", max(3, options.repeat // 5)),
        "text search, absent word": page_median(client, "/log/?q=unheard-of", 3),
    }
    print(f"\nAudit-log pages, {size:,} events in the log (median of {options.repeat}, server time in-process):")
    print(f"{'page':<26}{'ms':>9}{'target ms':>11}{'ratio':>8}")
    for name, seconds in figures.items():
        target = TARGETS.get(name)
        ratio = f"{seconds / target:.2f}" if target else "-"
        print(f"{name:<26}{seconds * 1000:>9.1f}{(f'{target * 1000:.0f}' if target else '-'):>11}{ratio:>8}")


if __name__ == "__main__":
    main()
