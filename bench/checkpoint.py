"""Checkpoints and proofs on a 1M-event log, from stored leaf hashes and Merkle nodes.

Targets (issue 3): checkpoint of a 1M-event log < 2 s; an inclusion or consistency proof < 50 ms.
The rows are synthetic (bulk-loaded leaf hashes, not signed envelopes): checkpoints and proofs
read only `leaf_hash` and the node table, never the envelopes.

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
from audit.models import LogInfo


def bulk_load(count: int) -> None:
    LogInfo.objects.create(log_id=uuid.uuid4(), created_at="2026-11-25T00:00:00Z")
    with connection.cursor() as cursor:
        # The partitions an append would have made; 1,000 more events come after the load.
        cursor.execute("SELECT audit_partition_room(%s, %s)", [count + 1000, settings.AUDIT_PARTITION_EVENTS])
        raw = cursor.connection
        with raw.cursor().copy(
            "COPY audit_event (seq, event_id, stream_type, stream_id, stream_version, event_type, schema,"
            " occurred_at, actor_kind, actor_id, payload, canonical, hash, leaf_hash, signature, key_id)"
            " FROM STDIN"
        ) as copy:
            for seq in range(1, count + 1):
                body = b'{"seq":%d}' % seq
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    options = parser.parse_args()
    n = options.events
    with scratch_database("driftledger_bench_checkpoint"):
        started = time.perf_counter()
        bulk_load(n - 1000)
        loaded = time.perf_counter() - started
        cold, first = timed(lambda: checkpoints.checkpoint_create(publish=False))
        with connection.cursor() as cursor:  # 1,000 more events arrive
            cursor.execute(
                "INSERT INTO audit_event SELECT seq + 1000, gen_random_uuid(), stream_type, stream_id,"
                " stream_version + 1000, event_type, schema, occurred_at, actor_kind, actor_id, correlation_id,"
                " causation_id, payload, canonical, hash, leaf_hash, signature, key_id FROM audit_event"
                " WHERE seq > %s",
                [n - 2000],
            )
        warm, second = timed(lambda: checkpoints.checkpoint_create(publish=False))
        rng = random.Random(7)
        inclusion = [timed(checkpoints.inclusion_proof, rng.randrange(1, n + 1), n)[0] for _ in range(200)]
        consistency = [timed(checkpoints.consistency_proof, rng.randrange(1, n), n)[0] for _ in range(200)]
        ok = merkle.verify_inclusion(
            41, n, merkle.leaf_hash(b'{"seq":42}'), checkpoints.inclusion_proof(42, n), bytes.fromhex(second.root_hash)
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
