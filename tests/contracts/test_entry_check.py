"""contracts/modules/entry_check.vy, the on-chain half of a single-entry dispute (issue 15),
held against the off-chain reference on a real EVM: the row tree of oracle/compute/merkle.py
(leaves, promoted nodes, every proof of trees of 1 to 9 rows, bad proofs refused) and numpy's
exact int8 dot product (random vectors of every tail length, the extremes -128 and 127, k up
to 4096); and the combined check a dispute will make: a correct entry is not refuted, one
entry off by one is, and a row that does not open the root reverts.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracle.compute.merkle import MerkleTree, chunks_per_row, leaf_hash


@pytest.fixture(scope="module")
def harness(project, deployer):
    return project.EntryCheckHarness.deploy(sender=deployer)


def _tree(rows: list[bytes]) -> MerkleTree:
    return MerkleTree.from_leaves([leaf_hash(i, r) for i, r in enumerate(rows)])


def test_leaf__equals_merkle_py(harness) -> None:
    for index, row in ((0, b""), (5, b"\x01\x02\x03"), (2**40 + 3, bytes(range(256)) * 3)):
        assert bytes(harness.leaf(index, row)) == leaf_hash(index, row)


@pytest.mark.parametrize("n", range(1, 10))
def test_opens__every_row_of_every_small_tree(harness, n: int) -> None:
    rng = np.random.default_rng(n)
    rows = [rng.integers(0, 256, 12, dtype=np.uint8).tobytes() for _ in range(n)]
    tree = _tree(rows)
    for i, row in enumerate(rows):
        proof = tree.proof(i)
        assert harness.opens(tree.root, i, n, row, proof)
        # the wrong row, index, size, or a proof with a sibling changed, missing or extra
        assert not harness.opens(tree.root, i, n, row + b"\x00", proof)
        if n > 1:
            assert not harness.opens(tree.root, (i + 1) % n, n, row, proof)
            bad = list(proof)
            bad[0] = bytes(32)
            assert not harness.opens(tree.root, i, n, row, bad)
            assert not harness.opens(tree.root, i, n, row, proof[:-1])
        assert not harness.opens(tree.root, i, n, row, [*proof, bytes(32)])
    assert not harness.opens(tree.root, n, n, rows[0], tree.proof(0))


@pytest.mark.parametrize("k", [1, 7, 31, 32, 33, 63, 64, 100, 255, 1000, 4096])
def test_dot_int8__equals_numpy(harness, k: int) -> None:
    rng = np.random.default_rng(k)
    a = rng.integers(-128, 128, k, dtype=np.int8)
    b = rng.integers(-128, 128, k, dtype=np.int8)
    assert harness.dot_int8(a.tobytes(), b.tobytes()) == int(a.astype(np.int64) @ b)


@pytest.mark.parametrize(("x", "y"), [(-128, -128), (127, 127), (-128, 127), (0, -128)])
def test_dot_int8__extremes_at_4096(harness, x: int, y: int) -> None:
    a = np.full(4096, x, dtype=np.int8)
    b = np.full(4096, y, dtype=np.int8)
    assert harness.dot_int8(a.tobytes(), b.tobytes()) == 4096 * x * y


def test_dot_int8__lengths_differ__reverts(harness) -> None:
    with pytest.raises(Exception, match="entry: lengths differ"):
        harness.dot_int8(b"\x01\x02", b"\x01")


def test_chunks_per_row__same_rule_as_merkle_py(harness) -> None:
    cases = [(n, 4) for n in (1, 2, 5, 127, 128, 200, 255, 256, 384, 1024, 3072, 4096, 4097)]
    cases += [(8194, 4), (2**20, 4), (4096, 1), (4096, 8), (6, 256)]
    for n, item in cases:
        assert harness.chunks_per_row(n, item) == chunks_per_row(n, item), (n, item)
    assert harness.chunks_per_row(4096, 4) == 32


def test_entry_bits__only_the_chunk_of_the_entry_opens(harness) -> None:
    """m = 5 rows of n = 512 int32 (p = 4 chunks of 128 entries, 20 leaves, the last row's
    subtree promoted): each entry reads from its own chunk; any other chunk, leaf index or
    proof reverts."""
    m, n = 5, 512
    c = np.random.default_rng(11).integers(-(2**31), 2**31, (m, n)).astype("<i4")
    p = chunks_per_row(n, 4)
    assert p == 4
    tree = MerkleTree.from_rows(c.tobytes(), m * p)
    chunks = c.reshape(m * p, n // p)
    for i, j in [(0, 0), (0, 127), (0, 128), (2, 300), (4, 511), (4, 0)]:
        leaf = i * p + j // 128
        got = harness.entry_bits(tree.root, m, n, i, j, chunks[leaf].tobytes(), tree.proof(leaf))
        assert got == int(c[i, j]) & 0xFFFFFFFF
        other = leaf ^ 1  # the neighbouring chunk, with its own valid proof
        with pytest.raises(Exception, match="entry: bad proof of C"):
            harness.entry_bits(tree.root, m, n, i, j, chunks[other].tobytes(), tree.proof(other))
        with pytest.raises(Exception, match="entry: bad proof of C"):
            harness.entry_bits(tree.root, m, n, i, j, chunks[leaf].tobytes(), tree.proof(other))
    with pytest.raises(Exception, match="entry: chunk of C is not n/p entries"):
        harness.entry_bits(tree.root, m, n, 1, 3, c[1].tobytes(), tree.proof(4))
    with pytest.raises(Exception, match="entry: outside the matrix"):
        harness.entry_bits(tree.root, m, n, 1, n, chunks[7].tobytes(), tree.proof(7))


def test_int32_at__little_endian_signed(harness) -> None:
    row = np.array([0, 1, -1, 2**31 - 1, -(2**31), 123456789, -98765], dtype="<i4")
    for j, v in enumerate(row):
        assert harness.int32_at(row.tobytes(), j) == int(v)


def test_refutes__wrong_entry_only(harness) -> None:
    """C = A·B with one entry off by one: that entry is refuted, its neighbour is not."""
    rng = np.random.default_rng(0)
    m, k, n = 5, 300, 6
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    c = (a.astype(np.int32) @ b.astype(np.int32)).astype("<i4")
    c[3, 4] += 1
    rows = [c[i].tobytes() for i in range(m)]
    tree = _tree(rows)
    col = np.ascontiguousarray(b.T)  # B column-major, as blob inputs store it
    assert harness.refutes(
        tree.root, m, 3, 4, rows[3], tree.proof(3), a[3].tobytes(), col[4].tobytes()
    )
    assert not harness.refutes(
        tree.root, m, 3, 5, rows[3], tree.proof(3), a[3].tobytes(), col[5].tobytes()
    )
    assert not harness.refutes(
        tree.root, m, 0, 4, rows[0], tree.proof(0), a[0].tobytes(), col[4].tobytes()
    )
    with pytest.raises(Exception, match="entry: bad proof"):
        harness.refutes(
            tree.root, m, 2, 4, rows[3], tree.proof(3), a[3].tobytes(), col[4].tobytes()
        )
    with pytest.raises(Exception, match="entry: no such column"):
        harness.refutes(
            tree.root, m, 3, n, rows[3], tree.proof(3), a[3].tobytes(), col[4].tobytes()
        )


def test_refutes_int8__blob_job__against_its_published_roots(harness) -> None:
    """The whole check of one entry of an int8 blob job: C's row against the result root,
    A's row and B's column against the roots its spec carries (oracle.compute.blob_inputs)."""
    from oracle.compute.blob_inputs import matmul_blobs

    rng = np.random.default_rng(1)
    m, k, n = 7, 100, 5
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    roots = matmul_blobs(a, b).inputs
    a_root, b_root = (bytes.fromhex(roots[x]["root"][2:]) for x in ("a", "b"))
    c = (a.astype(np.int32) @ b.astype(np.int32)).astype("<i4")
    c[6, 2] -= 3
    c_tree = _tree([c[i].tobytes() for i in range(m)])
    a_tree = _tree([a[i].tobytes() for i in range(m)])
    cols = np.ascontiguousarray(b.T)
    b_tree = _tree([cols[j].tobytes() for j in range(n)])
    assert (a_tree.root, b_tree.root) == (a_root, b_root)

    def call(i: int, j: int, **over: object) -> bool:
        args = {
            "c_root": c_tree.root, "a_root": a_root, "b_root": b_root, "m": m, "n": n,
            "i": i, "j": j, "c_row": c[i].tobytes(), "c_proof": c_tree.proof(i),
            "a_row": a[i].tobytes(), "a_proof": a_tree.proof(i),
            "b_col": cols[min(j, n - 1)].tobytes(), "b_proof": b_tree.proof(min(j, n - 1)),
        }  # fmt: skip
        args.update(over)
        return bool(harness.refutes_int8(*args.values()))

    assert call(6, 2)
    assert not any(call(i, j) for i, j in ((6, 1), (0, 2), (3, 4), (0, 0)))
    for over, reason in (
        ({"c_row": c[5].tobytes()}, "bad proof of C"),
        ({"a_row": a[5].tobytes()}, "bad proof of A"),
        ({"b_col": cols[1].tobytes()}, "bad proof of B"),
        ({"a_root": b_root}, "bad proof of A"),
        ({"c_row": c[6].tobytes()[:-4]}, "chunk of C is not n/p entries"),
        ({"m": m + 1}, "bad proof of C"),
    ):
        with pytest.raises(Exception, match=f"entry: {reason}"):
            call(6, 2, **over)
    with pytest.raises(Exception, match="entry: outside the matrix"):
        call(6, n)


# -- seeded inputs: the keccak counter-mode stream, regenerated on-chain ----------------------


def test_keccak_word__equals_keccak_inputs(harness) -> None:
    from oracle.compute.keccak_inputs import keccak_word

    for seed, tensor, line, word in ((0, 0, 0, 0), (2**64 - 1, 1, 4095, 127), (7, 1, 3, 2)):
        got = harness.keccak_word(seed, tensor, line, word)
        assert got.to_bytes(32, "big") == keccak_word(seed, tensor, line, word)


@pytest.mark.parametrize("k", [1, 31, 32, 33, 100, 4096])
def test_dot_int8_seeded__equals_the_generated_inputs(harness, k: int) -> None:
    """The contract's regenerated row of A and column of B are keccak_inputs' (B column-major):
    their dot product equals numpy's on the matrices the generator gives a worker."""
    from oracle.compute.keccak_inputs import keccak_matmul_inputs

    seed, m, n = 2**40 + k, 3, 4
    a, b = keccak_matmul_inputs(seed, m, n, k, "int8")
    for i, j in ((0, 0), (2, 3), (1, 2)):
        want = int(a[i].astype(np.int64) @ b[:, j].astype(np.int64))
        assert harness.dot_int8_seeded(seed, i, j, k) == want


