"""RFC 9162 §2.1 Merkle tree: tree hash, inclusion and consistency proofs, their verification.

Pure (hashlib only). Leaves are addressed by index 0…n−1. Proof generation works on any source
of perfect-subtree hashes (`NodeSource`): an in-memory list of leaf hashes in tests, stored nodes
in the database for a real log, so a 1M-leaf proof costs O(log n) lookups, not O(n) hashing.
The verifier functions follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()

# hash of the perfect subtree at (level, index): leaves index·2^level … (index+1)·2^level − 1
NodeSource = Callable[[int, int], bytes]


class ProofError(ValueError):
    pass


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


# ---- ranges and perfect subtrees -------------------------------------------------------------


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Decompose [start, end) into perfect subtrees (level, index), left to right, as RFC 9162's
    recursive split does; `start` must be a multiple of the largest power of two below end−start."""
    parts = []
    while start < end:
        size = end - start
        level = size.bit_length() - 1
        while start & ((1 << level) - 1):  # align to the subtree grid
            level -= 1
        parts.append((level, start >> level))
        start += 1 << level
    return parts


def range_hash(start: int, end: int, nodes: NodeSource) -> bytes:
    """MTH(D[start:end]) from perfect-subtree hashes."""
    if start == end:
        return EMPTY_ROOT
    parts = [nodes(level, index) for level, index in perfect_subtrees(start, end)]
    digest = parts[-1]
    for part in reversed(parts[:-1]):
        digest = node_hash(part, digest)
    return digest


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose tree hashes form PATH(index, D[0:size]), in proof order."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return list(reversed(ranges))


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The ranges whose tree hashes form PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1)."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            complete = False
    if not complete:
        ranges.append((start, end))
    return list(reversed(ranges))


def inclusion_path_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """PATH(index, D[0:size]) as subtrees (level, position), bottom-up, without recursion.

    Below level `inner` (where index and size−1 first differ) each step is the sibling subtree;
    only the one at level inner−1 may reach past size−1, and then stands for the range from its
    start to size (its hash: range_hash). Above, each left sibling on the border is a step; a
    missing right sibling is skipped (RFC 9162's unbalanced right edge)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    path = [(level, (index >> level) ^ 1) for level in range(inner)]
    level, rest = inner, index >> inner
    while rest:
        if rest & 1:
            path.append((level, rest ^ 1))
        rest >>= 1
        level += 1
    return path


def path_node_range(level: int, position: int, size: int) -> tuple[int, int]:
    """The leaves a path step covers: a perfect subtree, or its part below `size`."""
    start = position << level
    return start, min(start + (1 << level), size)


def subtree_inclusion_ranges(level: int, position: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose tree hashes lead from the perfect subtree (level, position) to the root of
    D[0:size]: a complete, aligned subtree is a node of RFC 9162's tree, so this is the path of its
    first leaf above the subtree's own `level` steps."""
    if level < 0 or position < 0 or (position + 1) << level > size:
        raise ProofError(f"the subtree ({level}, {position}) is not complete in a tree of size {size}")
    return inclusion_ranges(position << level, size)[level:]


def inclusion_proof(index: int, size: int, nodes: NodeSource) -> list[bytes]:
    return [range_hash(a, b, nodes) for a, b in inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, nodes: NodeSource) -> list[bytes]:
    return [range_hash(a, b, nodes) for a, b in consistency_ranges(old_size, new_size)]


def nodes_needed(ranges: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Every perfect subtree a set of ranges needs: what to fetch from storage in one query."""
    return {part for a, b in ranges for part in perfect_subtrees(a, b)}


# ---- in-memory trees (reference, tests, small logs) ------------------------------------------


class LeafNodes:
    """A NodeSource over a list of leaf hashes, computing perfect subtrees on demand (cached)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = leaf_hashes
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        if level == 0:
            return self.leaves[index]
        key = (level, index)
        found = self._cache.get(key)
        if found is None:
            found = node_hash(self(level - 1, 2 * index), self(level - 1, 2 * index + 1))
            self._cache[key] = found
        return found


def tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    return range_hash(0, len(leaf_hashes), LeafNodes(leaf_hashes))


# ---- compact range: the right edge of a growing tree -----------------------------------------


def extend_frontier(
    frontier: list[tuple[int, int, bytes]], first_index: int, leaf_hashes: Iterable[bytes]
) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, int, bytes]]]:
    """Append leaves to a compact range. `frontier` holds the perfect subtrees (level, index, hash)
    of [0, first_index), largest first. Returns the new frontier and every perfect subtree of level
    >= 1 completed on the way (what to store)."""
    stack = list(frontier)
    completed: list[tuple[int, int, bytes]] = []
    index = first_index
    for digest in leaf_hashes:
        level, position = 0, index
        while stack and stack[-1][0] == level:
            _, left_position, left = stack.pop()
            digest = node_hash(left, digest)
            level, position = level + 1, left_position >> 1
            completed.append((level, position, digest))
        stack.append((level, position, digest))
        index += 1
    return stack, completed


