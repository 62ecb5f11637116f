"""Evidence export as the selection grows: memory that does not grow with the events exported.

N signed events (default 300,000: run outcomes of about 1.5 KB, routine as a run's outcome is,
so a large report counts them rather than lists them) from 10 streams, in interleaved batches
of 100. Exports of 1, 5 and 10 of the streams select a tenth, half and all of the log. Each is
made twice: timed, then with tracemalloc for the peak of Python memory while it is written.

The baseline (issue 18: exports stream with constant memory) is the smallest export, in the
same run: the ratio of each export's peak to its peak. With --decisions the events are of a
type that is not routine, which a report lists (as an alert or an approval): an export of one
stream then already holds more than the report lists (report.LIST_LIMIT).

    python bench/export_memory.py [--events 300000] [--decisions]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from typing import ClassVar

from _common import ACTOR, run_payload, scratch_database, timed

from audit import checkpoints, events
from audit.evidence import EvidenceQuery, evidence_export
from audit.store import NewEvent, append
from monitoring.runs.domain import Check

STREAMS = 10
BATCH = 100


@events.event_type("bench.RoutineMeasured")
class RoutineMeasured(events.Event):
    routine: ClassVar[bool] = True  # as monitoring.RunCompleted

    run_id: str
    model: str
    status: str
    checks: list[Check]


@events.event_type("bench.DecisionMeasured")
class DecisionMeasured(RoutineMeasured):
    routine: ClassVar[bool] = False  # listed by a report, as an alert or an approval is


def fill(count: int, measured: type[events.Event]) -> None:
    versions = dict.fromkeys(range(STREAMS), 0)
    for start in range(0, count, BATCH):
        stream = (start // BATCH) % STREAMS
        size = min(BATCH, count - start)
        batch = [
            NewEvent("bench", f"s{stream}", measured.from_payload(run_payload(start + i)), ACTOR) for i in range(size)
        ]
        append(batch, expected={("bench", f"s{stream}"): versions[stream]})
        versions[stream] += size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--decisions", action="store_true", help="events a report lists, not routine ones")
    options = parser.parse_args()
    measured = DecisionMeasured if options.decisions else RoutineMeasured
    with scratch_database("driftledger_bench_export_memory") as scratch:
        started = time.perf_counter()
        fill(options.events, measured)
        seconds = time.perf_counter() - started
        print(f"appended {options.events:,} signed {measured.type_name} events in {seconds:.0f} s (set-up)")
        checkpoints.checkpoint_create(publish=False)  # beat's job as the log grows
        smallest = None
        for streams in (1, 5, STREAMS):
            query = EvidenceQuery(streams=tuple(("bench", f"s{i}") for i in range(streams)))
            seconds, summary = timed(
                lambda query=query: evidence_export(query=query, out=scratch / "bundle.zip", created_by=ACTOR)
            )
            tracemalloc.start()
            evidence_export(query=query, out=scratch / "bundle.zip", created_by=ACTOR)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            smallest = smallest or peak
            print(
                f"export of {streams:2} stream(s), {summary.events:,} of {summary.tree_size:,} events:"
                f" {seconds:.1f} s, {summary.events / seconds:,.0f} events/s;"
                f" Python memory peak {peak / 2**20:.1f} MB, {peak / smallest:.2f}x the smallest export's"
            )


if __name__ == "__main__":
    main()