def test_dot_int8_seeded__k_over_4096__reverts(harness) -> None:
    with pytest.raises(Exception, match="entry: k too large"):
        harness.dot_int8_seeded(1, 0, 0, 4097)


def test_refutes_int8_seeded__wrong_entry_only(harness) -> None:
    from oracle.compute.keccak_inputs import keccak_matmul_inputs

    seed, m, n, k = 99, 6, 5, 70
    a, b = keccak_matmul_inputs(seed, m, n, k, "int8")
    c = (a.astype(np.int32) @ b.astype(np.int32)).astype("<i4")
    c[4, 1] += 1
    tree = _tree([c[i].tobytes() for i in range(m)])

    def call(i: int, j: int, seed: int = seed, row: int | None = None) -> bool:
        r = i if row is None else row
        return bool(
            harness.refutes_int8_seeded(
                tree.root, seed, m, n, k, i, j, c[r].tobytes(), tree.proof(r)
            )
        )

    assert call(4, 1)
    assert not any(call(i, j) for i, j in ((4, 0), (0, 1), (5, 4)))
    assert call(0, 0, seed=seed + 1)  # another seed's inputs: C is wrong for them
    with pytest.raises(Exception, match="entry: bad proof of C"):
        call(3, 1, row=4)
    with pytest.raises(Exception, match="entry: outside the matrix"):
        call(m, 0, row=0)


