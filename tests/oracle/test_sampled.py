"""Sampled mode: committed rows, y = C·r, openings, and the empirical detection probability."""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np
import pytest

from oracle.compute.merkle import MerkleTree
from oracle.compute.verify import check_sampled, prepare
from oracle.compute.work import answer_challenge, compute, result_tree
from oracle.protocol.results import SampledAnswer, decode_answer, encode_answer
from oracle.protocol.spec import Spec
from oracle.protocol.verdict import VerdictCode

SEED = bytes.fromhex("11" * 32)
DTYPES = ["int8", "fp32"]


def _decode(spec: Spec, raw: bytes, rounds: int) -> SampledAnswer:
    ydt = np.dtype("<i8") if spec.params.dtype == "int8" else np.dtype("<f4")
    return decode_answer(
        raw, rows=spec.params.m, rounds=rounds, y_dtype=ydt, row_bytes=spec.params.n * 4
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_sampled__honest__valid(matmul_spec: Callable[..., Spec], dtype: str) -> None:
    spec = matmul_spec(dtype, mode="sampled")
    c = compute(spec)
    tree = result_tree(spec, c)
    verdict = check_sampled(prepare(spec, SEED), answer_challenge(spec, c, SEED), tree.root)
    assert verdict.verdict is VerdictCode.VALID
    assert len(verdict.transcript["opened_rows"]) == 6


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_sampled__zero_matrix_with_forged_y__invalid(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    """The cheater commits to zeros but answers with the honest y = A(Br)."""
    spec = matmul_spec(dtype, mode="sampled")
    c = compute(spec)
    zeros = np.zeros_like(c)
    honest = _decode(
        spec, answer_challenge(spec, c, SEED), prepare(spec, SEED).state.challenge.r.shape[1]
    )
    forged_rows = _decode(spec, answer_challenge(spec, zeros, SEED), honest.y.shape[1])
    forged = SampledAnswer(honest.y, forged_rows.openings)
    verdict = check_sampled(
        prepare(spec, SEED), encode_answer(forged), result_tree(spec, zeros).root
    )
    assert verdict.verdict is VerdictCode.INVALID
    assert "opened row" in verdict.reason
    # and the consistent zero answer (y = 0·r) fails the y check
    zero_answer = answer_challenge(spec, zeros, SEED)
    verdict = check_sampled(prepare(spec, SEED), zero_answer, result_tree(spec, zeros).root)
    assert verdict.verdict is VerdictCode.INVALID


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_sampled__opened_row_wrong__invalid(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    spec = matmul_spec(dtype, mode="sampled")
    prepared = prepare(spec, SEED)
    row = int(prepared.state.challenge.rows[2])
    c = compute(spec)
    bad = c.copy()
    bad[row, 0] += 1
    # consistent cheater: y computed from the committed (wrong) matrix
    verdict = check_sampled(
        prepared, answer_challenge(spec, bad, SEED), result_tree(spec, bad).root
    )
    assert verdict.verdict is VerdictCode.INVALID
    assert row in verdict.transcript["bad_rows"]


def test_check_sampled__wrong_proof_or_rows_or_root__invalid(
    matmul_spec: Callable[..., Spec],
) -> None:
    spec = matmul_spec("int8", mode="sampled")
    c = compute(spec)
    tree = result_tree(spec, c)
    prepared = prepare(spec, SEED)
    rounds = prepared.state.challenge.r.shape[1]
    good = _decode(spec, answer_challenge(spec, c, SEED), rounds)
    other_root = result_tree(spec, c + 1).root
    assert check_sampled(prepared, good, other_root).verdict is VerdictCode.INVALID
    o = good.openings[0]
    broken = SampledAnswer(good.y, (type(o)(o.index, o.row, o.proof[::-1]), *good.openings[1:]))
    assert check_sampled(prepared, broken, tree.root).verdict is VerdictCode.INVALID
    shifted = SampledAnswer(good.y, good.openings[1:])
    assert check_sampled(prepared, shifted, tree.root).verdict is VerdictCode.INVALID
    # an answer for another seed
    stale = answer_challenge(spec, c, b"\x33" * 32)
    assert check_sampled(prepared, stale, tree.root).verdict is VerdictCode.INVALID


def test_check_sampled__garbage_answers__invalid(matmul_spec: Callable[..., Spec]) -> None:
    spec = matmul_spec("int8", mode="sampled")
    c = compute(spec)
    tree = result_tree(spec, c)
    prepared = prepare(spec, SEED)
    raw = answer_challenge(spec, c, SEED)
    for data in (
        b"",
        b"POUWANS1",
        raw[:-1],
        raw + b"\x00",
        b"x" * len(raw),
        raw[:12] + b"[" + raw[13:],
    ):
        assert check_sampled(prepared, data, tree.root).verdict is VerdictCode.INVALID
    float_y = _decode(spec, raw, prepared.state.challenge.r.shape[1])
    nan_y = SampledAnswer(np.full(float_y.y.shape, np.nan), float_y.openings)
    assert check_sampled(prepared, nan_y, tree.root).verdict is VerdictCode.INVALID


def test_check_sampled__fp32_nan_y__invalid(matmul_spec: Callable[..., Spec]) -> None:
    spec = matmul_spec("fp32", mode="sampled")
    c = compute(spec)
    prepared = prepare(spec, SEED)
    ans = _decode(spec, answer_challenge(spec, c, SEED), prepared.state.challenge.r.shape[1])
    y = ans.y.copy()
    y[0, 0] = np.nan
    verdict = check_sampled(prepared, SampledAnswer(y, ans.openings), result_tree(spec, c).root)
    assert verdict.verdict is VerdictCode.INVALID


def test_check_sampled__detection_probability_matches_formula(
    matmul_spec: Callable[..., Spec],
) -> None:
    """m = 64 rows, w = 8 wrong (f = 1/8), s = 4 openings: P[detect] = 1 − C(56,4)/C(64,4)."""
    m, w, s, trials = 64, 8, 4, 300
    spec = matmul_spec("int8", m=m, n=8, k=8, mode="sampled", openings=s)
    c = compute(spec)
    bad = c.copy()
    wrong = np.arange(0, m, m // w)
    bad[wrong, 0] += 1
    tree = MerkleTree.from_rows(memoryview(np.ascontiguousarray(bad)).cast("B"), m)
    detected = 0
    for t in range(trials):
        seed = t.to_bytes(32, "big")
        prepared = prepare(spec, seed)
        rounds = prepared.state.challenge.r.shape[1]
        # the best cheater: honest y = A(Br) (cheap to compute), committed wrong rows
        honest_y = _decode(spec, answer_challenge(spec, c, seed, tree=tree), rounds).y
        opened = _decode(spec, answer_challenge(spec, bad, seed, tree=tree), rounds).openings
        verdict = check_sampled(prepared, SampledAnswer(honest_y, opened), tree.root)
        detected += verdict.verdict is VerdictCode.INVALID
    p = 1 - comb(m - w, s) / comb(m, s)
    assert p >= 1 - (1 - w / m) ** s
    sd = (p * (1 - p) / trials) ** 0.5
    assert abs(detected / trials - p) < 4 * sd, (detected / trials, p)


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_sampled__chunked_rows__honest_valid_and_a_byte_in_any_chunk_invalid(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    """n = 512 entries of 4 bytes: 4 chunks per row, so the tree has 4m leaves, an opened row
    carries the proof above its subtree and a flipped byte in any chunk breaks it."""
    from oracle.compute.merkle import chunks_per_row
    from oracle.compute.verify import check_full

    spec = matmul_spec(dtype, m=24, n=512, k=28, mode="sampled")
    p = chunks_per_row(512, 4)
    assert p == 4
    c = compute(spec)
    tree = result_tree(spec, c)
    assert tree.rows == 24 * p
    prepared = prepare(spec, SEED)
    rounds = prepared.state.challenge.r.shape[1]
    good = _decode(spec, answer_challenge(spec, c, SEED), rounds)
    assert all(len(o.proof) == len(MerkleTree.from_rows(c.tobytes(), 24).proof(o.index))
               for o in good.openings)  # fmt: skip
    verdict = check_sampled(prepared, good, tree.root)
    assert verdict.verdict is VerdictCode.VALID, verdict.reason
    for chunk in range(p):
        o = good.openings[chunk]
        row = bytearray(o.row)
        row[chunk * 512 + 3] ^= 0x01  # the top byte of an entry of chunk `chunk`
        bad = tuple(type(o)(x.index, bytes(row), x.proof) if x is o else x for x in good.openings)
        verdict = check_sampled(prepared, SampledAnswer(good.y, bad), tree.root)
        assert verdict.verdict is VerdictCode.INVALID
        assert f"Merkle proof of row {o.index}" in verdict.reason
    # the plain row tree's root is another commitment
    plain = MerkleTree.from_rows(c.tobytes(), 24).root
    assert check_sampled(prepared, good, plain).verdict is VerdictCode.INVALID
    full = prepare(matmul_spec(dtype, m=24, n=512, k=28), SEED)
    assert check_full(full, c, expected_root=tree.root).verdict is VerdictCode.VALID
    assert check_full(full, c, expected_root=plain).verdict is VerdictCode.INVALID
