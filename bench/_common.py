"""Shared set-up of the benchmarks: Django on the configured server, a scratch database, a key."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402

from audit import keyring  # noqa: E402
from audit.keys import SigningKey  # noqa: E402
from audit.store import Actor, NewEvent  # noqa: E402

ACTOR = Actor("service", "bench", "Benchmark writer")


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[Path]:
    """Create, migrate and finally drop database `name` on the configured server; sign with a
    fresh key and publish witnesses under a scratch directory. Yields that directory."""
    scratch = Path(settings.DATA_DIR) / "bench" / name
    shutil.rmtree(scratch, ignore_errors=True)  # a new log: its witness must not hold an old one's checkpoints
    scratch.mkdir(parents=True)
    key_file = scratch / "signing-key.pem"
    SigningKey.generate().save(key_file)
    settings.AUDIT_SIGNING_KEY_FILE = key_file
    settings.AUDIT_TRUST_ANCHOR = scratch / "trust-anchor.pem"  # the scratch log's, not the demo's
    settings.AUDIT_WITNESSES = [{"class": "audit.witnesses.DirectoryWitness", "options": {"path": str(scratch / "w")}}]
    keyring.current_signing_key(reload=True)
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = name
    creation = connection.creation
    original = creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield scratch
    finally:
        connections.close_all()
        creation.destroy_test_db(original, verbosity=0)


@contextlib.contextmanager
def resumed_database(name: str) -> Iterator[Path]:
    """A scratch database `name` left by an earlier run of a bench that stopped after filling it
    (killed), with that run's key and witnesses; dropped when done, as scratch_database does."""
    scratch = Path(settings.DATA_DIR) / "bench" / name
    if not (scratch / "signing-key.pem").exists():
        raise SystemExit(f"no earlier run's key at {scratch}: nothing to resume")
    settings.AUDIT_SIGNING_KEY_FILE = scratch / "signing-key.pem"
    settings.AUDIT_TRUST_ANCHOR = scratch / "trust-anchor.pem"
    settings.AUDIT_WITNESSES = [{"class": "audit.witnesses.DirectoryWitness", "options": {"path": str(scratch / "w")}}]
    keyring.current_signing_key(reload=True)
    original = settings.DATABASES["default"]["NAME"]
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = name
    try:
        yield scratch
    finally:
        connections.close_all()
        settings.DATABASES["default"]["NAME"] = connection.settings_dict["NAME"] = original
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connections.close_all()


def cpu_seconds(pid: int) -> float:
    """User and system CPU of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(seconds of CPU every process on this machine has used, its cores' seconds so far), from
    /proc/stat: callers, server and sequencer share the cores, so what an append costs is the sum."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4] - ticks[7]  # less idle, iowait and steal (another VM's)
    return busy / os.sysconf("SC_CLK_TCK"), sum(ticks) / os.sysconf("SC_CLK_TCK")


def timed(function, *args) -> tuple[float, object]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def run_payload(index: int) -> dict:
    """About 1.1 KB of run results: a typical RunCompleted envelope is then about 1.5 KB."""
    return {
        "run_id": str(uuid.UUID(int=index)),
        "model": "bench-model",
        "status": "completed",
        "checks": [
            {
                "check": "feature_drift",
                "feature": f"feature_{i}",
                "metric": "normed_wasserstein",
                "test": "ks",
                "value": 0.0123 + i / 97,
                "p_value": 0.5 + i / 101,
                "threshold": 0.05,
                "status": "ok",
            }
            for i in range(8)
        ],
    }


def _measured_type():
    """A run's outcome as an event type of the benchmark's own: the store is measured without
    any projection (a RunCompleted would also update the runs read model)."""
    from audit import events
    from monitoring.runs.domain import Check

    try:
        return events.lookup(MEASURED)
    except events.UnknownEventType:

        @events.event_type(MEASURED)
        class Measured(events.Event):
            run_id: str
            model: str
            status: str
            checks: list[Check]

        return Measured


MEASURED = "bench.Measured"


def run_event(index: int, stream: str) -> NewEvent:
    return NewEvent("bench", stream, _measured_type().from_payload(run_payload(index)), ACTOR)


def built(first_index: int, count: int, stream: str) -> list[NewEvent]:
    """The events a writer appends, built before the clock starts, as the raw baseline's rows
    are: building a typed event is its caller's work (some 80 µs here), not the log's."""
    return [run_event(first_index + i, stream) for i in range(count)]


def fill(count: int, stream: str = "fill", batch: int = 100) -> None:
    """Append `count` signed events in transactions of `batch`."""
    from audit.store import append

    version = 0
    for start in range(0, count, batch):
        size = min(batch, count - start)
        append([run_event(start + i, stream) for i in range(size)], expected={("bench", stream): version})
        version += size


def page_median(client, url: str, repeat: int) -> float:
    """Median seconds of `repeat` GETs of `url` through the whole Django stack (after one warm-up)."""
    import statistics

    client.get(url)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, (url, answer.status_code)
    return statistics.median(times)


def process_status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")