# -- seeded fp32: the exact dot product and the bound no honest summation exceeds -------------


def _fp32_rule(bits: int, exact: int, mag: int, k: int) -> bool:
    """The rule the watcher applies off-chain (oracle/compute/refute.py), on float32 bits."""
    from oracle.compute.refute import fp32_outside

    return fp32_outside(float(np.array([bits], dtype="<u4").view(np.float32)[0]), exact, mag, k)


def test_fp32_outside__equals_the_exact_rule(harness) -> None:
    rng = np.random.default_rng(5)
    cases = []
    for _ in range(60):
        k = int(rng.integers(1, 4097))
        exact = int(rng.integers(-(2**50), 2**50))
        mag = abs(exact) + int(rng.integers(0, 2**50))
        c = np.float32(exact * 2.0**-46)
        tol = k * 2.0**-24 * mag * 2.0**-46
        for x in (c, c + np.float32(tol * 0.99), c - np.float32(tol * 1.01), c * np.float32(1.5)):
            cases.append((int(np.float32(x).view("<u4")), exact, mag, k))
    specials = [0, 1, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000]
    cases += [(b, e, mag, 64) for b in specials for e, mag in ((0, 0), (2**40, 2**41), (-5, 9))]
    cases += [(int(b), 0, 2**45, 4096) for b in rng.integers(0, 2**32, 40, dtype=np.uint64)]
    assert any(_fp32_rule(*c) for c in cases) and not all(_fp32_rule(*c) for c in cases)
    for c in cases:
        assert harness.fp32_outside(*c) == _fp32_rule(*c), c


