"""Where the sequencer's time goes while it drains a backlog: CPU per event of its process and of
its server backend (from /proc: the server must run on this machine), then, with --profile, the
functions that take it under cProfile (which slows the run by about a half).

    python bench/sequencer_profile.py [--events 16000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from _common import cpu_seconds, scratch_database
from sequencer import built, submitter

from audit.sequencer import Sequencer
from audit.store import raw_connection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=16000)
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()
    with scratch_database("driftledger_bench_sequencer_profile"):
        submitter(built(0, options.events, "backlog"), 1)
        sequencer = Sequencer("profiled")
        assert sequencer.acquire()
        backend = raw_connection().info.backend_pid
        profile = cProfile.Profile()
        server, mine, started = cpu_seconds(backend), time.process_time(), time.perf_counter()
        if options.profile:
            profile.enable()
        sealed = 0
        while sealed < options.events:
            sealed += sequencer.seal_once()
        profile.disable()
        seconds = time.perf_counter() - started
        mine, server = time.process_time() - mine, cpu_seconds(backend) - server
    print(
        f"{sealed:,} events sealed in {seconds:.2f} s ({sealed / seconds:,.0f}/s): the sequencer's CPU "
        f"{mine / sealed * 1e6:.0f} µs an event ({mine / seconds:.0%} of a core), its server backend's "
        f"{server / sealed * 1e6:.0f} µs ({server / seconds:.0%} of a core)"
    )
    if options.profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
