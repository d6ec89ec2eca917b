"""oracle.compute.refute: the entry a watcher puts on-chain is one the contract's rule refutes,
found without computing the product; a right product (or an fp32 one off only within the
honest rounding bound) has none."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from oracle.compute.keccak_inputs import keccak_matmul_inputs
from oracle.compute.refute import fp32_outside, refutable_entry


def _int8(m: int, n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    return a, b, a.astype(np.int32) @ b.astype(np.int32)


def test_int8__right_product__none() -> None:
    a, b, c = _int8(40, 30, 200)
    assert refutable_entry(a, b, c) is None


@pytest.mark.parametrize(("i", "j", "delta"), [(0, 0, 1), (39, 29, -1), (17, 3, 2**20)])
def test_int8__one_wrong_entry__found(i: int, j: int, delta: int) -> None:
    a, b, c = _int8(40, 30, 200)
    c[i, j] += delta
    assert refutable_entry(a, b, c) == (i, j)


def test_int8__many_wrong_entries__one_that_is_wrong() -> None:
    a, b, c = _int8(64, 64, 64, seed=3)
    right = c.copy()
    rng = np.random.default_rng(4)
    for _ in range(50):
        c[rng.integers(64), rng.integers(64)] += int(rng.integers(1, 100))
    i, j = refutable_entry(a, b, c)  # type: ignore[misc]
    assert c[i, j] != right[i, j]


def test_fp32__numpy_product__none_and_a_wrong_entry_found() -> None:
    a, b = keccak_matmul_inputs(11, 24, 20, 300, "fp32")
    c = (a @ b).astype(np.float32)
    assert refutable_entry(a, b, c) is None
    c[5, 7] += np.float32(0.01)
    assert refutable_entry(a, b, c) == (5, 7)
    c[5, 7] = np.nan
    assert refutable_entry(a, b, c) == (5, 7)


def test_fp32__an_error_within_the_honest_bound__is_no_refutation() -> None:
    a, b = keccak_matmul_inputs(12, 8, 8, 64, "fp32")
    c = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    c[2, 3] = np.nextafter(c[2, 3], np.float32(np.inf))  # one ulp: honest summations do this
    assert refutable_entry(a, b, c) is None


def test_fp32_outside__the_bound_exactly() -> None:
    # e = 2^46 (the value 1.0), s = 2^46, k = 1: bound = 2^46 / (2^24 - 1) units of 2^-46
    k, exact, mag = 1, 2**46, 2**46
    bound = Fraction(k * mag, 2**24 - k)
    inside = float(np.float32(1.0 + float(bound) * 0.9 / 2**46))
    outside = float(np.float32(1.0 + 4 * float(bound) / 2**46))
    assert not fp32_outside(1.0, exact, mag, k)
    assert not fp32_outside(inside, exact, mag, k)
    assert fp32_outside(outside, exact, mag, k)
    assert fp32_outside(float("inf"), exact, mag, k)
    assert fp32_outside(float("nan"), exact, mag, k)


def test_shape_mismatch__raises() -> None:
    a, b, c = _int8(4, 3, 5)
    with pytest.raises(ValueError, match="C is"):
        refutable_entry(a, b, c[:, :2])
