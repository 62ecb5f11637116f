"""Verify the log in the database, in parallel over seq ranges (one process per core): the whole
of it, or (incremental) the events after a head an earlier verification found good."""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass

import orjson
import psycopg
from django.db import connection

from audit.anchor import anchor_key, anchor_path
from audit.envelope import GENESIS_PREV_HASH, KEY_ROTATED, key_id_of
from audit.store import single_row
from audit.verification import Failure, KeyRange, KeySchedule, key_chain_failures, verify_rows

ROW_SQL = """
SELECT seq, canonical, hash, leaf_hash, signature, key_id,
       event_id::text, stream_type, stream_id, stream_version, event_type, schema,
       to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       actor_kind, actor_id, correlation_id::text, causation_id::text, payload::text
  FROM audit_event WHERE seq BETWEEN %s AND %s ORDER BY seq
"""

# Each stream's versions must run 1, 2, 3, ... in seq order.
STREAM_VERSION_SQL = """
SELECT seq, stream_type, stream_id, stream_version, expected FROM (
    SELECT seq, stream_type, stream_id, stream_version,
           row_number() OVER (PARTITION BY stream_type, stream_id ORDER BY seq) AS expected
      FROM audit_event) numbered
 WHERE stream_version <> expected ORDER BY seq LIMIT 1
"""


# The same, for the events after seq %(after)s only: each one's version must follow, in seq order,
# its stream's last version at or before that seq (verified before). That version is looked up once
# per stream, walking the stream's index down past its new events only.
NEW_STREAM_VERSION_SQL = """
WITH new AS (
    SELECT seq, stream_type, stream_id, stream_version FROM audit_event WHERE seq > %(after)s
), prior AS MATERIALIZED (  -- once per stream, not once per new event
    SELECT s.stream_type, s.stream_id,
           coalesce((SELECT e.stream_version FROM audit_event e
                      WHERE e.stream_type = s.stream_type AND e.stream_id = s.stream_id AND e.seq <= %(after)s
                      ORDER BY e.stream_version DESC LIMIT 1), 0) AS version
      FROM (SELECT DISTINCT stream_type, stream_id FROM new) s
)
SELECT seq, stream_type, stream_id, stream_version, expected FROM (
    SELECT n.seq, n.stream_type, n.stream_id, n.stream_version,
           p.version + row_number() OVER (PARTITION BY n.stream_type, n.stream_id ORDER BY n.seq) AS expected
      FROM new n JOIN prior p USING (stream_type, stream_id)) numbered
 WHERE stream_version <> expected ORDER BY seq LIMIT 1
"""


@dataclass(frozen=True)
class Verified:
    """How far an earlier verification found the log good: its size and the hash of its last event."""

    seq: int
    head_hash: str


@dataclass(frozen=True)
class VerifyReport:
    events: int  # the log's size: the last seq checked
    keys: int
    head_hash: str
    seconds: float
    failure: Failure | None
    first_seq: int = 1  # the first seq checked: after the earlier verified head, when incremental
    anchored: bool = False  # the first key was checked against the trust anchor pinned outside the database

    @property
    def ok(self) -> bool:
        return self.failure is None


