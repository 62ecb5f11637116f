"""Canonical JSON (RFC 8785): ours vs the `rfc8785` package on a typical 1.5 KB envelope.

Target (issue 2): at least 5x faster, byte-identical.

    python bench/canonical.py
"""

from __future__ import annotations

import sys
import timeit
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rfc8785

from audit import canonical


def envelope() -> dict:
    checks = [
        {
            "check": "feature_drift",
            "feature": f"feature_{i}",
            "method": "ks",
            "statistic": 0.0123 + i / 97,
            "p_value": 0.5 + i / 101,
            "threshold": 0.05,
            "status": "ok",
        }
        for i in range(8)
    ]
    return {
        "log_id": str(uuid.uuid4()),
        "seq": 123456,
        "event_id": str(uuid.uuid4()),
        "stream": {"type": "run", "id": str(uuid.uuid4()), "version": 2},
        "type": "monitoring.RunCompleted",
        "schema": 1,
        "occurred_at": "2026-11-25T21:00:00.123456Z",
        "actor": {"kind": "service", "id": "monitoring-worker", "name": "Driftledger monitoring worker"},
        "reason": None,
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "payload": {"run_id": str(uuid.uuid4()), "model": "credit-default", "status": "completed", "checks": checks},
        "prev_hash": "ab" * 32,
        "key_id": "0123456789abcdef",
    }


def best_microseconds(function, number: int) -> float:
    return min(timeit.repeat(function, number=number, repeat=5)) / number * 1e6


def main() -> None:
    value = envelope()
    ours_bytes = canonical.canonicalize(value)
    assert ours_bytes == rfc8785.dumps(value), "not byte-identical"
    reference = best_microseconds(lambda: rfc8785.dumps(value), 300)
    ours = best_microseconds(lambda: canonical.canonicalize(value), 3000)
    original = canonical._fast_encode
    canonical._fast_encode = canonical._stdlib_encode
    try:
        stdlib = best_microseconds(lambda: canonical.canonicalize(value), 3000)
    finally:
        canonical._fast_encode = original
    print(f"envelope of {len(ours_bytes)} bytes, byte-identical to rfc8785")
    print(f"{'encoder':40} {'µs/envelope':>12} {'speed-up':>9}")
    print(f"{'rfc8785 package (reference)':40} {reference:12.1f} {1:9.1f}x")
    print(
        f"{'audit.canonical (orjson fast path)':40} {ours:12.1f} {reference / ours:9.1f}x  target >= 5x "
        f"{'ok' if reference / ours >= 5 else 'BELOW'}"
    )
    print(f"{'audit.canonical (stdlib, offline verifier)':40} {stdlib:12.1f} {reference / stdlib:9.1f}x")


if __name__ == "__main__":
    main()
