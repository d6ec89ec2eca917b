"""Merkle tree layout, proofs and the commitment."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from oracle.commitment import commitment
from oracle.merkle import MerkleTree, leaf_hash, merkle_root, node_hash, proof_length, verify_proof


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
