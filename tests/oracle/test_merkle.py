"""Merkle tree layout, proofs and the commitment."""

from __future__ import annotations

import random

import numpy as np
import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from oracle.compute import keccak as keccak_kernels
from oracle.compute import merkle
from oracle.compute.merkle import (
    MIN_CHUNK_BYTES,
    MerkleTree,
    chunks_per_row,
    leaf_hash,
    merkle_root,
    node_hash,
    proof_length,
    row_root,
    verify_openings,
    verify_proof,
    verify_proof_leaf,
    verify_row,
)
from oracle.protocol.commitment import commitment


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


# -- building the tree: the compiled kernel against one hash at a time ------------------------


def _reference_levels(blob: bytes, rows: int) -> tuple[tuple[bytes, ...], ...]:
    """Every level of the tree, one pysha3 (or eth-hash) call per hash, built here."""
    width = len(blob) // rows
    levels = [tuple(leaf_hash(i, blob[i * width : (i + 1) * width]) for i in range(rows))]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [node_hash(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
        levels.append(tuple(nxt + [cur[-1]] * (len(cur) % 2)))
    return tuple(levels)


@pytest.fixture
def compiled() -> None:
    """Skip where numba is missing: these tests compare the compiled path with the reference.

    Loading the kernel also makes small trees use it (before, only large ones load it).
    """
    if not merkle.jit_warm_up():
        pytest.skip("numba unavailable: nothing compiled to compare")


_EDGE_ROWS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256, 257]
# 136 bytes is keccak256's rate: with the 9-byte leaf prefix, 127 bytes fill one block with its
# padding byte, 128 start a second block, 263 fill two; 0 is a valid (empty) row.
_WIDTHS = [0, 1, 4, 7, 8, 127, 128, 135, 136, 137, 263, 264, 4096]


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("width", _WIDTHS)
def test_from_rows__compiled__every_level_equals_reference(width: int) -> None:
    rng = random.Random(width)
    counts = range(1, 301) if width <= 264 else [*_EDGE_ROWS, 300]
    for rows in counts:
        blob = rng.randbytes(rows * width)
        expected = _reference_levels(blob, rows)
        tree = MerkleTree.from_rows(blob, rows)
        assert tree.levels == expected, rows
        assert merkle_root(blob, rows) == expected[-1][0], rows
        assert all(len(h) == 32 for level in tree.levels for h in level)


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("rows", [1, 2, 3, 5, 8, 9, 17])
def test_from_rows__compiled__equals_plain_keccak_of_the_layout(rows: int) -> None:
    # Independent of this module's hash functions: eth-utils' keccak on the documented bytes.
    for width in (1, 126, 127, 128, 135, 136, 137, 300):
        blob = random.Random(rows * 1000 + width).randbytes(rows * width)
        level = [
            keccak(b"\x00" + i.to_bytes(8, "big") + blob[i * width : (i + 1) * width])
            for i in range(rows)
        ]
        while len(level) > 1:
            pairs = [keccak(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
            level = pairs + level[-1:] * (len(level) % 2)
        assert merkle_root(blob, rows) == level[0]
        assert MerkleTree.from_rows(blob, rows).root == level[0]


@pytest.mark.usefixtures("compiled")
@pytest.mark.parametrize("workers", [2, 3, 8])
@pytest.mark.parametrize("rows", [9, 16, 17, 40, 64, 65, 127, 255, 256, 257, 1000, 1025])
def test_from_rows__chunks_over_the_pool__same_tree(
    monkeypatch: pytest.MonkeyPatch, rows: int, workers: int
) -> None:
    # Every size takes the parallel path: chunks of 8·2^k rows, each with its subtree, then the
    # levels above them in one call (chunk sizes depend on the worker count).
    monkeypatch.setattr(merkle, "_JIT_PARALLEL_BYTES", 0)
    monkeypatch.setattr(merkle, "workers", lambda: workers)
    for width in (3, 24, 200):
        blob = random.Random(rows + width).randbytes(rows * width)
        expected = _reference_levels(blob, rows)
        assert MerkleTree.from_rows(blob, rows).levels == expected
        assert merkle_root(blob, rows) == expected[-1][0]


@pytest.mark.usefixtures("compiled")
def test_from_rows__unaligned_writable_and_numpy_inputs__same_tree() -> None:
    rng = random.Random(3)
    for offset in range(8):  # the kernel reads words from the aligned part of the buffer
        for rows, width in [(9, 4), (17, 12), (8, 136), (20, 301), (3, 1000)]:
            raw = bytearray(rng.randbytes(offset + rows * width + 3))
            view = memoryview(raw)[offset : offset + rows * width]  # writable, unaligned
            expected = _reference_levels(bytes(view), rows)
            assert MerkleTree.from_rows(view, rows).levels == expected, (offset, rows, width)
            assert merkle_root(view, rows) == expected[-1][0]
    arr = np.arange(32 * 32, dtype=np.int32).reshape(32, 32)  # 32 rows of 128 bytes
    expected = _reference_levels(arr.tobytes(), 32)
    assert merkle_root(memoryview(arr).cast("B"), 32) == expected[-1][0]
    assert MerkleTree.from_rows(memoryview(arr), 32).levels == expected


@settings(deadline=None)  # the first example may compile the kernel (cold numba cache)
@given(
    rows=st.integers(1, 300),
    width=st.integers(0, 300),
    offset=st.integers(0, 7),
    seed=st.integers(0, 2**32),
    pool=st.booleans(),
)
def test_from_rows__property__compiled_equals_reference(
    rows: int, width: int, offset: int, seed: int, pool: bool
) -> None:
    merkle.jit_warm_up()  # loaded: small trees use the kernel too
    raw = random.Random(seed).randbytes(offset + rows * width)
    view = memoryview(raw)[offset:]
    expected = _reference_levels(raw[offset:], rows)
    old = merkle._JIT_PARALLEL_BYTES
    merkle._JIT_PARALLEL_BYTES = 0 if pool else old  # (no function-scoped fixture in @given)
    try:
        assert MerkleTree.from_rows(view, rows).levels == expected
        assert merkle_root(view, rows) == expected[-1][0]
    finally:
        merkle._JIT_PARALLEL_BYTES = old


_CASES = [(1, 5), (2, 128), (3, 137), (8, 136), (33, 128), (100, 7), (257, 64)]


def test_from_rows__without_numba__same_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    merkle.jit_warm_up()  # loaded (if numba is here): small trees use the kernel too
    rng = random.Random(11)
    cases = [(rows, rng.randbytes(rows * width)) for rows, width in _CASES]
    default = [(MerkleTree.from_rows(b, r), merkle_root(b, r)) for r, b in cases]
    monkeypatch.setattr("oracle.compute.merkle._jit", lambda *_: None)  # as without numba
    assert merkle._tree_kernel() is None
    assert not merkle.jit_warm_up()
    fallback = [(MerkleTree.from_rows(b, r), merkle_root(b, r)) for r, b in cases]
    assert fallback == default
    assert [t.levels for t, _ in fallback] == [_reference_levels(b, r) for r, b in cases]
    assert [root for _, root in fallback] == [t.root for t, _ in fallback]


@pytest.mark.usefixtures("compiled")
def test_tree_nodes__falls_back_where_one_call_per_hash_is_faster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small, big = memoryview(bytes(4 * 128)), memoryview(bytes(merkle._PARALLEL_BYTES))
    assert merkle._tree_nodes(small[:128], 1) is None  # one row: its leaf, one call
    assert merkle._tree_nodes(small, 2) is not None
    assert merkle._tree_nodes(small, 3) is not None
    monkeypatch.setattr(merkle, "workers", lambda: 2)
    assert merkle._tree_nodes(big, 2) is None  # 2-3 long rows: one thread per row
    assert merkle._tree_nodes(big, 3) is None
    assert merkle._tree_nodes(big, 4) is not None
    monkeypatch.setattr(merkle, "workers", lambda: 1)
    assert merkle._tree_nodes(big, 2) is not None


def test_tree_nodes__not_loaded__only_a_large_result_loads_numba(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[object] = []

    def jit(py_func: object, *_: object) -> None:
        loads.append(py_func)  # and None: as without numba, so the reference path serves

    monkeypatch.setattr(merkle, "_tree_loaded", False)  # a fresh process (a worker)
    monkeypatch.setattr(merkle, "_jit", jit)
    monkeypatch.setattr(merkle, "_JIT_LOAD_BYTES", 4096)
    blob = random.Random(5).randbytes(4096)
    assert merkle_root(blob[:4000], 32) == _reference_levels(blob[:4000], 32)[-1][0]
    assert loads == []  # small: hashed one call at a time, numba left unimported
    assert merkle_root(blob, 32) == _reference_levels(blob, 32)[-1][0]
    assert loads == [keccak_kernels.keccak_tree]


def test_jit_warm_up__loads_both_kernels() -> None:
    if not merkle.jit_warm_up():
        pytest.skip("numba unavailable")
    assert merkle._tree_kernel(load=False) is not None


def test_verify_openings__rows_as_one_array__same_as_bytes_per_row() -> None:
    """Opened rows given side by side in one array (no join) give the same leaves and
    verdicts as one bytes object per row, a tampered row included."""
    rows, width = 37, 40
    data = np.random.default_rng(9).integers(0, 256, rows * width, dtype=np.uint8).tobytes()
    tree = MerkleTree.from_rows(data, rows)
    idx = [0, 5, 17, 36]
    as_bytes = [data[i * width : (i + 1) * width] for i in idx]
    block = np.frombuffer(b"".join(as_bytes), dtype=np.uint8).reshape(len(idx), width).copy()
    block[2, 3] ^= 1
    as_bytes[2] = block[2].tobytes()
    proofs = [tree.proof(i) for i in idx]
    assert verify_openings(tree.root, idx, block, proofs, rows) == verify_openings(
        tree.root, idx, as_bytes, proofs, rows
    )
    assert verify_openings(tree.root, idx, block, proofs, rows)[1] == [True, True, False, True]


@pytest.mark.parametrize("jit", [True, False])
def test_verify_openings__flat_proofs__same_as_lists(jit: bool) -> None:
    """Proofs given back to back (FlatProofs, as the llm answer decoder reads them) check the
    same as lists of hashes, promoted last rows (shorter proofs) and a forged hash included."""
    from oracle.compute.merkle import FlatProofs, proof_lengths

    rng = np.random.default_rng(3)
    rows = 37  # odd levels: the last rows have shorter proofs
    data = rng.integers(0, 256, (rows, 24), dtype=np.uint8)
    tree = MerkleTree.from_rows(data.tobytes(), rows)
    indices = [0, 5, 31, 32, 35, 36]
    lists = [tree.proof(i) for i in indices]
    lengths = proof_lengths(np.array(indices), rows)
    assert lengths.tolist() == [proof_length(i, rows) for i in indices] == [len(p) for p in lists]
    assert len(set(lengths.tolist())) > 1
    flat = FlatProofs(np.frombuffer(b"".join(h for p in lists for h in p), "<u8").reshape(-1, 4),
                      lengths)  # fmt: skip
    assert flat.as_lists() == lists
    opened = data[indices]
    want = verify_openings(tree.root, indices, opened, lists, rows, jit=jit)
    assert verify_openings(tree.root, indices, opened, flat, rows, jit=jit) == want
    assert all(want[1])
    forged = flat.hashes.copy()
    forged[lengths[0]] ^= 1  # a hash of the second proof
    _, oks = verify_openings(tree.root, indices, opened, FlatProofs(forged, lengths), rows, jit=jit)
    assert oks == [True, False, True, True, True, True]


def test_proof_lengths__every_index_of_many_trees() -> None:
    from oracle.compute.merkle import proof_lengths

    for rows in (1, 2, 3, 7, 8, 9, 100, 1023, 1025):
        idx = np.arange(rows)
        assert proof_lengths(idx, rows).tolist() == [proof_length(i, rows) for i in range(rows)]


# --- result trees with chunked leaves (module docstring) ---------------------------------


@pytest.mark.parametrize(
    ("n", "itemsize", "p"),
    [
        (4096, 4, 32),  # 16 KiB rows: 32 chunks of 512 bytes
        (1024, 4, 8),
        (3072, 4, 16),  # 3 · 2^10 entries: 16 chunks of 768 bytes (32 would be 384 bytes)
        (256, 4, 2),  # 1 KiB: two 512-byte chunks
        (255, 4, 1),  # odd n: one leaf per row
        (4097, 4, 1),
        (8194, 4, 2),  # 2 · 4097: halves of an odd count
        (200, 4, 1),  # 800 bytes: under 1 KiB
        (5, 4, 1),
        (4096, 1, 8),
        (1, 4, 1),
    ],
)
def test_chunks_per_row__the_rule(n: int, itemsize: int, p: int) -> None:
    assert chunks_per_row(n, itemsize) == p
    assert n % p == 0 and (p == 1 or (n // p) * itemsize >= MIN_CHUNK_BYTES)
    assert (n // p) % 2 or (n // p // 2) * itemsize < MIN_CHUNK_BYTES  # no larger p fits
    for bad in ((0, 4), (4, 0), (-2, 4)):
        with pytest.raises(ValueError):
            chunks_per_row(*bad)


def _chunked(rows: int, n: int, seed: int) -> tuple[np.ndarray, int, MerkleTree]:
    c = np.random.default_rng(seed).integers(-(2**31), 2**31, (rows, n)).astype("<i4")
    p = chunks_per_row(n, 4)
    return c, p, MerkleTree.from_rows(c.tobytes(), rows * p)


@pytest.mark.parametrize(("rows", "n"), [(5, 512), (1, 1024), (7, 256), (6, 3072)])
def test_chunked_tree__plain_keccak_layout_and_row_subtrees(rows: int, n: int) -> None:
    c, p, tree = _chunked(rows, n, rows)
    assert p > 1
    size = 4 * n // p
    raw = c.tobytes()
    chunk_leaves = [
        keccak(b"\x00" + x.to_bytes(8, "big") + raw[x * size : (x + 1) * size])
        for x in range(rows * p)
    ]
    assert tree.levels[0] == tuple(chunk_leaves)
    assert tree.root == MerkleTree.from_leaves(chunk_leaves).root
    # level log2(p) holds each row's subtree root, and above it the plain row tree's shape
    tops = [row_root(i, c[i].tobytes(), p) for i in range(rows)]
    assert tree.levels[p.bit_length() - 1] == tuple(tops)
    assert MerkleTree.from_leaves(tops).root == tree.root
    assert merkle_root(raw, rows * p) == tree.root


def test_chunked_tree__row_opened_through_its_subtree__tampering_any_chunk_fails() -> None:
    rows, n = 5, 1024  # p = 8, and the odd last row is promoted above its subtree
    c, p, tree = _chunked(rows, n, 3)
    size = 4 * n // p
    for i in range(rows):
        row = c[i].tobytes()
        proof = tree.row_proof(i, p)
        assert len(proof) == proof_length(i, rows)
        assert verify_row(tree.root, i, row, proof, rows, p)
        for chunk in range(p):
            bad = bytearray(row)
            bad[chunk * size + (7 * chunk) % size] ^= 0x10
            assert not verify_row(tree.root, i, bytes(bad), proof, rows, p)
        assert not verify_row(tree.root, (i + 1) % rows, row, proof, rows, p)
        assert not verify_row(tree.root, i, row, proof, rows, p // 2)  # another chunking
        assert not verify_row(tree.root, i, row, tree.proof(i), rows)  # the plain layout
        assert not verify_row(tree.root, i, row[:-4], proof, rows, p)
    with pytest.raises(ValueError):
        tree.row_proof(0, 3)
    with pytest.raises(ValueError):
        _chunked(3, 256, 0)[2].row_proof(0, 4)  # 6 leaves are not rows of 4 chunks


@pytest.mark.parametrize("jit", [True, False])
def test_verify_openings__chunked__same_as_verify_row_and_only_tampered_rows_fail(
    jit: bool,
) -> None:
    rows, n = 37, 256  # p = 2
    c, p, tree = _chunked(rows, n, 5)
    indices = [0, 36, 5, 17, 8, 9, 30, 31, 2, 3]  # more than a group of 8 rows
    rows_data = [c[i].tobytes() for i in indices]
    proofs = [tree.row_proof(i, p) for i in indices]
    tops, oks = verify_openings(tree.root, indices, rows_data, proofs, rows, chunks=p, jit=jit)
    assert all(oks)
    assert tops == [row_root(i, r, p) for i, r in zip(indices, rows_data, strict=True)]
    as_array = verify_openings(tree.root, indices, c[indices], proofs, rows, chunks=p, jit=jit)
    assert as_array == (tops, oks)
    bad_rows = list(rows_data)
    bad_rows[2] = rows_data[2][:-1] + bytes([rows_data[2][-1] ^ 1])  # last chunk
    bad_rows[4] = bytes([rows_data[4][0] ^ 1]) + rows_data[4][1:]  # first chunk
    bad_rows[6] = rows_data[6][:-4]  # no longer n entries: not split into p chunks
    bad_proofs = [list(pr) for pr in proofs]
    bad_proofs[7][0] = bytes(32)
    bad_proofs[9] = tree.proof(indices[9] * p)  # the full chunk proof is not the row's
    _, oks = verify_openings(tree.root, indices, bad_rows, bad_proofs, rows, chunks=p, jit=jit)
    want = [verify_row(tree.root, i, r, pr, rows, p)
            for i, r, pr in zip(indices, bad_rows, bad_proofs, strict=True)]  # fmt: skip
    assert oks == want
    assert [t for t, ok in enumerate(oks) if not ok] == [2, 4, 6, 7, 9]
    assert not any(verify_openings(bytes(32), indices, rows_data, proofs, rows, chunks=p)[1])


def test_entry_opening__the_chunk_of_the_entry_verifies_and_no_other_index_does() -> None:
    from oracle.compute.work import entry_opening, result_tree
    from oracle.protocol.spec import parse_spec

    m, n = 6, 1024
    spec = parse_spec(
        {"version": 1, "kind": "matmul", "dtype": "int8", "m": m, "n": n, "k": 8,
         "inputs": {"seed": 1}, "verify": {"mode": "full"}}
    )  # fmt: skip
    c = np.random.default_rng(9).integers(-(2**31), 2**31, (m, n)).astype("<i4")
    tree = result_tree(spec, c)
    p = chunks_per_row(n, 4)
    assert tree.rows == m * p == 48
    width = n // p
    for i, j in [(0, 0), (3, 127), (3, 128), (5, 1023), (4, 700)]:
        chunk, proof = entry_opening(spec, c, tree, i, j)
        leaf = i * p + j // width
        assert len(chunk) == 4 * width
        assert np.frombuffer(chunk, "<i4")[j % width] == c[i, j]
        assert verify_proof(tree.root, leaf, chunk, proof, m * p)
        for other in (leaf - 1, leaf + 1, i):
            if 0 <= other < m * p and other != leaf:
                assert not verify_proof(tree.root, other, chunk, proof, m * p)
        assert not verify_proof(tree.root, leaf, chunk, proof, m)  # rows, not chunks
    with pytest.raises(IndexError):
        entry_opening(spec, c, tree, m, 0)
