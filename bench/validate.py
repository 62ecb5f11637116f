"""What validating one event costs the writer (audit.store._payload: dump the typed event, read
it back, compare, canonical JSON), on the benchmark's event: µs an event, best of five rounds.
Run it on two commits to compare them; it needs no database.

    python bench/validate.py [--events 5000]
"""

from __future__ import annotations

import argparse
import timeit

from _common import run_event

from audit.store import _payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    options = parser.parse_args()
    event = run_event(1, "validate").event
    rounds = timeit.repeat(lambda: _payload(0, event), number=options.events, repeat=5)
    print(f"validating an event: {min(rounds) / options.events * 1e6:.1f} µs (best of 5 rounds of {options.events:,})")


if __name__ == "__main__":
    main()
