"""Checkpoints and proofs on a 1M-event log, from stored leaf hashes and Merkle nodes.

Targets (issue 3): checkpoint of a 1M-event log < 2 s; an inclusion or consistency proof < 50 ms.
The rows are synthetic (bulk-loaded small bodies chained by prev_hash, not signed envelopes): a
checkpoint reads the bytes of the events it adds, to check their hashes and links; proofs read
only leaf hashes and the node table.

    python bench/checkpoint.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
import uuid

from _common import scratch_database, timed
from django.conf import settings
from django.db import connection

from audit import checkpoints, merkle
from audit.envelope import GENESIS_PREV_HASH
from audit.models import LogInfo


def bulk_load(first: int, count: int, previous: str) -> str:
    """Events `first`..`first + count - 1`, each chaining to the one before (the checkpointer
    checks the links of what it adds); returns the last one's hash."""
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY audit_event (seq, event_id, stream_type, stream_id, stream_version, event_type, schema,"
            " occurred_at, actor_kind, actor_id, payload, canonical, hash, leaf_hash, signature, key_id)"
            " FROM STDIN"
        ) as copy:
            for seq in range(first, first + count):
                body = b'{"prev_hash":"%s","seq":%d}' % (previous.encode(), seq)
                digest, leaf = hashlib.sha256(body).digest(), merkle.leaf_hash(body)
                copy.write_row(
                    (
                        seq,
                        uuid.UUID(int=seq),
                        "bench",
                        "s",
                        seq,
                        "bench.Synthetic",
                        1,
                        "2026-11-25T00:00:00Z",
                        "system",
                        "bench",
                        "{}",
                        body,
                        digest,
                        leaf,
                        b"\0" * 64,
                        "0" * 16,
                    )
                )
                previous = digest.hex()
    return previous


def _leaf(seq: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT leaf_hash FROM audit_event WHERE seq = %s", [seq])
        return bytes(cursor.fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    options = parser.parse_args()
    n = options.events
    with scratch_database("driftledger_bench_checkpoint"):
        LogInfo.objects.create(log_id=uuid.uuid4(), created_at="2026-11-25T00:00:00Z")
        with connection.cursor() as cursor:  # the partitions an append would have made
            cursor.execute("SELECT audit_partition_room(%s, %s)", [n, settings.AUDIT_PARTITION_EVENTS])
        started = time.perf_counter()
        head = bulk_load(1, n - 1000, GENESIS_PREV_HASH)
        loaded = time.perf_counter() - started
        cold, first = timed(lambda: checkpoints.checkpoint_create(publish=False))
        bulk_load(n - 999, 1000, head)  # 1,000 more events arrive
        warm, second = timed(lambda: checkpoints.checkpoint_create(publish=False))
        rng = random.Random(7)
        inclusion = [timed(checkpoints.inclusion_proof, rng.randrange(1, n + 1), n)[0] for _ in range(200)]
        consistency = [timed(checkpoints.consistency_proof, rng.randrange(1, n), n)[0] for _ in range(200)]
        ok = merkle.verify_inclusion(
            41, n, _leaf(42), checkpoints.inclusion_proof(42, n), bytes.fromhex(second.root_hash)
        )
    print(f"loaded {n - 1000:,} synthetic leaves in {loaded:.1f} s (set-up, not measured)")
    print(f"{'operation':52} {'time':>10} {'target':>10}")
    print(f"{'first checkpoint, all ' + format(first.tree_size, ',') + ' leaves (cold)':52} {cold:9.2f}s {'-':>10}")
    print(
        f"{'checkpoint of the ' + format(n, ',') + '-event log (+1,000 since last)':52} {warm:9.3f}s "
        f"{'< 2 s':>10} {'ok' if warm < 2 else 'BELOW'}"
    )
    for label, samples in (("inclusion proof", inclusion), ("consistency proof", consistency)):
        p50, p99 = statistics.median(samples) * 1000, sorted(samples)[int(len(samples) * 0.99) - 1] * 1000
        print(
            f"{label + ' at ' + format(n, ',') + ' (p50 / p99 of 200)':52} {p50:5.1f}/{p99:4.1f}ms {'< 50 ms':>10} "
            f"{'ok' if p99 < 50 else 'BELOW'}"
        )
    print(f"a proof checked against the signed root: {'verifies' if ok else 'FAILS'}")


if __name__ == "__main__":
    main()
