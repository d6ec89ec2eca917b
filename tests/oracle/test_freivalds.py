"""The fp32 error bound and the int8 exactness parameters."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from oracle.freivalds import EXACT_LIMIT, exact_product, float64_product, int8_bits, int8_rounds
from oracle.spec import Spec
from oracle.verdict import VerdictCode
from oracle.verify import check_full, prepare
from oracle.work import load_inputs

SEED = bytes.fromhex("11" * 32)


@pytest.mark.parametrize(("n", "k"), [(1, 1), (64, 64), (4096, 4096), (65536, 65536)])
def test_int8_bits__exact_and_false_accept_at_most_2_pow_minus_40(n: int, k: int) -> None:
    bits = int8_bits(n, k)
    top = (1 << bits) - 1
    assert n * 2**31 * top < EXACT_LIMIT
    assert k * n * 2**14 * top < EXACT_LIMIT
    assert bits * int8_rounds(bits) >= 40
    assert int8_bits(4096, 4096) == 10


def test_exact_product__matches_int64_reference() -> None:
    rng = np.random.default_rng(0)
    m = rng.integers(-(2**31), 2**31, size=(37, 300), dtype=np.int64).astype(np.int32)
    r = rng.integers(0, 1 << int8_bits(300, 1), size=(300, 3))
    ref = m.astype(object) @ r.astype(object)
    assert np.array_equal(exact_product(m, r.astype(np.float64)).astype(object), ref)


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
