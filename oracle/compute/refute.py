"""Finding the entry that refutes a wrong matrix product on-chain (``contracts/Disputes.vy``).

A matrix product's entries are independent dot products, so a wrong committed C is refuted by
one entry C[i][j] that breaks the contract's entry rule (``contracts/modules/entry_check.vy``):

* ``int8``: C[i][j] != dot(A[i, :], B[:, j]), exactly;
* ``fp32``: C[i][j] is outside the error bound of every fp32 summation order:
  |c − e| · (2^24 − k) > k · s in units of 2^-46, where e = Σ a·b exactly and s = Σ |a·b|
  (every input is a multiple of 2^-23, so e and s are integers in those units). NaN and
  infinities are outside.

:func:`refutable_entry` finds one without computing the product: one Freivalds pass
(y = C·r against z = A·(B·r), O(mn + nk + mk)) ranks the rows by how far y_i is from z_i,
and the first rows of that ranking are recomputed exactly, O(nk) each, until an entry breaks
the rule. For int8 a wrong row differs in y_i from z_i except with probability 2^-64 per row
(arithmetic mod 2^64), so the first ranked row holds a refutable entry. For fp32 a wrong
entry that the rule cannot refute (within the honest rounding bound) is not a refutation:
the function returns None when no checked row holds an entry outside the bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

__all__ = ["entry_refutable", "fp32_outside", "refutable_entry", "witness_entry"]

#: fp32 inputs are multiples of 2^-23 (the keccak grid; blob jobs are not disputed for fp32).
_GRID = 2**23
#: Rows recomputed exactly, at most, when looking for an fp32 refutation.
FP32_ROWS_CHECKED = 8


def fp32_outside(c: float, exact: int, mag: int, k: int) -> bool:
    """The contract's rule (``entry_check._fp32_outside``): whether the float32 ``c`` lies
    outside the bound of every fp32 summation of a k-term dot product whose exact value is
    ``exact`` · 2^-46 and whose products' magnitudes sum to ``mag`` · 2^-46."""
    value = float(np.float32(c))
    if not np.isfinite(value):
        return True
    diff = abs(Fraction(value) * 2**46 - exact)
    return diff * (2**24 - k) > k * mag


def _int8_row(a_row: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Exact: |Σ a·b| <= 4096 · 2^14 = 2^26, far inside float64's 53 bits.
    return (a_row.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def _fp32_row(a_row: np.ndarray, b: np.ndarray) -> tuple[list[int], list[int]]:
    """Exact Σ a·b and Σ |a·b| of one row of A with every column of B, in units of 2^-46."""
    va = np.rint(a_row.astype(np.float64) * _GRID).astype(np.int64)
    vb = np.rint(b.astype(np.float64) * _GRID).astype(np.int64)
    # int64 holds each product (< 2^46) and any sum of up to 2^17 of them.
    exact = va @ vb
    mag = np.abs(va) @ np.abs(vb)
    return [int(x) for x in exact], [int(x) for x in mag]


def _first_refutable(a: np.ndarray, b: np.ndarray, c: np.ndarray, i: int) -> int | None:
    """The first column j at which the contract's entry rule refutes C[i][j] (int8: unequal
    to the exact product; fp32: outside the bound), or None."""
    if c.dtype == np.int32:
        wrong = np.flatnonzero(c[i].astype(np.int64) != _int8_row(a[i], b))
        return int(wrong[0]) if wrong.size else None
    exact, mag = _fp32_row(a[i], b)
    k = a.shape[1]
    return next(
        (j for j in range(c.shape[1]) if fp32_outside(float(c[i, j]), exact[j], mag[j], k)),
        None,
    )


def refutable_entry(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, *, seed: int = 0
) -> tuple[int, int] | None:
    """(i, j) of an entry of ``c`` that the contract refutes as a product of ``a`` (m×k)
    and ``b`` (k×n), or None if none is found (int8: C is right except with probability
    2^-64; fp32: no checked row holds an entry outside the bound)."""
    m, n = a.shape[0], b.shape[1]
    if c.shape != (m, n):
        raise ValueError(f"C is {c.shape}, expected {(m, n)}")
    rng = np.random.default_rng(seed)
    if c.dtype == np.int32:
        r = rng.integers(-(2**62), 2**62, n, dtype=np.int64)
        with np.errstate(over="ignore"):
            y = c.astype(np.int64) @ r
            z = a.astype(np.int64) @ (b.astype(np.int64) @ r)
        return witness_entry(a, b, c, np.flatnonzero(y != z).tolist(), fp32_rule=False)
    rf = rng.standard_normal(n)
    with np.errstate(all="ignore"):
        yf = c.astype(np.float64) @ rf
        zf = a.astype(np.float64) @ (b.astype(np.float64) @ rf)
        gap = np.abs(yf - zf)
    gap[~np.isfinite(gap)] = np.inf
    rows = np.argsort(-gap, kind="stable")[:FP32_ROWS_CHECKED].tolist()
    return witness_entry(a, b, c, rows, fp32_rule=True)


def witness_entry(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, rows: Sequence[int], *, fp32_rule: bool
) -> tuple[int, int] | None:
    """The first entry of ``c``, in ``rows`` (in the order given) then by column, that the
    contract's entry rule refutes: the witness an INVALID verdict names
    (:func:`oracle.protocol.verdict.make_verdict`), so the worker can overturn the verdict if
    that entry is in fact right. int8: the first entry unequal to the exact product; fp32
    (``fp32_rule``: inputs on the 2^-23 grid, the keccak stream) the first entry outside the
    bound; None if no row given holds one (fp32 without the rule: always None)."""
    if c.dtype != np.int32 and not fp32_rule:
        return None
    for i in rows:
        j = _first_refutable(a, b, c, int(i))
        if j is not None:
            return int(i), j
    return None


def entry_refutable(a: np.ndarray, b: np.ndarray, c: np.ndarray, i: int, j: int) -> bool:
    """Whether the contract's entry rule refutes C[i][j] (int8: unequal to the exact product;
    fp32: outside the bound, inputs on the 2^-23 grid)."""
    if c.dtype == np.int32:
        exact_row = _int8_row(a[i], b[:, j : j + 1])
        return int(c[i, j]) != int(exact_row[0])
    exact, mag = _fp32_row(a[i], b[:, j : j + 1])
    return fp32_outside(float(c[i, j]), exact[0], mag[0], a.shape[1])
