"""RFC 9162 Merkle proofs: published test vectors, then properties over random trees."""

import base64
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc6962_vectors.json").read_text())
LEAVES = [merkle.leaf_hash(bytes.fromhex(h)) for h in VECTORS["leaves_hex"]]


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def test_empty_tree_root_is_the_hash_of_nothing():
    assert merkle.tree_hash([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_published_vectors(size):
    assert merkle.tree_hash(LEAVES[:size]).hex() == VECTORS["roots_hex"][str(size)]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['leafIdx']}@{c['treeSize']}")
def test_inclusion_proofs_match_the_published_vectors(case):
    index, size = case["leafIdx"], case["treeSize"]
    proof = merkle.inclusion_proof(index, size, merkle.LeafNodes(LEAVES[:size]))
    assert proof == [b64(p) for p in case["proof"]]
    assert merkle.verify_inclusion(index, size, b64(case["leafHash"]), proof, b64(case["root"]))
    assert not merkle.verify_inclusion(index, size, b"WrongLeaf".ljust(32, b"\0"), proof, b64(case["root"]))


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: f"{c['size1']}->{c['size2']}")
def test_consistency_proofs_match_the_published_vectors(case):
    old, new = case["size1"], case["size2"]
    proof = merkle.consistency_proof(old, new, merkle.LeafNodes(LEAVES[:new]))
    assert proof == [b64(p) for p in case["proof"]]
    assert merkle.verify_consistency(old, new, b64(case["root1"]), b64(case["root2"]), proof)
    assert not merkle.verify_consistency(old, new, b64(case["root2"]), b64(case["root1"]), proof)


def _random_leaves(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [merkle.leaf_hash(rng.randbytes(rng.randrange(0, 40))) for _ in range(count)]


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


sizes = st.integers(min_value=1, max_value=3000)


@settings(max_examples=60, deadline=None)
@given(size=sizes, data=st.data())
def test_every_inclusion_proof_verifies_and_any_mutation_is_rejected(size, data):
    everything = _random_leaves(size * 2 + 1, size)
    leaves = everything[:size]
    nodes = merkle.LeafNodes(leaves)
    root = merkle.tree_hash(leaves)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, nodes)
    assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
    if proof:
        step = data.draw(st.integers(0, len(proof) - 1))
        byte = data.draw(st.integers(0, 31))
        mutated = [*proof[:step], _flip(proof[step], byte), *proof[step + 1 :]]
        assert not merkle.verify_inclusion(index, size, leaves[index], mutated, root)
        assert not merkle.verify_inclusion(index, size, leaves[index], proof[:-1], root)
        assert not merkle.verify_inclusion(index, size, leaves[index], [*proof, proof[0]], root)
    byte = data.draw(st.integers(0, 31))
    assert not merkle.verify_inclusion(index, size, _flip(leaves[index], byte), proof, root)
    assert not merkle.verify_inclusion(index, size, leaves[index], proof, _flip(root, byte))
    # A size is only ever checked together with the root of that size (both in a checkpoint).
    for wrong_size in {size + 1, size - 1, size * 2, size ^ 1} - {size}:
        if wrong_size > index:
            wrong_root = merkle.tree_hash(everything[:wrong_size])
            assert not merkle.verify_inclusion(index, wrong_size, leaves[index], proof, wrong_root)
    other = data.draw(st.integers(0, size - 1))
    if other != index and leaves[other] != leaves[index]:
        assert not merkle.verify_inclusion(other, size, leaves[index], proof, root)


@settings(max_examples=60, deadline=None)
@given(new_size=sizes, data=st.data())
def test_every_consistency_proof_verifies_and_any_mutation_is_rejected(new_size, data):
    everything = _random_leaves(new_size + 1, new_size + 7)
    leaves = everything[:new_size]
    nodes = merkle.LeafNodes(leaves)
    old_size = data.draw(st.integers(1, new_size))
    old_root, new_root = merkle.tree_hash(leaves[:old_size]), merkle.tree_hash(leaves)
    proof = merkle.consistency_proof(old_size, new_size, nodes)
    assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
    byte = data.draw(st.integers(0, 31))
    assert not merkle.verify_consistency(old_size, new_size, _flip(old_root, byte), new_root, proof)
    assert not merkle.verify_consistency(old_size, new_size, old_root, _flip(new_root, byte), proof)
    if proof:
        step = data.draw(st.integers(0, len(proof) - 1))
        mutated = [*proof[:step], _flip(proof[step], byte), *proof[step + 1 :]]
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, mutated)
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, proof[1:])
    if old_size < new_size:  # sizes travel with their roots
        longer_root = merkle.tree_hash(everything)
        assert not merkle.verify_consistency(old_size, new_size + 1, old_root, longer_root, proof)
        if old_size > 1:
            shorter_root = merkle.tree_hash(leaves[: old_size - 1])
            assert not merkle.verify_consistency(old_size - 1, new_size, shorter_root, new_root, proof)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 2000), split=st.integers(0, 2000))