@pytest.mark.parametrize("k", [1, 7, 8, 9, 100, 4096])
def test_dot_fp32_seeded__exact_in_units_of_2_pow_minus_46(harness, k: int) -> None:
    from oracle.compute.keccak_inputs import keccak_matmul_inputs

    seed = 777 + k
    a, b = keccak_matmul_inputs(seed, 2, 3, k, "fp32")
    ai = np.rint(a.astype(np.float64) * 2**23).astype(np.int64)
    bi = np.rint(b.astype(np.float64) * 2**23).astype(np.int64)
    for i, j in ((0, 0), (1, 2)):
        prods = [int(x) * int(y) for x, y in zip(ai[i], bi[:, j], strict=True)]
        exact, mag = harness.dot_fp32_seeded(seed, i, j, k)
        assert (exact, mag) == (sum(prods), sum(abs(p) for p in prods))


def test_refutes_fp32_seeded__honest_fp32_passes__a_wrong_entry_does_not(harness) -> None:
    """numpy's float32 product (BLAS, its own summation order) is never refuted; an entry off
    by 0.1% is."""
    from oracle.compute.keccak_inputs import keccak_matmul_inputs

    seed, m, n, k = 4242, 4, 6, 300
    a, b = keccak_matmul_inputs(seed, m, n, k, "fp32")
    c = (a @ b).astype("<f4")
    tree = _tree([c[i].tobytes() for i in range(m)])
    for i in range(m):
        for j in range(n):
            args = (tree.root, seed, m, n, k, i, j, c[i].tobytes(), tree.proof(i))
            assert not harness.refutes_fp32_seeded(*args), (i, j)
    bad = c.copy()
    bad[2, 5] *= np.float32(1.001)
    bad_tree = _tree([bad[i].tobytes() for i in range(m)])
    args = (bad_tree.root, seed, m, n, k, 2, 5, bad[2].tobytes(), bad_tree.proof(2))
    assert harness.refutes_fp32_seeded(*args)
    args = (bad_tree.root, seed, m, n, k, 2, 4, bad[2].tobytes(), bad_tree.proof(2))
    assert not harness.refutes_fp32_seeded(*args)
