"""Incremental verification against the full pass, on the same log in the same run.

    python bench/verify_incremental.py [--events 200000] [--new 2000]

A log of --events signed events is verified in full and recorded; --new more are appended (a
day's worth, say) and verified incrementally (chained to the recorded head). Prints both times,
their ratio, and the events/s of each. The incremental pass reads only the new rows and the
stream versions they continue, so its time follows the new events, not the log's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from _common import fill, scratch_database, timed

from audit.selfcheck import log_verify_recorded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--new", type=int, default=2_000)
    options = parser.parse_args()
    with scratch_database("driftledger_bench_verify_incremental"):
        fill(options.events, stream="history", batch=500)
        full_seconds, full = timed(lambda: log_verify_recorded())
        fill(options.new, stream="today", batch=500)
        new_seconds, new = timed(lambda: log_verify_recorded(incremental=True))
    assert full.ok, full.problem
    assert new.ok, new.problem
    checked = new.events_checked - new.first_seq + 1
    print(f"bench/verify_incremental.py, {dt.date.today()}, {os.cpu_count()} cores")
    print(
        f"  full pass:   {full.events_checked:,} events in {full_seconds:.2f} s "
        f"({full.events_checked / full_seconds:,.0f} events/s)"
    )
    print(
        f"  incremental: {checked:,} new events (seq {new.first_seq:,}..{new.events_checked:,}) in "
        f"{new_seconds:.3f} s ({checked / new_seconds:,.0f} events/s)"
    )
    print(
        f"  incremental / full: {new_seconds / full_seconds:.3f} of the time "
        f"(the new events are {checked / new.events_checked:.1%} of the log)"
    )


if __name__ == "__main__":
    main()
