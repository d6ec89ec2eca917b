"""The fp32 error bound and the int8 exactness parameters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from oracle.compute.freivalds import (
    INT8_BITS,
    float64_product,
    int8_bits,
    int8_rounds,
    jit_warm_up,
    ring_product,
)
from oracle.compute.verify import check_full, prepare
from oracle.compute.work import load_inputs
from oracle.protocol.spec import Spec
from oracle.protocol.verdict import VerdictCode

SEED = bytes.fromhex("11" * 32)


def _mod64(x: np.ndarray) -> np.ndarray:
    """Python-integer array reduced to the int64 representative modulo 2^64."""
    return np.vectorize(lambda v: (int(v) + 2**63) % 2**64 - 2**63, otypes=[object])(x)


@pytest.mark.parametrize(("n", "k"), [(1, 1), (64, 64), (4096, 4096), (65536, 65536)])
def test_int8_bits__false_accept_at_most_2_pow_minus_40(n: int, k: int) -> None:
    bits = int8_bits(n, k)
    assert bits == INT8_BITS == 20
    # one residue class mod 2^(64 - v), v <= 31, meets [0, 2^b) at most once
    assert (1 << bits) <= 1 << 33
    assert bits * int8_rounds(bits) >= 40
    assert int8_rounds(bits) == 2


def test_int8_bits__k_beyond_2_pow_16__refused() -> None:
    with pytest.raises(ValueError, match="k ≤ 2\\^16"):
        int8_bits(4, (1 << 16) + 1)


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("dtype", [np.int8, np.int32])
def test_ring_product__matches_python_integers_mod_2_pow_64(dtype: type, jit: bool) -> None:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    m = rng.integers(int(info.min), int(info.max) + 1, size=(37, 300), dtype=np.int64).astype(dtype)
    m[0, :5] = info.min
    for r in (
        rng.integers(0, 1 << 20, size=(300, 2)),  # the challenge: int32 multiplies
        rng.integers(-(2**63), 2**63 - 1, size=(300, 3), dtype=np.int64),  # wraps
        rng.integers(-(2**20), 2**20, size=(300, 1)),  # negative, one round
    ):
        ref = _mod64(m.astype(object) @ r.astype(object))
        assert np.array_equal(ring_product(m, r, jit=jit).astype(object), ref)


def test_ring_product__compiled_and_blas_paths_identical_on_all_layouts() -> None:
    assert jit_warm_up()
    rng = np.random.default_rng(7)
    c = rng.integers(-(2**31), 2**31, size=(200, 4096), dtype=np.int64).astype(np.int32)
    r = rng.integers(0, 1 << 20, size=(4096, 2))
    compiled = ring_product(c, r)
    assert np.array_equal(compiled, ring_product(c, r, jit=False))
    read_only = np.frombuffer(c.tobytes(), dtype=np.int32).reshape(c.shape)
    assert np.array_equal(ring_product(read_only, r), compiled)
    strided = np.asfortranarray(c)  # not C-contiguous: the BLAS path
    assert np.array_equal(ring_product(strided, r), compiled)


def test_ring_product__bad_operands__refused() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        ring_product(np.zeros((2, 3), dtype=np.int32), np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="integer matrix"):
        ring_product(np.zeros((2, 3), dtype=np.float32), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(TypeError, match="int64-representable"):
        ring_product(np.zeros((2, 3), dtype=np.int32), np.zeros((3, 2), dtype=np.float64))


def test_float64_product__abs_alongside() -> None:
    rng = np.random.default_rng(1)
    m = rng.standard_normal((50, 30)).astype(np.float32)
    r = rng.standard_normal((30, 2))
    prod, absprod = float64_product(m, r, abs_r=np.abs(r))
    assert np.allclose(prod, m.astype(np.float64) @ r)
    assert np.allclose(absprod, np.abs(m.astype(np.float64)) @ np.abs(r))


def _blocked(a: np.ndarray, b: np.ndarray, block: int) -> np.ndarray:
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    for lo in range(0, a.shape[1], block):
        out += a[:, lo : lo + block] @ b[lo : lo + block]
    return out


def _sequential(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.float32)
    for j in range(a.shape[1] - 1, -1, -1):  # reversed, one rounding per term
        out += np.outer(a[:, j], b[j]).astype(np.float32)
    return out


@pytest.mark.parametrize(
    "method",
    [
        lambda a, b: (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32),
        lambda a, b: _blocked(a, b, 7),
        _sequential,
        lambda a, b: a @ b,
    ],
    ids=["float64-then-round", "blocked-7", "sequential-reversed", "plain"],
)
def test_fp32_bound__differently_ordered_honest_results_pass(
    matmul_spec: Callable[..., Spec], method: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> None:
    spec = matmul_spec("fp32", m=40, n=30, k=200)
    inputs = load_inputs(spec)
    c = np.ascontiguousarray(method(inputs.a, inputs.b), dtype=np.float32)
    assert check_full(prepare(spec, SEED, inputs=inputs), c).verdict is VerdictCode.VALID


def test_fp32_bound__perturbation_above_bound_fails_below_noise_passes(
    matmul_spec: Callable[..., Spec],
) -> None:
    spec = matmul_spec("fp32", m=40, n=30, k=200)
    inputs = load_inputs(spec)
    prepared = prepare(spec, SEED, inputs=inputs)
    c = inputs.a @ inputs.b
    tau = prepared.state.tau[11].max()
    above = c.copy()
    above[11, 4] += np.float32(2.01 * tau)
    assert check_full(prepared, above).verdict is VerdictCode.INVALID
    # one ulp changes are honest rounding differences and must pass
    ulp = c.copy()
    ulp[11, 4] = np.nextafter(ulp[11, 4], np.float32(np.inf))
    assert check_full(prepared, ulp).verdict is VerdictCode.VALID