def verify_log(
    *,
    workers: int | None = None,
    chunk_size: int = 4000,
    witnessed: list[dict] | None = None,
    after: Verified | None = None,
) -> VerifyReport:
    """Recompute every hash, the chain, every signature under the key valid at its seq,
    gaplessness, stream versions and column/bytes agreement, and (given `witnessed` checkpoints)
    consistency with what the witnesses hold. Reports the first bad seq.

    Incremental (`after`): the same checks on the events after `after.seq` only, chained to the
    head an earlier verification found good, which must still be there with the same hash. A
    change to an event before it is left to the next full verification (the witnesses' check
    still reads every leaf)."""
    started = time.perf_counter()
    conninfo = _conninfo()
    with psycopg.connect(conninfo) as db:
        log_rows = db.execute("SELECT log_id::text FROM audit_log").fetchall()
        (last_seq,) = single_row(db.execute("SELECT coalesce(max(seq), 0) FROM audit_event").fetchone())
        keys = _key_ranges(db)

    first = after.seq + 1 if after else 1
    anchor = anchor_key()

    def report(failure: Failure | None, head_hash: str = GENESIS_PREV_HASH) -> VerifyReport:
        if failure is None and anchor is None and last_seq > 0:
            failure = Failure(1, unanchored())
        if failure is None and anchor is not None and keys and keys[0].public_raw != anchor:
            failure = Failure(1, not_the_anchor(keys[0].key_id, anchor))  # also when nothing new is verified
        elapsed = time.perf_counter() - started
        return VerifyReport(last_seq, len(keys), head_hash, elapsed, failure, first, anchor is not None)

    if last_seq == 0 and not witnessed:
        return report(None)
    if len(log_rows) != 1:
        return report(Failure(1, f"audit_log holds {len(log_rows)} log ids, expected exactly one"))
    if last_seq == 0:
        return report(Failure(1, "the log is empty but witnesses hold checkpoints of it"))
    log_id = log_rows[0][0]
    if after is not None:
        problem = _verified_head_problem(conninfo, after, last_seq)
        if problem is not None:
            return report(problem)
        if last_seq == after.seq:
            return report(None, after.head_hash)
    ranges = [(lo, min(lo + chunk_size - 1, last_seq)) for lo in range(first, last_seq + 1, chunk_size)]
    jobs = [(conninfo, log_id, keys, lo, hi) for lo, hi in ranges]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        failures = _log_wide_failures(conninfo, keys, log_id, after, anchor) + _first_failure(map(_verify_range, jobs))
    else:
        # forkserver, not fork: forking a process whose other threads (pyarrow's pool, a web
        # server's workers) hold locks can leave the children waiting on them forever.
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            results = pool.imap(_verify_range, jobs)  # starts now; the log-wide checks overlap it
            failures = _log_wide_failures(conninfo, keys, log_id, after, anchor) + _first_failure(results)
    if witnessed and not failures:
        from audit.witness_check import witness_failures

        failures = witness_failures(conninfo, keys, log_id, witnessed)
    with psycopg.connect(conninfo) as db:
        head = single_row(db.execute("SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone())
    return report(min(failures) if failures else None, bytes(head[0]).hex())


NO_ANCHOR = "no trust anchor is pinned at"


def unanchored() -> str:
    return (
        f"{NO_ANCHOR} {anchor_path()} (AUDIT_TRUST_ANCHOR): nothing outside the database shows "
        "that these are the log's own keys; pin the log's first public key there, read-only (docs/evidence.md)"
    )


def not_the_anchor(first_key_id: str, anchor: bytes) -> str:
    return (
        f"the log's first key {first_key_id} is not the trust anchor {key_id_of(anchor)} pinned outside the "
        "database: the log's keys and history were replaced"
    )


def _verified_head_problem(conninfo: str, after: Verified, last_seq: int) -> Failure | None:
    """The head an incremental verification starts from must be the one verified before."""
    if last_seq < after.seq:
        return Failure(
            last_seq + 1,
            f"the log holds {last_seq} events but {after.seq} were verified before: "
            "the tail was truncated or an older backup was restored",
        )
    with psycopg.connect(conninfo) as db:
        row = db.execute("SELECT hash FROM audit_event WHERE seq = %s", (after.seq,)).fetchone()
    if row is None or bytes(row[0]).hex() != after.head_hash:
        return Failure(
            after.seq,
            f"event {after.seq} is not the one verified before (its hash changed): "
            "the log was rewritten up to there; run a full verification",
        )
    return None


def _log_wide_failures(
    conninfo: str, keys: list[KeyRange], log_id: str, after: Verified | None, anchor: bytes | None
) -> list[Failure]:
    """The key chain (from the canonical bytes, the source of truth: rotations are few, so always
    all of them) from the trust anchor, and every stream's versions (of the new events only, when
    incremental)."""
    with psycopg.connect(conninfo) as db:
        rotations = [
            (seq, orjson.loads(bytes(canonical))["payload"])
            for seq, canonical in db.execute(
                "SELECT seq, canonical FROM audit_event WHERE event_type = %s ORDER BY seq", (KEY_ROTATED,)
            )
        ]
        if after is None:
            version_row = db.execute(STREAM_VERSION_SQL).fetchone()
        else:
            version_row = db.execute(NEW_STREAM_VERSION_SQL, {"after": after.seq}).fetchone()
    failures = key_chain_failures(keys, rotations, log_id)
    if anchor is not None and keys and keys[0].public_raw != anchor:
        failures.append(Failure(1, not_the_anchor(keys[0].key_id, anchor)))
    if version_row is not None:
        seq, kind, ident, version, expected = version_row
        failures.append(Failure(seq, f"stream {kind}:{ident} has version {version} where {expected} was due"))
    return failures


def _first_failure(results) -> list[Failure]:
    """Results arrive in seq order, so the first failing range holds the first bad seq."""
    for failure in results:
        if failure is not None:
            return [failure]
    return []


def _verify_range(job) -> Failure | None:
    conninfo, log_id, keys, lo, hi = job
    with psycopg.connect(conninfo) as db:
        previous = db.execute("SELECT hash FROM audit_event WHERE seq = %s", (lo - 1,)).fetchone()
        prev_hash = bytes(previous[0]).hex() if previous else GENESIS_PREV_HASH
        with db.cursor(name=f"verify_{lo}") as cursor:
            cursor.itersize = 2000
            cursor.execute(ROW_SQL, (lo, hi), binary=True)
            _, failure = verify_rows(
                cursor,
                first_seq=lo,
                last_seq=hi,
                prev_hash=prev_hash,
                log_id=log_id,
                keys=KeySchedule(keys),
            )
    return failure


def _key_ranges(db: psycopg.Connection) -> list[KeyRange]:
    rows = db.execute(
        "SELECT key_id, public_key, valid_from_seq FROM audit_signing_key ORDER BY valid_from_seq"
    ).fetchall()
    ranges = []
    for index, (key_id, public_key, valid_from) in enumerate(rows):
        valid_to = rows[index + 1][2] - 1 if index + 1 < len(rows) else None
        ranges.append(KeyRange(key_id, bytes(public_key), valid_from, valid_to))
    return ranges


def _conninfo() -> str:
    params = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=params["NAME"],
        user=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        host=params.get("HOST") or None,
        port=str(params["PORT"]) if params.get("PORT") else None,
    )
