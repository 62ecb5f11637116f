"""Signed checkpoints (tree heads) over the log, kept incrementally, and proofs from stored nodes.

Each checkpoint extends the previous one's compact range with the leaf hashes appended since,
stores the perfect subtrees completed on the way (audit_merkle_node), and signs
{log_id, tree_size, root_hash, timestamp, key_id} with the log's current key. Proofs for any
size up to the latest checkpoint then need O(log n) stored hashes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator

import orjson
import psycopg
from django.db import connection, transaction

from audit import keyring, merkle
from audit.envelope import GENESIS_PREV_HASH, checkpoint_body, format_time
from audit.keys import SigningKey
from audit.models import Checkpoint
from audit.store import single_row

logger = logging.getLogger(__name__)

CHECKPOINT_LOCK_KEY = 0x636B7074  # "ckpt"
_SCAN_THRESHOLD = 20_000


class CheckpointError(RuntimeError):
    pass


LEAVES_AT_ONCE = 20_000  # events read, hashed and their completed nodes stored at a time


def checkpoint_create(*, publish: bool = True) -> Checkpoint | None:
    """Checkpoint the log as committed now; return the latest checkpoint (None for an empty log).

    A log that has not grown since its latest checkpoint gets no new one.
    """
    with transaction.atomic():
        raw = _raw()
        with psycopg.Cursor(raw) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (CHECKPOINT_LOCK_KEY,))
            latest = Checkpoint.objects.order_by("-tree_size").first()
            signed = latest.tree_size if latest else 0
            # Only the events since the last checkpoint are counted: the rest was counted then.
            cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_event")
            (size,) = single_row(cursor.fetchone())
            cursor.execute("SELECT count(*) FROM audit_event WHERE seq > %s", (signed,))
            (count,) = single_row(cursor.fetchone())
        if size >= signed and count != size - signed:
            raise CheckpointError(f"the log has gaps: {count} events from seq {signed + 1} to {size}; run audit_verify")
        if latest is not None and size < latest.tree_size:
            raise CheckpointError(
                f"the log shrank: it holds {size} events, and a checkpoint of {latest.tree_size} was signed;"
                " nothing is signed over it"
            )
        if size == 0 or (latest is not None and latest.tree_size == size):
            return latest
        old_size = latest.tree_size if latest else 0
        frontier = _frontier(old_size)
        if latest is not None and (
            merkle.frontier_root(frontier).hex() != latest.root_hash or not _last_leaf_tied(old_size, frontier)
        ):
            raise CheckpointError(
                f"the stored tree no longer gives the signed root of the checkpoint of {old_size} events:"
                " its nodes or its last events changed; nothing is signed over it"
            )
        # Streamed, a slice of leaves at a time: the events since the last checkpoint may be
        # millions (a first checkpoint of a large log, beat stopped for a day), and their signed
        # bytes read at once held some 2.4 KB an event (a 10M-event backlog did not fit in 24 GB).
        with psycopg.ServerCursor(raw, "checkpoint_leaves") as rows, psycopg.Cursor(raw) as nodes:
            rows.itersize = LEAVES_AT_ONCE
            rows.execute(
                "SELECT seq, leaf_hash, hash, canonical FROM audit_event WHERE seq >= %s AND seq <= %s ORDER BY seq",
                (max(old_size, 1), size),
            )
            leaves = _checked_leaves(rows, old_size)
            index = old_size
            while chunk := list(itertools.islice(leaves, LEAVES_AT_ONCE)):
                frontier, completed = merkle.extend_frontier(frontier, index, chunk)
                index += len(chunk)
                with nodes.copy("COPY audit_merkle_node (level, index, hash) FROM STDIN") as copy:
                    for row in completed:
                        copy.write_row(row)
        checkpoint = _signed_checkpoint(size, merkle.frontier_root(frontier))
    if publish:
        transaction.on_commit(lambda: _publish(checkpoint), robust=True)  # republished by beat
    return checkpoint


def _last_leaf_tied(size: int, frontier: list[tuple[int, int, bytes]]) -> bool:
    """Whether the table's event `size` is still the last leaf of the tree of `size` leaves: its
    leaf hash, folded with the stored siblings up its perfect subtree, gives that subtree's
    stored hash. O(log n) reads; a subtree of one leaf was read from the event itself."""
    level, _, subtree = frontier[-1]
    last = size - 1
    siblings = stored_nodes({(j, (last >> j) ^ 1) for j in range(level)})
    (leaf,) = stored_nodes({(0, last)}).values()
    digest = leaf
    for j in range(level):  # the rightmost leaf: every sibling is on the left
        digest = merkle.node_hash(siblings[(j, (last >> j) ^ 1)], digest)
    return digest == subtree


def _checked_leaves(rows: Iterable[tuple], old_size: int) -> Iterator[bytes]:
    """The leaf hashes of the events after `old_size` (rows from seq `old_size` on), each checked
    against its signed bytes and chained to the one before: the checkpointer signs only a tree
    of the envelopes the table holds, continuing the last checkpoint's last event."""
    previous = GENESIS_PREV_HASH
    for seq, leaf, digest, canonical in rows:
        body = bytes(canonical)
        if hashlib.sha256(body).digest() != bytes(digest) or merkle.leaf_hash(body) != bytes(leaf):
            raise CheckpointError(f"event {seq}: its hashes are not those of its signed bytes; nothing is signed")
        if seq > old_size:
            if orjson.loads(body).get("prev_hash") != previous:
                raise CheckpointError(f"event {seq}: it does not chain to event {seq - 1}; nothing is signed")
            yield bytes(leaf)
        previous = bytes(digest).hex()