def test_compact_range_root_and_stored_nodes_equal_the_reference_tree(size, split):
    split = min(split, size)
    leaves = _random_leaves(size, size + 3)
    frontier, first_nodes = merkle.extend_frontier([], 0, leaves[:split])
    assert merkle.frontier_root(frontier) == merkle.tree_hash(leaves[:split])
    frontier, later_nodes = merkle.extend_frontier(frontier, split, leaves[split:])
    assert merkle.frontier_root(frontier) == merkle.tree_hash(leaves)
    stored = {(level, index): digest for level, index, digest in first_nodes + later_nodes}
    reference = merkle.LeafNodes(leaves)
    for (level, index), digest in stored.items():
        assert reference(level, index) == digest
    expected_count = sum(size >> level for level in range(1, max(size, 1).bit_length()))
    assert len(stored) == expected_count


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 5000), data=st.data())
def test_iterative_path_nodes_cover_the_same_ranges_as_the_rfc_recursion(size, data):
    index = data.draw(st.integers(0, size - 1))
    nodes = merkle.inclusion_path_nodes(index, size)
    steps = [merkle.path_node_range(level, position, size) for level, position in nodes]
    assert steps == merkle.inclusion_ranges(index, size)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 600), data=st.data())
def test_batch_verifier_answers_exactly_as_verify_inclusion(size, data):
    leaves = _random_leaves(size, size + 11)
    nodes = merkle.LeafNodes(leaves)
    root = merkle.tree_hash(leaves)
    batch = merkle.BatchInclusionVerifier(size, root)
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=60)):
        proof = merkle.inclusion_proof(index, size, nodes)
        if proof and data.draw(st.booleans()):
            step = data.draw(st.integers(0, len(proof) - 1))
            proof = [*proof[:step], _flip(proof[step], data.draw(st.integers(0, 31))), *proof[step + 1 :]]
        leaf = leaves[index] if data.draw(st.booleans()) else leaves[(index + 1) % size]
        assert batch.verify(index, leaf, proof) == merkle.verify_inclusion(index, size, leaf, proof, root)


def _leaves(count: int) -> list[bytes]:
    return [merkle.leaf_hash(b"leaf %d" % i) for i in range(count)]


@given(size=st.integers(1, 70), data=st.data())
@settings(max_examples=150, deadline=None)
def test_a_complete_subtree_is_proven_by_its_first_leafs_path_above_it(size, data):
    leaves = _leaves(size)
    nodes = merkle.LeafNodes(leaves)
    root = merkle.tree_hash(leaves)
    level = data.draw(st.integers(0, size.bit_length() - 1))
    position = data.draw(st.integers(0, (size >> level) - 1))
    path = [merkle.range_hash(a, b, nodes) for a, b in merkle.subtree_inclusion_ranges(level, position, size)]
    # RFC 9162's own proof of the subtree's first leaf, less the steps inside the subtree
    assert path == merkle.inclusion_proof(position << level, size, nodes)[level:]
    assert merkle.verify_subtree_inclusion(level, position, size, nodes(level, position), path, root)
    other = merkle.leaf_hash(b"other")
    assert not merkle.verify_subtree_inclusion(level, position, size, other, path, root)
    if position > 0:
        assert not merkle.verify_subtree_inclusion(level, position - 1, size, nodes(level, position), path, root)
    if path:  # a step short
        assert not merkle.verify_subtree_inclusion(level, position, size, nodes(level, position), path[:-1], root)


def test_an_incomplete_subtree_has_no_path():
    with pytest.raises(merkle.ProofError, match="not complete"):
        merkle.subtree_inclusion_ranges(2, 1, 7)  # leaves 4..7 of a tree of 7
    assert not merkle.verify_subtree_inclusion(2, 1, 7, bytes(32), [], bytes(32))


@given(start=st.integers(0, 80), length=st.integers(1, 80))
@settings(max_examples=150, deadline=None)
def test_the_subtree_hasher_gives_each_perfect_subtree_of_a_range(start, length):
    leaves = _leaves(start + length)
    nodes = merkle.LeafNodes(leaves)
    hasher = merkle.SubtreeHasher(start, start + length)
    for leaf in leaves[start:]:
        hasher.add(leaf)
    expected = [
        (level, position, nodes(level, position)) for level, position in merkle.perfect_subtrees(start, start + length)
    ]
    assert hasher.finish() == expected
    with pytest.raises(merkle.ProofError, match="more leaves"):
        hasher.add(leaves[0])
    short = merkle.SubtreeHasher(start, start + length)
    with pytest.raises(merkle.ProofError, match="fewer leaves"):
        short.finish()
