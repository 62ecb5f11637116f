"""16 writers with their own connections append at once: one gapless, unforked chain."""

from __future__ import annotations

import random
import threading
from collections import Counter

from django.db import connection

from audit.models import Event
from audit.selectors import stream_version
from audit.store import ConcurrencyConflict, append
from audit.verify import verify_log
from tests.audit.factories import policy_event

WRITERS = 16
EVENTS_EACH = 500
SHARED_STREAMS = ["shared-a", "shared-b"]


def _writer(number: int, outcomes: Counter, errors: list, lock: threading.Lock, events_each: int = EVENTS_EACH) -> None:
    """Appends `events_each` events, half of them to streams shared with the other writers, each
    at the version it just read: conflicts are expected, and retried."""
    rng = random.Random(number)
    written = conflicts = 0
    try:
        while written < events_each:
            model = rng.choice(SHARED_STREAMS) if rng.random() < 0.5 else f"own-{number}"
            version = stream_version("policy", model)
            try:
                (recorded,) = append([policy_event(model)], expected={("policy", model): version})
            except ConcurrencyConflict as conflict:
                assert conflict.expected == version and conflict.actual > version
                conflicts += 1
                continue
            assert recorded.stream == {"type": "policy", "id": model, "version": version + 1}
            written += 1
    except Exception as exc:  # noqa: BLE001 - any other error fails the test below
        errors.append(repr(exc))
    finally:
        connection.close()
        with lock:
            outcomes["written"] += written
            outcomes["conflicts"] += conflicts


def race(writers: int, events_each: int) -> None:
    """`writers` threads, each with its own connection, append at once; then the chain is checked:
    gapless seqs, gapless versions per stream, and it verifies."""
    outcomes: Counter = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_writer, args=(n, outcomes, errors, lock, events_each)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = writers * events_each
    assert outcomes["written"] == total
    assert outcomes["conflicts"] > 0, "writers on shared streams should have raced"
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    per_stream = Counter(Event.objects.values_list("stream_id", flat=True))
    for stream, count in per_stream.items():
        versions = sorted(Event.objects.filter(stream_id=stream).values_list("stream_version", flat=True))
        assert versions == list(range(1, count + 1))
    report = verify_log(workers=2)
    assert report.ok, report.failure
    assert report.events == total


def test_sixteen_concurrent_writers_build_one_gapless_chain(committed_log):
    race(WRITERS, EVENTS_EACH)
