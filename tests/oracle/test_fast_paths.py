"""The one-pass fp32 check, the contiguous A_I·B reference, and the Merkle fast paths."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest

from oracle.compute.freivalds import (
    _row_ranges,
    fp32_matvec,
    fp32_row_reference,
    gamma,
    int8_bits,
    ring_product,
)
from oracle.compute.kinds.matmul import _float32_interval, challenge
from oracle.compute.merkle import MerkleTree, leaf_hash, node_hash, verify_proof, verify_proof_leaf
from oracle.compute.verify import check_full, check_sampled, prepare
from oracle.compute.work import answer_challenge, compute, load_inputs, result_tree
from oracle.protocol.hashing import keccak256
from oracle.protocol.results import encode_result
from oracle.protocol.spec import Spec
from oracle.protocol.verdict import VerdictCode

SEED = bytes.fromhex("11" * 32)


def test_fp32_matvec__within_gamma_n_of_exact_and_spans_blocks() -> None:
    rng = np.random.default_rng(3)
    c = rng.standard_normal((300, 5000)).astype(np.float32)  # 300 rows > one 1 MiB block
    rt = rng.standard_normal((3, 5000)).astype(np.float32)
    y = fp32_matvec(c, rt)
    assert y.shape == (300, 3) and y.dtype == np.float32
    exact = c.astype(np.float64) @ rt.T.astype(np.float64)
    bound = gamma(5000, 2.0**-24) * (np.abs(c).astype(np.float64) @ np.abs(rt.T).astype(np.float64))
    assert (np.abs(y - exact) <= bound).all()


def test_fp32_matvec__non_finite_propagates_and_types_checked() -> None:
    c = np.ones((4, 8), dtype=np.float32)
    c[2, 5] = np.nan
    c[3, 1] = np.inf
    y = fp32_matvec(c, np.ones((2, 8), dtype=np.float32))
    assert np.isfinite(y[:2]).all() and np.isnan(y[2]).all() and not np.isfinite(y[3]).any()
    with pytest.raises(TypeError):
        fp32_matvec(c.astype(np.float64), np.ones((2, 8)))
    with pytest.raises(ValueError):
        fp32_matvec(c, np.ones((2, 7), dtype=np.float32))


@pytest.mark.parametrize("k_block", [1, 7, 512])
def test_fp32_row_reference__honest_orders_pass_and_bound_is_rigorous(k_block: int) -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 700)).astype(np.float32)
    b = rng.standard_normal((700, 90)).astype(np.float32)
    ref, bound = fp32_row_reference(a, b, k_block=k_block)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    s = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    g = gamma(700, 2.0**-24)
    assert (np.abs(ref - exact) <= g * s).all()  # the reference itself is within γ_k·S
    assert (bound >= 2 * g * s).all()  # and the bound covers two honest errors
    honest = [
        exact.astype(np.float32),
        np.flip(a, 1) @ np.flip(b, 0),
        sum(
            (a[:, lo : lo + 3] @ b[lo : lo + 3] for lo in range(0, 700, 3)),
            np.zeros((5, 90), np.float32),
        ),
    ]
    for c in honest:
        assert (np.abs(c.astype(np.float64) - ref) <= bound).all()
    wrong = ref.astype(np.float64).copy()
    wrong[2, 7] += 2.01 * bound[2, 7]
    assert not (np.abs(wrong - ref) <= bound).all()


def test_fp32_sampled__opened_row_error_just_above_bound__invalid(
    matmul_spec: Callable[..., Spec],
) -> None:
    spec = matmul_spec("fp32", m=40, n=30, k=200, mode="sampled", openings=5)
    inputs = load_inputs(spec)
    c = compute(spec, inputs=inputs)
    prepared = prepare(spec, SEED, inputs=inputs)
    row = int(prepared.state.challenge.rows[2])
    bad = c.copy()
    # far below the Freivalds noise of y but above the per-element bound of check (4)
    bad[row, 3] += np.float32(2.5 * prepared.state.row_tau[2, 3])
    tree = result_tree(spec, bad)
    verdict = check_sampled(prepared, answer_challenge(spec, bad, SEED, tree=tree), tree.root)
    assert verdict.verdict is VerdictCode.INVALID
    honest_tree = result_tree(spec, c)
    answer = answer_challenge(spec, c, SEED, tree=honest_tree)
    assert check_sampled(prepared, answer, honest_tree.root).verdict is VerdictCode.VALID


def test_row_ranges__blocks_keep_openblas_single_threaded() -> None:
    block, ranges = _row_ranges(4096, 4096, 4)
    assert block * 4096 * 4 <= 1 << 18
    assert ranges[0][0] == 0 and ranges[-1][1] == 4096


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("rows", [1, 16, 17, 64, 301])  # 301: split over threads
def test_ring_product__int32_extremes_exact_over_many_blocks(rows: int, jit: bool) -> None:
    rng = np.random.default_rng(rows)
    m = rng.integers(-(2**31), 2**31, size=(rows, 4096), dtype=np.int64).astype(np.int32)
    m[0, :7] = np.iinfo(np.int32).min
    r = rng.integers(0, 1 << int8_bits(4096, 4096), size=(4096, 2))
    ref = m.astype(object) @ r.astype(object)  # |ref| < 2^63: the residue is the integer
    assert np.array_equal(ring_product(m, r, jit=jit).astype(object), ref)


@pytest.mark.parametrize("dtype", ["int8", "fp32"])
def test_check_full__wrong_element_row_transposed_detected_at_scale(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    spec = matmul_spec(dtype, m=96, n=96, k=300)
    inputs = load_inputs(spec)
    c = compute(spec, inputs=inputs)
    prepared = prepare(spec, SEED, inputs=inputs)
    assert check_full(prepared, c).verdict is VerdictCode.VALID
    one = c.copy()
    # int8: the smallest possible error; fp32: the smallest error the bound promises to catch
    one[70, 11] += 1 if dtype == "int8" else np.float32(2.01 * prepared.state.tau[70].max())
    row = c.copy()
    row[33] = row[34]
    for bad in (one, row, np.ascontiguousarray(c.T)):
        assert check_full(prepared, bad).verdict is VerdictCode.INVALID


def test_merkle__fast_hash_matches_eth_keccak_and_leaf_verification() -> None:
    row = bytes(range(256)) * 9
    assert leaf_hash(5, row) == keccak256(b"\x00" + (5).to_bytes(8, "big") + row)
    left, right = keccak256(b"l"), keccak256(b"r")
    assert node_hash(left, right) == keccak256(b"\x01" + left + right)
    data = bytes(range(7)) * 6 * 5  # 5 rows of 42 bytes
    tree = MerkleTree.from_rows(data, 5)
    for i in range(5):
        r = data[42 * i : 42 * (i + 1)]
        proof = tree.proof(i)
        assert verify_proof_leaf(tree.root, i, leaf_hash(i, r), proof, 5)
        assert verify_proof(tree.root, i, r, proof, 5)
        assert not verify_proof_leaf(tree.root, i, leaf_hash(i, r)[:31], proof, 5)
        assert not verify_proof_leaf(tree.root, (i + 1) % 5, leaf_hash(i, r), proof, 5)


@pytest.mark.parametrize("mode", ["full", "sampled"])
def test_int8_verdicts__compiled_and_blas_paths_identical(
    matmul_spec: Callable[..., Spec], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    spec = matmul_spec("int8", m=40, n=300, k=90, mode=mode, openings=9)
    inputs = load_inputs(spec)
    c = compute(spec, inputs=inputs)
    bad = c.copy()
    opened = challenge(spec, SEED).rows
    row = int(opened[4]) if mode == "sampled" else 4
    bad[row, 17] ^= 1 << 30  # d = ±2^30: the highest 2-adic valuation a bit flip here gives
    verdicts = []
    for use_jit in (True, False):
        if not use_jit:  # as without numba: both kernels fall back to BLAS / one hash at a time
            monkeypatch.setattr("oracle.compute.freivalds._jit", lambda *_: None)
            monkeypatch.setattr("oracle.compute.merkle._jit", lambda *_: None)
        prepared = prepare(spec, SEED, inputs=inputs)
        for result in (c, bad):
            if mode == "full":
                verdict = check_full(prepared, encode_result(result))  # read-only view
            else:
                tree = result_tree(spec, result)
                answer = answer_challenge(spec, result, SEED, tree=tree)
                verdict = check_sampled(prepared, answer, tree.root)
            verdicts.append((verdict.verdict, verdict.transcript_hash))
    assert [v for v, _ in verdicts] == [VerdictCode.VALID, VerdictCode.INVALID] * 2
    assert verdicts[:2] == verdicts[2:]


def test_int8_transcript__two_rounds_of_20_bits_mod_2_pow_64(
    matmul_spec: Callable[..., Spec],
) -> None:
    spec = matmul_spec("int8", m=8, n=8, k=8)
    prepared = prepare(spec, SEED)
    r = prepared.state.challenge.r
    assert r.dtype == np.int64 and r.shape == (8, 2) and r.min() >= 0 and r.max() < 1 << 20
    transcript = check_full(prepared, compute(spec)).transcript
    assert (transcript["bits"], transcript["rounds"], transcript["false_accept_log2"]) == (
        20,
        2,
        -40,
    )


def test_float32_interval__same_verdict_as_exact_comparison() -> None:
    rng = np.random.default_rng(9)
    big = float(np.finfo(np.float32).max)
    ref = np.concatenate(
        [rng.standard_normal(400).astype(np.float32), np.float32([big, -big, 0.0, 1e-45])]
    )
    tau = np.concatenate([np.abs(rng.standard_normal(400)) * 1e-4, [big, 1e300, 0.0, 1e-46]])
    lo, hi = _float32_interval(ref, tau)
    assert lo.dtype == hi.dtype == np.float32
    for i in range(ref.size):
        edges = [lo[i], hi[i]]
        with np.errstate(over="ignore"):
            steps = [np.nextafter(e, np.float32(d)) for e in edges for d in (-np.inf, np.inf)]
        probes = {*edges, *steps}
        for c in probes:
            if not np.isfinite(c):
                continue
            exact = abs(Fraction(float(c)) - Fraction(float(ref[i]))) <= Fraction(float(tau[i]))
            assert (lo[i] <= c <= hi[i]) == exact, (i, c)
