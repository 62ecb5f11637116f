"""Check the database log against checkpoints that witnesses hold outside it.

The log's leaf hashes (already checked against the canonical bytes by verify_log) rebuild the
tree; each witnessed checkpoint must be signed by a key of the log and be consistent with it by
an RFC 9162 consistency proof. This catches what the chain cannot: a truncated tail, a restore of
an older backup, and a rewrite re-signed by someone who holds the key.
"""

from __future__ import annotations

import base64

import psycopg

from audit import merkle
from audit.checkpoints import checkpoint_body
from audit.keys import public_key_from_raw, signature_valid
from audit.verification import Failure, KeyRange


def witness_failures(conninfo: str, keys: list[KeyRange], log_id: str, witnessed: list[dict]) -> list[Failure]:
    with psycopg.connect(conninfo) as db:
        leaves = [bytes(row[0]) for row in db.execute("SELECT leaf_hash FROM audit_event ORDER BY seq", binary=True)]
    size = len(leaves)
    nodes = merkle.LeafNodes(leaves)
    current_root = merkle.tree_hash(leaves)
    public = {key.key_id: public_key_from_raw(key.public_raw) for key in keys}
    failures = []
    for checkpoint in witnessed:
        problem = _checkpoint_problem(checkpoint, public, log_id, size, nodes, current_root)
        if problem:
            failures.append(Failure(min(checkpoint.get("tree_size", 1), size + 1) or 1, problem))
    return failures


def _checkpoint_problem(checkpoint, public, log_id, size, nodes, current_root) -> str | None:
    tree_size = checkpoint.get("tree_size")
    label = f"witnessed checkpoint of size {tree_size} ({checkpoint.get('timestamp')})"
    if checkpoint.get("log_id") != log_id:
        return f"{label} belongs to log {checkpoint.get('log_id')}, not {log_id}"
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
    proof = merkle.consistency_proof(tree_size, size, nodes)
    if not merkle.verify_consistency(tree_size, size, bytes.fromhex(checkpoint["root_hash"]), current_root, proof):
        return (
            f"{label} is not a prefix of the log: events up to seq {tree_size} were rewritten "
            "(or the log was restored and grew another history)"
        )
    return None