def frontier_root(frontier: Sequence[tuple[int, int, bytes]]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    digest = frontier[-1][2]
    for _, _, left in reversed(frontier[:-1]):
        digest = node_hash(left, digest)
    return digest


# ---- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


def _fold_path(fn: int, sn: int, digest: bytes, steps: Sequence[bytes]) -> tuple[int, int, bytes] | None:
    """Steps 4a–4c of RFC 9162 §2.1.3.2 over `steps`; None where the path is too long."""
    sha256 = hashlib.sha256  # the offline verifier's hot loop: one call per level
    for sibling in steps:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            digest = sha256(b"\x01" + sibling + digest).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            digest = sha256(b"\x01" + digest + sibling).digest()
        fn >>= 1
        sn >>= 1
    return fn, sn, digest


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True iff `proof` shows the leaf hash `leaf` at `index` in the tree of `size` with `root`."""
    if not 0 <= index < size or any(len(p) != 32 for p in proof):
        return False
    folded = _fold_path(index, size - 1, leaf, proof)
    return folded is not None and folded[1] == 0 and folded[2] == root


def verify_subtree_inclusion(
    level: int, position: int, size: int, node: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff `proof` shows the perfect subtree (level, position) with hash `node` in the tree of
    `size` with `root` (the leaf algorithm of RFC 9162 §2.1.3.2, started `level` steps up)."""
    if level < 0 or position < 0 or (position + 1) << level > size or any(len(p) != 32 for p in proof):
        return False
    folded = _fold_path(position, (size - 1) >> level, node, proof)
    return folded is not None and folded[1] == 0 and folded[2] == root


class SubtreeHasher:
    """The perfect-subtree hashes of the leaf range [start, end) (its `perfect_subtrees`), from its
    leaves fed in order, holding O(log n) hashes: how a segment of the log is tied to the tree."""

    def __init__(self, start: int, end: int) -> None:
        self._parts = perfect_subtrees(start, end)
        self._stack: list[tuple[int, bytes]] = []
        self.done: list[tuple[int, int, bytes]] = []  # (level, position, hash), left to right

    def add(self, leaf: bytes) -> None:
        if len(self.done) == len(self._parts):
            raise ProofError("more leaves than the range holds")
        level, digest = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            digest = node_hash(self._stack.pop()[1], digest)
            level += 1
        self._stack.append((level, digest))
        want_level, position = self._parts[len(self.done)]
        if level == want_level:
            self._stack.pop()
            self.done.append((want_level, position, digest))

    def finish(self) -> list[tuple[int, int, bytes]]:
        if len(self.done) != len(self._parts):
            raise ProofError("fewer leaves than the range holds")
        return self.done


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True iff `proof` shows the tree of `old_size` with `old_root` is a prefix of `new_root`'s."""
    if any(len(p) != 32 for p in proof) or not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for component in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(component, fr)
            sr = node_hash(component, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, component)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class BatchInclusionVerifier:
    """verify_inclusion for many proofs against one root, sharing work: neighbouring leaves' paths
    meet after a few levels, so once a (state, node hash, rest of path) has led to the root, the
    same triple from another proof is known to lead there too. Answers equal verify_inclusion's."""

    MEET_AT = 4  # leaves of one 16-leaf subtree share everything above level 4

    def __init__(self, size: int, root: bytes) -> None:
        self.size, self.root = size, root
        self._known: set[tuple[int, int, bytes, bytes]] = set()

    def verify(self, index: int, leaf: bytes, proof: Sequence[bytes]) -> bool:
        if not 0 <= index < self.size or any(len(p) != 32 for p in proof):
            return False
        folded = _fold_path(index, self.size - 1, leaf, proof[: self.MEET_AT])
        if folded is None:
            return False
        fn, sn, digest = folded
        key = (fn, sn, digest, b"".join(proof[self.MEET_AT :]))
        if key in self._known:
            return True
        folded = _fold_path(fn, sn, digest, proof[self.MEET_AT :])
        valid = folded is not None and folded[1] == 0 and folded[2] == self.root
        if valid:
            self._known.add(key)
        return valid