def _signed_checkpoint(size: int, root: bytes) -> Checkpoint:
    from audit.models import LogInfo

    key: SigningKey = keyring.current_signing_key()
    with psycopg.Cursor(_raw()) as cursor:  # the log's current key: a process may hold a rotated-out one
        cursor.execute("SELECT key_id FROM audit_signing_key ORDER BY valid_from_seq DESC LIMIT 1")
        (current,) = single_row(cursor.fetchone())
    if key.key_id != current:
        key = keyring.current_signing_key(reload=True)
    if key.key_id != current:
        raise CheckpointError(
            f"the configured signing key {key.key_id} is not the log's current key {current}; nothing is signed"
        )
    body = {
        "log_id": str(LogInfo.objects.get().log_id),
        "tree_size": size,
        "root_hash": root.hex(),
        "timestamp": format_time(dt.datetime.now(dt.UTC)),
        "key_id": key.key_id,
    }
    signature = base64.b64encode(key.sign(checkpoint_body(body))).decode("ascii")
    return Checkpoint.objects.create(**body, signature=signature)


def _publish(checkpoint: Checkpoint) -> None:
    from audit.cosigning import cosign
    from audit.witnesses import publish_checkpoint

    publish_checkpoint(checkpoint.as_dict())
    cosign(checkpoint)


def _raw() -> psycopg.Connection:
    connection.ensure_connection()
    return connection.connection


def _frontier(size: int) -> list[tuple[int, int, bytes]]:
    """The compact range of [0, size): its perfect subtrees, largest first, with their hashes."""
    parts = merkle.perfect_subtrees(0, size)
    hashes = stored_nodes(set(parts))
    return [(level, index, hashes[(level, index)]) for level, index in parts]


def stored_nodes(wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Perfect-subtree hashes by (level, index): level 0 from the events, the rest from nodes."""
    leaves = [index for level, index in wanted if level == 0]
    inner = [(level, index) for level, index in wanted if level > 0]
    found: dict[tuple[int, int], bytes] = {}
    with psycopg.Cursor(_raw()) as cursor:
        if leaves:
            cursor.execute("SELECT seq - 1, leaf_hash FROM audit_event WHERE seq = ANY(%s)", ([i + 1 for i in leaves],))
            found.update({(0, index): bytes(digest) for index, digest in cursor})
        if len(inner) > _SCAN_THRESHOLD:  # many nodes (a large export): range scans per level beat lookups
            wanted_inner = set(inner)
            for level in sorted({level for level, _ in inner}):
                indexes = [index for lv, index in inner if lv == level]
                cursor.execute(
                    "SELECT level, index, hash FROM audit_merkle_node WHERE level = %s AND index BETWEEN %s AND %s",
                    (level, min(indexes), max(indexes)),
                    binary=True,
                )
                found.update({(lv, index): digest for lv, index, digest in cursor if (lv, index) in wanted_inner})
        elif inner:
            cursor.execute(
                "SELECT n.level, n.index, n.hash FROM audit_merkle_node n"
                " JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, index)"
                " ON n.level = w.level AND n.index = w.index",
                ([level for level, _ in inner], [index for _, index in inner]),
                binary=True,
            )
            found.update({(level, index): bytes(digest) for level, index, digest in cursor})
    missing = wanted - found.keys()
    if missing:
        raise CheckpointError(f"{len(missing)} Merkle node(s) are missing, e.g. {sorted(missing)[0]}")
    return found


def _proof(ranges: list[tuple[int, int]]) -> list[bytes]:
    hashes = stored_nodes(merkle.nodes_needed(ranges))
    return [merkle.range_hash(a, b, lambda level, index: hashes[(level, index)]) for a, b in ranges]


def _covered(size: int) -> None:
    latest = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first() or 0
    if size > latest:
        raise CheckpointError(f"tree size {size} is beyond the latest checkpoint ({latest})")


def inclusion_proof(seq: int, tree_size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of event `seq` (leaf seq−1) in the tree of `tree_size` events."""
    _covered(tree_size)
    if not 1 <= seq <= tree_size:
        raise CheckpointError(f"seq {seq} is not in a tree of size {tree_size}")
    return _proof(merkle.inclusion_ranges(seq - 1, tree_size))


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 consistency proof that the tree of `old_size` is a prefix of `new_size`'s."""
    _covered(new_size)
    if not 1 <= old_size <= new_size:
        raise CheckpointError(f"no consistency proof from size {old_size} to {new_size}")
    return _proof(merkle.consistency_ranges(old_size, new_size))


def subtree_path(level: int, position: int, tree_size: int) -> list[bytes]:
    """The path from the perfect subtree (level, position) to the root of the tree of `tree_size`
    events (merkle.verify_subtree_inclusion checks it)."""
    _covered(tree_size)
    return _proof(merkle.subtree_inclusion_ranges(level, position, tree_size))


def root_at(tree_size: int) -> bytes:
    _covered(tree_size)
    hashes = stored_nodes(set(merkle.perfect_subtrees(0, tree_size)))
    return merkle.range_hash(0, tree_size, lambda level, index: hashes[(level, index)])
