"""Soundness and completeness of matmul verification in full mode (would catch a lazy verifier)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.compute.keccak_inputs import keccak_matmul_inputs
from oracle.compute.rng import generate_tensor
from oracle.compute.verify import check_full, check_sampled, prepare
from oracle.compute.work import answer_challenge, compute, load_inputs, result_root, result_tree
from oracle.protocol.canonical import canonical_json
from oracle.protocol.hashing import keccak256
from oracle.protocol.results import encode_result
from oracle.protocol.spec import Spec, parse_spec
from oracle.protocol.verdict import VerdictCode, witness_of

SEED = bytes.fromhex("11" * 32)

DTYPES = ["int8", "fp32"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__honest__valid(matmul_spec: Callable[..., Spec], dtype: str) -> None:
    spec = matmul_spec(dtype)
    c = compute(spec)
    verdict = check_full(prepare(spec, SEED), encode_result(c), expected_root=result_root(spec, c))
    assert verdict.verdict is VerdictCode.VALID
    assert verdict.transcript["bad_row_count"] == 0


def test_check_full__int8__is_exact_integer_product(matmul_spec: Callable[..., Spec]) -> None:
    spec = matmul_spec("int8", m=9, n=7, k=2500)  # k > 1024: several exact fp32 blocks
    inputs = load_inputs(spec)
    c = compute(spec, inputs=inputs)
    assert np.array_equal(c, inputs.a.astype(np.int64) @ inputs.b.astype(np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__one_wrong_element__invalid(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    spec = matmul_spec(dtype)
    c = compute(spec)
    prepared = prepare(spec, SEED)
    bad = c.copy()
    bad[5, 3] += 1 if dtype == "int8" else np.float32(0.25)
    verdict = check_full(prepared, bad)
    assert verdict.verdict is VerdictCode.INVALID
    assert verdict.transcript["bad_rows"] == [5]


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__one_wrong_row__invalid(matmul_spec: Callable[..., Spec], dtype: str) -> None:
    spec = matmul_spec(dtype)
    c = compute(spec)
    bad = c.copy()
    bad[7] = bad[8]
    verdict = check_full(prepare(spec, SEED), bad)
    assert verdict.verdict is VerdictCode.INVALID
    assert 7 in verdict.transcript["bad_rows"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__transposed__invalid(matmul_spec: Callable[..., Spec], dtype: str) -> None:
    spec = matmul_spec(dtype, m=16, n=16, k=16)
    c = compute(spec)
    verdict = check_full(prepare(spec, SEED), np.ascontiguousarray(c.T))
    assert verdict.verdict is VerdictCode.INVALID


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__result_of_other_input_seed__invalid(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    spec = matmul_spec(dtype, seed=7)
    other = compute(matmul_spec(dtype, seed=8))
    assert check_full(prepare(spec, SEED), other).verdict is VerdictCode.INVALID


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__zero_matrix__invalid(matmul_spec: Callable[..., Spec], dtype: str) -> None:
    spec = matmul_spec(dtype)
    c = np.zeros_like(compute(spec))
    assert check_full(prepare(spec, SEED), c).verdict is VerdictCode.INVALID


def test_check_full__int8__low_bit_and_sign_bit_flips__invalid(
    matmul_spec: Callable[..., Spec],
) -> None:
    spec = matmul_spec("int8")
    c = compute(spec)
    prepared = prepare(spec, SEED)
    for flip in (np.int32(1), np.int32(-(2**31))):
        bad = c.copy()
        bad[0, 0] ^= flip
        assert check_full(prepared, bad).verdict is VerdictCode.INVALID


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_check_full__fp32_non_finite__invalid(
    matmul_spec: Callable[..., Spec], value: float
) -> None:
    spec = matmul_spec("fp32")
    c = compute(spec)
    c[2, 2] = value
    assert check_full(prepare(spec, SEED), c).verdict is VerdictCode.INVALID


def test_check_full__float_result_for_int_job__invalid(matmul_spec: Callable[..., Spec]) -> None:
    """A worker serving float32 bits (even NaN/Inf) for an int8 job never passes."""
    spec = matmul_spec("int8")
    prepared = prepare(spec, SEED)
    c = compute(spec).astype(np.float32)
    c[0, 0] = np.nan
    c[1, 1] = np.inf
    assert check_full(prepared, c).verdict is VerdictCode.INVALID  # wrong dtype
    assert check_full(prepared, c.tobytes()).verdict is VerdictCode.INVALID  # reinterpreted


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_full__wrong_size_or_garbage__invalid(
    matmul_spec: Callable[..., Spec], dtype: str
) -> None:
    spec = matmul_spec(dtype)
    prepared = prepare(spec, SEED)
    raw = encode_result(compute(spec))
    for data in (raw[:-1], raw + b"\x00", b"", b"garbage!" * (len(raw) // 8)):
        verdict = check_full(prepared, data)
        assert verdict.verdict is VerdictCode.INVALID, len(data)
    wrong_shape = compute(spec).reshape(-1)
    assert check_full(prepared, wrong_shape).verdict is VerdictCode.INVALID


def test_check_full__root_mismatch__invalid(matmul_spec: Callable[..., Spec]) -> None:
    spec = matmul_spec("int8")
    c = compute(spec)
    verdict = check_full(prepare(spec, SEED), c, expected_root=b"\x00" * 32)
    assert verdict.verdict is VerdictCode.INVALID
    assert "committed root" in verdict.reason


@pytest.mark.parametrize("dtype", DTYPES)
def test_verdict__deterministic(matmul_spec: Callable[..., Spec], dtype: str) -> None:
    spec = matmul_spec(dtype)
    c = compute(spec)
    bad = c.copy()
    bad[1, 1] += 1
    for result in (c, bad):
        v1 = check_full(prepare(spec, SEED), encode_result(result))
        v2 = check_full(prepare(spec, SEED), result.copy())
        assert v1 == v2 and v1.transcript_hash == v2.transcript_hash
    other_seed = check_full(prepare(spec, b"\x22" * 32), c)
    assert other_seed.verdict is VerdictCode.VALID
    assert other_seed.transcript_hash != check_full(prepare(spec, SEED), c).transcript_hash


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dtype=st.sampled_from(DTYPES),
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    k=st.integers(1, 40),
    input_seed=st.integers(0, 2**64 - 1),
    challenge=st.binary(min_size=32, max_size=32),
    data=st.data(),
)
def test_check_full__property__honest_valid_and_any_change_invalid(
    matmul_spec: Callable[..., Spec],
    dtype: str,
    m: int,
    n: int,
    k: int,
    input_seed: int,
    challenge: bytes,
    data: st.DataObject,
) -> None:
    spec = matmul_spec(dtype, m=m, n=n, k=k, seed=input_seed)
    c = compute(spec)
    prepared = prepare(spec, challenge)
    assert check_full(prepared, c).verdict is VerdictCode.VALID
    i = data.draw(st.integers(0, m - 1))
    j = data.draw(st.integers(0, n - 1))
    bad = c.copy()
    if dtype == "int8":
        bad[i, j] += data.draw(st.integers(-(2**20), 2**20).filter(bool))
    else:
        bound = prepared.state.tau[i].max()
        bad[i, j] += np.float32(3 * bound + 1e-30) * data.draw(st.sampled_from([1, -1]))
    assert check_full(prepared, bad).verdict is VerdictCode.INVALID


@pytest.mark.parametrize("dtype", DTYPES)
def test_keccak_inputs__version_2__the_keccak_stream__verified_like_version_1(dtype: str) -> None:
    """A seeded matmul of spec version 2 computes and verifies on the keccak stream's inputs
    (the ones a dispute contract regenerates), not SFC64's: honest VALID in both modes, one
    wrong entry INVALID."""
    body = {"kind": "matmul", "dtype": dtype, "m": 12, "n": 10, "k": 33, "inputs": {"seed": 9}}
    spec = parse_spec({**body, "version": 2, "verify": {"mode": "full"}})
    sampled = parse_spec({**body, "version": 2, "verify": {"mode": "sampled", "openings": 12}})
    inputs = load_inputs(spec)
    a, b = keccak_matmul_inputs(9, 12, 10, 33, dtype)  # type: ignore[arg-type]
    assert np.array_equal(inputs.a, a) and np.array_equal(inputs.b, b)
    assert not np.array_equal(inputs.a, generate_tensor(9, 0, (12, 33), dtype))
    c = compute(spec, inputs=inputs)
    good = check_full(prepare(spec, SEED), encode_result(c), expected_root=result_root(spec, c))
    assert good.verdict is VerdictCode.VALID
    wrong = c.copy()
    wrong[4, 7] += 1
    bad = check_full(
        prepare(spec, SEED), encode_result(wrong), expected_root=result_root(spec, wrong)
    )
    assert bad.verdict is VerdictCode.INVALID
    tree = result_tree(sampled, c)
    answer = answer_challenge(sampled, c, SEED, tree=tree)
    assert check_sampled(prepare(sampled, SEED), answer, tree.root).verdict is VerdictCode.VALID
    tree = result_tree(sampled, wrong)
    answer = answer_challenge(sampled, wrong, SEED, tree=tree)
    assert check_sampled(prepare(sampled, SEED), answer, tree.root).verdict is VerdictCode.INVALID


@pytest.mark.parametrize(("dtype", "version"), [("int8", 1), ("int8", 2), ("fp32", 2)])
def test_check_full__invalid__names_the_first_refutable_entry_in_its_transcript_hash(
    dtype: str, version: int
) -> None:
    """An INVALID full-mode verdict names its witness entry in the clear (the last 16 bytes of
    its transcript hash, `Disputes._witness`): the first entry, in the first bad row, that the
    on-chain entry rule refutes; the worker can overturn the verdict on-chain if it is right."""
    body = {"kind": "matmul", "dtype": dtype, "m": 12, "n": 10, "k": 33, "inputs": {"seed": 4}}
    spec = parse_spec({**body, "version": version, "verify": {"mode": "full"}})
    c = compute(spec)
    wrong = c.copy()
    wrong[7, 6] += 1 if dtype == "int8" else np.float32(0.25)
    wrong[7, 2] += 3 if dtype == "int8" else np.float32(-0.5)
    wrong[9, 0] += 1 if dtype == "int8" else np.float32(0.25)
    verdict = check_full(prepare(spec, SEED), encode_result(wrong))
    assert verdict.verdict is VerdictCode.INVALID
    assert verdict.transcript["witness"] == [7, 2]
    assert witness_of(verdict.transcript_hash) == (7, 2)
    body_hash = keccak256(canonical_json(verdict.transcript))
    assert verdict.transcript_hash[:16] == body_hash[:16] != verdict.transcript_hash[16:]


def test_check_full__invalid_fp32_on_sfc64_inputs__names_no_witness() -> None:
    """fp32 on SFC64 inputs (not the 2^-23 grid the contract's rule needs): no witness, the
    plain transcript hash (the verdict stays the oracles' word)."""
    body = {"kind": "matmul", "dtype": "fp32", "m": 12, "n": 10, "k": 33, "inputs": {"seed": 4}}
    spec = parse_spec({**body, "version": 1, "verify": {"mode": "full"}})
    wrong = compute(spec)
    wrong[3, 3] += np.float32(1.0)
    verdict = check_full(prepare(spec, SEED), encode_result(wrong))
    assert verdict.verdict is VerdictCode.INVALID and "witness" not in verdict.transcript
    assert verdict.transcript_hash == keccak256(canonical_json(verdict.transcript))
