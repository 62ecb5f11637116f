"""Check the database log against checkpoints: its own stored ones, and the copies that witnesses
hold outside it.

Each checkpoint must be signed by a key of the log and carry the root of the log's first
`tree_size` leaves. The leaf hashes (already checked against the canonical bytes by verify_log)
are read once, in seq order, and folded into a compact range; at each checkpoint's size its root
is compared. Constant memory, one pass, whatever the number of checkpoints. This catches what the
chain cannot: a truncated tail, a restore of an older backup, and a rewrite re-signed by someone
who holds the key.
"""

from __future__ import annotations

import base64
from collections import defaultdict

import psycopg

from audit import merkle
from audit.checkpoints import checkpoint_body
from audit.keys import public_key_from_raw, signature_valid
from audit.store import single_row
from audit.verification import Failure, KeyRange

_BATCH = 20_000


def witness_failures(conninfo: str, keys: list[KeyRange], log_id: str, witnessed: list[dict]) -> list[Failure]:
    public = {key.key_id: public_key_from_raw(key.public_raw) for key in keys}
    with psycopg.connect(conninfo) as db:
        (size,) = single_row(db.execute("SELECT coalesce(max(seq), 0) FROM audit_event").fetchone())
    failures, at_size = [], defaultdict(list)
    for checkpoint in witnessed:
        problem = _signature_problem(checkpoint, public, log_id, size)
        if problem:
            failures.append(Failure(_seq_of(checkpoint, size), problem))
        else:
            at_size[checkpoint["tree_size"]].append(checkpoint)
    roots = _roots_at(conninfo, sorted(at_size))
    for tree_size, held in at_size.items():
        for checkpoint in held:
            root = roots.get(tree_size)
            if root is None or checkpoint["root_hash"] != root.hex():
                failures.append(
                    Failure(
                        _seq_of(checkpoint, size),
                        f"{_label(checkpoint)} is not a prefix of the log: events up to seq {tree_size} were "
                        "rewritten (or the log was restored and grew another history)",
                    )
                )
    return failures


def _roots_at(conninfo: str, sizes: list[int]) -> dict[int, bytes]:
    """The tree root at each size (ascending), from one ordered pass over the leaf hashes."""
    roots: dict[int, bytes] = {}
    if not sizes:
        return roots
    frontier: list[tuple[int, int, bytes]] = []
    done, pending = 0, list(sizes)
    with psycopg.connect(conninfo) as db, db.cursor(name="checkpoint_leaves") as cursor:
        cursor.itersize = _BATCH
        cursor.execute("SELECT leaf_hash FROM audit_event WHERE seq <= %s ORDER BY seq", (sizes[-1],), binary=True)
        while pending:
            rows = cursor.fetchmany(_BATCH)
            if not rows:
                break
            leaves = [bytes(row[0]) for row in rows]
            start = 0
            while pending and pending[0] <= done + len(leaves):
                cut = pending[0] - done
                frontier, _ = merkle.extend_frontier(frontier, done + start, leaves[start:cut])
                start = cut
                roots[pending.pop(0)] = merkle.frontier_root(frontier)
            frontier, _ = merkle.extend_frontier(frontier, done + start, leaves[start:])
            done += len(leaves)
    return roots


def _label(checkpoint: dict) -> str:
    source = checkpoint.get("_source", "witnessed checkpoint")  # where it was found: the table, a witness
    return f"{source} of size {checkpoint.get('tree_size')} ({checkpoint.get('timestamp')})"


def _seq_of(checkpoint: dict, size: int) -> int:
    """The first seq the checkpoint's failure concerns: its last event, or the first missing one."""
    tree_size = checkpoint.get("tree_size")
    if not isinstance(tree_size, int) or tree_size < 1:
        return 1
    return min(tree_size, size + 1)


def _signature_problem(checkpoint: dict, public: dict, log_id: str, size: int) -> str | None:
    label = _label(checkpoint)
    tree_size = checkpoint.get("tree_size")
    if checkpoint.get("log_id") != log_id:
        return f"{label} belongs to log {checkpoint.get('log_id')}, not {log_id}"
    if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 1:
        return f"{label} has no valid tree size"
    key = public.get(checkpoint.get("key_id"))
    if key is None:
        return f"{label} is signed by key {checkpoint.get('key_id')}, unknown to this log"
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
    except (KeyError, ValueError):
        return f"{label} has no valid base64 signature"
    if not signature_valid(key, signature, checkpoint_body(checkpoint)):
        return f"{label} has a signature that does not verify"
    if tree_size > size:
        return (
            f"{label} covers {tree_size} events but the log holds {size}: "
            "the tail was truncated or an older backup was restored"
        )
    return None
