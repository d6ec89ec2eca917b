"""Merkle tree layout, proofs and the commitment."""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.commitment import commitment
from oracle.merkle import (
    MerkleTree,
    leaf_hash,
    merkle_root,
    node_hash,
    proof_length,
    verify_openings,
    verify_proof,
    verify_proof_leaf,
)


def test_layout__three_rows__last_node_promoted() -> None:
    rows = [b"aa", b"bb", b"cc"]
    leaves = [keccak(b"\x00" + i.to_bytes(8, "big") + r) for i, r in enumerate(rows)]
    assert [leaf_hash(i, r) for i, r in enumerate(rows)] == leaves
    expected = keccak(b"\x01" + keccak(b"\x01" + leaves[0] + leaves[1]) + leaves[2])
    assert merkle_root(b"".join(rows), 3) == expected
    assert node_hash(leaves[0], leaves[1]) == keccak(b"\x01" + leaves[0] + leaves[1])
    assert merkle_root(b"aa", 1) == leaves[0]


@given(rows=st.integers(1, 70), width=st.integers(1, 9), data=st.data())
def test_proofs__property__every_row_verifies_and_tampering_fails(
    rows: int, width: int, data: st.DataObject
) -> None:
    blob = data.draw(st.binary(min_size=rows * width, max_size=rows * width))
    tree = MerkleTree.from_rows(blob, rows)
    i = data.draw(st.integers(0, rows - 1))
    row = blob[i * width : (i + 1) * width]
    proof = tree.proof(i)
    assert len(proof) == proof_length(i, rows)
    assert verify_proof(tree.root, i, row, proof, rows)
    tampered = bytes([row[0] ^ 1]) + row[1:]
    assert not verify_proof(tree.root, i, tampered, proof, rows)
    if rows > 1:
        assert not verify_proof(tree.root, (i + 1) % rows, row, proof, rows)
        assert not verify_proof(tree.root, i, row, proof[:-1], rows)


def test_proof__bad_index__raises_or_false() -> None:
    tree = MerkleTree.from_rows(b"abcd", 4)
    with pytest.raises(IndexError):
        tree.proof(4)
    assert not verify_proof(tree.root, 4, b"a", [], 4)
    with pytest.raises(ValueError, match="equal rows"):
        MerkleTree.from_rows(b"abc", 2)


def test_commitment__abi_packed_address_and_root() -> None:
    addr = "0x" + "ab" * 20
    root = bytes(range(32))
    assert commitment(addr, root) == keccak(bytes.fromhex("ab" * 20) + root)
    assert commitment(addr, root) != commitment("0x" + "ac" * 20, root)
    with pytest.raises(ValueError):
        commitment("0x1234", root)
    with pytest.raises(ValueError):
        commitment(addr, root[:31])


def _opened(rows: int, width: int, seed: int) -> tuple[MerkleTree, list[int], list[bytes]]:
    rng = random.Random(seed)
    blob = rng.randbytes(rows * width)
    tree = MerkleTree.from_rows(blob, rows)
    indices = sorted(rng.sample(range(rows), min(rows, 1 + seed % 19)))
    return tree, indices, [blob[i * width : (i + 1) * width] for i in indices]


def _reference(
    root: bytes, indices: list[int], rows_data: list[bytes], proofs: list[list[bytes]], rows: int
) -> tuple[list[bytes], list[bool]]:
    leaves = [leaf_hash(i, r) for i, r in zip(indices, rows_data, strict=True)]
    oks = [
        verify_proof_leaf(root, i, leaf, p, rows)
        for i, leaf, p in zip(indices, leaves, proofs, strict=True)
    ]
    return leaves, oks


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize(
    ("rows", "width", "seed"),
    [(1, 5, 0), (2, 8, 1), (3, 126, 2), (5, 127, 3), (17, 128, 4), (100, 300, 5), (1000, 64, 6)],
)
def test_verify_openings__same_as_one_row_at_a_time(
    rows: int, width: int, seed: int, jit: bool
) -> None:
    tree, indices, rows_data = _opened(rows, width, seed)
    proofs = [tree.proof(i) for i in indices]
    leaves, oks = verify_openings(tree.root, indices, rows_data, proofs, rows, jit=jit)
    assert (leaves, oks) == _reference(tree.root, indices, rows_data, proofs, rows)
    assert all(oks)


@pytest.mark.parametrize("jit", [True, False])
def test_verify_openings__each_kind_of_tampering__only_that_row_fails(jit: bool) -> None:
    rows = 77
    tree, indices, rows_data = _opened(rows, 40, 18)  # 18 rows: three groups of 8 lanes
    proofs = [list(tree.proof(i)) for i in indices]
    bad_proofs = [list(p) for p in proofs]
    bad_proofs[0][0] = bytes(32)  # a wrong sibling
    bad_proofs[3] = bad_proofs[3][:-1]  # one hash short
    bad_proofs[5] = [*bad_proofs[5], bytes(32)]  # one hash too many
    bad_proofs[8][1] = bad_proofs[8][1][:31]  # a 31-byte hash
    bad_proofs[9] = [bad_proofs[9][0][:31], bad_proofs[9][1] + b"\x00", *bad_proofs[9][2:]]
    bad_rows = list(rows_data)
    bad_rows[12] = bytes([rows_data[12][0] ^ 1]) + rows_data[12][1:]
    leaves, oks = verify_openings(tree.root, indices, bad_rows, bad_proofs, rows, jit=jit)
    assert (leaves, oks) == _reference(tree.root, indices, bad_rows, bad_proofs, rows)
    assert [i for i, ok in enumerate(oks) if not ok] == [0, 3, 5, 8, 9, 12]
    for root in (bytes(32), tree.root[:31], tree.root + b"\x00"):
        assert not any(verify_openings(root, indices, rows_data, proofs, rows, jit=jit)[1])


def test_verify_openings__unequal_rows_and_bad_arguments() -> None:
    tree, indices, rows_data = _opened(9, 6, 4)
    proofs = [tree.proof(i) for i in indices]
    uneven = [rows_data[0] + b"x", *rows_data[1:]]  # falls back to one row at a time
    assert verify_openings(tree.root, indices, uneven, proofs, 9) == _reference(
        tree.root, indices, uneven, proofs, 9
    )
    assert verify_openings(tree.root, [], [], [], 9) == ([], [])
    with pytest.raises(ValueError, match="out of range"):
        verify_openings(tree.root, [9], rows_data[:1], proofs[:1], 9)
    with pytest.raises(ValueError, match="differ in length"):
        verify_openings(tree.root, indices, rows_data[:1], proofs, 9)


@settings(deadline=None)  # the first example may compile the kernel (cold numba cache)
@given(rows=st.integers(1, 300), width=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_verify_openings__property__compiled_equals_reference(
    rows: int, width: int, seed: int
) -> None:
    tree, indices, rows_data = _opened(rows, width, seed)
    proofs = [tree.proof(i) for i in indices]
    assert verify_openings(tree.root, indices, rows_data, proofs, rows) == _reference(
        tree.root, indices, rows_data, proofs, rows
    )
