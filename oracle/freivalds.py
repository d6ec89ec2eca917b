"""Freivalds' check: verify C = A·B with matrix–vector products instead of a matrix product.

For random vectors r (the columns of R, one per *round*) the verifier compares C·r with
A·(B·r). B·r and A·(B·r) need only the inputs and the challenge seed, so they are computed
before the result arrives (``prepare``); after it arrives only C·R remains — one pass over C.

**int8 inputs, exact int32 results (false accept ≤ 2^-40).**
Work in the field F_p, p = 2^61 − 1. Let D = C − A·B. The true product fits int32 (|A·B|_ij ≤
k·2^14 < 2^31 since k ≤ 2^16), so every entry of D is an integer with |d| < 2^32 < p and
D ≠ 0 over Z ⇔ D ≠ 0 over F_p. Draw each entry of r independently and uniformly from
S = {0, 1, …, 2^b − 1} ⊂ F_p. If row i of D is non-zero, pick j with d_ij ≠ 0 and fix every
other entry of r: d_i·r = 0 holds for at most one value of r_j, so
P[d_i·r = 0] ≤ 1/|S| = 2^-b (Schwartz–Zippel for a degree-1 polynomial). With ``rounds``
independent vectors, P[accept a wrong C] ≤ 2^(-b·rounds); we take rounds = ⌈40 / b⌉.

Exactness without modular reductions: all quantities stay below 2^53 in magnitude, so float64
BLAS computes them exactly (every partial sum is an integer representable in float64, in any
summation order), and an exact integer is its own representative in F_p (|x| < 2^53 < p/2).
The bounds (any int32 C, even a forged one, int8 A and B):

* C·r:      |Σ_j c_ij r_j| ≤ n · 2^31 · (2^b − 1)          < 2^53
* A·(B·r):  |Σ_j a_ij Σ_l b_jl r_l| ≤ k · n · 2^14 · (2^b − 1) < 2^53

so b = min(20, largest b satisfying both). For n = k = 4096: b = 10, rounds = 4,
false accept ≤ 2^-40. Equality is then tested on integers (int64), never on floats.

*Cost.* C·R is one pass over C: each thread converts a block of rows (≤ 512 KiB as float64,
in cache) and multiplies it by R with a GEMM small enough that OpenBLAS keeps it on one thread
(m·n·k ≤ 2^18), so the pool's threads, not OpenBLAS's, use the cores. Cheaper fp32 routes are
not exact and are not used: an honest entry can reach k·2^14 = 2^26 > 2^24 (not every such
integer is a float32), and any fp32 accumulation of n ≥ 2^12 terms of that size overflows the
2^24 range where fp32 sums are exact, whatever the split of C or the width of r; integer
numpy products (no BLAS) measured 2x slower than convert + DGEMM.

**fp32 (error bound).** Let u = 2^-24 and γ_j = j·u / (1 − j·u) (Higham, *Accuracy and
Stability of Numerical Algorithms*, §3.1). An honest Ĉ = fl(A·B) computed in fp32 (or wider)
with *any* summation order, blocking or FMA satisfies |Ĉ − A·B| ≤ γ_k |A||B| entrywise. The
oracle computes ŷ = fl32(Ĉ·r) (|ŷ − Ĉr| ≤ γ_n |Ĉ||r|; :func:`fp32_matvec`: one pass over Ĉ in
place, no conversion or copy, any summation order) and ẑ = A·(B·r) in float64. With
|Ĉ| ≤ (1 + γ_k)|A||B| and t = |A|(|B||r|) (computed in float64 alongside ẑ),

    |ŷ − ẑ| ≤ τ := [(γ_k + γ_n (1 + γ_k) + g) (1 + g)] · t̂ + (n·k + n + 1) · 2^-147,
    g = γ_{n+k} in float64 (u = 2^-53),

the first term covering the worker's product, the oracle's C·r, the float64 evaluation of ẑ
and of t̂, the last one fp32 underflow (≤ 2^-150 per operation, |r| ≤ 2). Every honest result
passes. Entries of r are ±(1 + f), f uniform on the 2^23-point grid of [0, 1), random sign: a
single entry of Ĉ perturbed by |δ| > 2τ_i always fails (the residual moves by |δ r_j| ≥ |δ|),
and any row containing an entry with |d_ij| > τ_i is missed by one round with probability
≤ 1/2 (flipping the sign of r_j moves d_i·r by 2|d_ij r_j| > 2τ_i, so at most one of the two
signs lands in [−τ_i, τ_i]); rounds are independent. NaN or ±Inf anywhere in Ĉ makes ŷ
non-finite and the comparison false.
"""

from __future__ import annotations

import math

import numpy as np

from oracle._parallel import parallel_map, workers

__all__ = [
    "EXACT_LIMIT",
    "FALSE_ACCEPT_LOG2",
    "exact_product",
    "float64_product",
    "fp32_abs_slack",
    "fp32_matvec",
    "fp32_row_reference",
    "fp32_tau_coefficient",
    "gamma",
    "int8_bits",
    "int8_rounds",
]

EXACT_LIMIT = 1 << 53
FALSE_ACCEPT_LOG2 = 40
MAX_BITS = 20
_BLOCK_BYTES = 1 << 19
# OpenBLAS runs a GEMM on one thread when m·n·k ≤ 65536·4; blocks stay under it so that our own
# row-range threads (not OpenBLAS's) use the cores, without oversubscription or lock traffic.
_GEMM_SINGLE_THREAD = 1 << 18
# fp32 GEMV row blocks: 1 MiB of C at n = 4096, L2-resident while every round reads it.
_GEMV_BLOCK_BYTES = 1 << 20


def gamma(j: int, u: float) -> float:
    """γ_j = j·u / (1 − j·u), the relative error bound of a j-term float dot product."""
    if j * u >= 1:
        raise ValueError("j*u must be < 1")
    return j * u / (1 - j * u)


def int8_bits(n: int, k: int) -> int:
    """Bits b of each Freivalds vector entry for an int8 job so that everything is exact."""
    b = MAX_BITS
    while b > 0:
        top = (1 << b) - 1
        if n * (1 << 31) * top < EXACT_LIMIT and k * n * (1 << 14) * top < EXACT_LIMIT:
            return b
        b -= 1
    raise ValueError(f"no exact bit width for n={n}, k={k}")  # pragma: no cover


def int8_rounds(bits: int) -> int:
    """Rounds so that 2^(-bits·rounds) ≤ 2^-40."""
    return math.ceil(FALSE_ACCEPT_LOG2 / bits)


def fp32_tau_coefficient(k: int, n: int) -> float:
    """The factor multiplying t̂ = |A|(|B||r|) in the fp32 bound τ (module docstring)."""
    gk = gamma(k, 2.0**-24)
    gn = gamma(n, 2.0**-24)
    g64 = gamma(n + k, 2.0**-53)
    return (gk + gn * (1 + gk) + g64) * (1 + g64)


def fp32_abs_slack(k: int, n: int) -> float:
    """The absolute (underflow) term of τ."""
    return (n * k + n + 1) * 2.0**-147


def _row_ranges(rows: int, cols: int, rounds: int = 1) -> tuple[int, list[tuple[int, int]]]:
    block = max(
        1,
        min(rows, _BLOCK_BYTES // (8 * max(cols, 1)), _GEMM_SINGLE_THREAD // max(cols * rounds, 1)),
    )
    parts = workers() if rows >= 4 * block else 1
    step = -(-rows // parts)
    return block, [(lo, min(rows, lo + step)) for lo in range(0, rows, step)]


def float64_product(
    m: np.ndarray, r: np.ndarray, *, abs_r: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (m·r, |m|·abs_r) computed in float64 (the second only if ``abs_r`` is given).

    ``m`` (2-D, any real dtype, any strides) is converted to float64 a cache-sized block of rows
    at a time (never materialized whole), and row ranges run on the thread pool. The result
    does not depend on the number of threads: each block is an independent BLAS call.
    """
    if m.ndim != 2 or r.ndim != 2 or m.shape[1] != r.shape[0]:
        raise ValueError(f"shape mismatch {m.shape} · {r.shape}")
    rows, cols = m.shape
    rt = np.ascontiguousarray(r.T, dtype=np.float64)
    rt_abs = np.ascontiguousarray(abs_r.T, dtype=np.float64) if abs_r is not None else None
    out_t = np.empty((r.shape[1], rows), dtype=np.float64)
    abs_t = np.empty((r.shape[1], rows), dtype=np.float64) if abs_r is not None else None
    block, ranges = _row_ranges(rows, cols, r.shape[1])

    def run(span: tuple[int, int]) -> None:
        lo, hi = span
        buf = np.empty((block, cols), dtype=np.float64)
        for i in range(lo, hi, block):
            j = min(i + block, hi)
            b = buf[: j - i]
            np.copyto(b, m[i:j], casting="unsafe")
            np.matmul(rt, b.T, out=out_t[:, i:j])
            if abs_t is not None and rt_abs is not None:
                np.abs(b, out=b)
                np.matmul(rt_abs, b.T, out=abs_t[:, i:j])

    parallel_map(run, ranges)
    return out_t.T, (abs_t.T if abs_t is not None else None)


def exact_product(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    """m·r as exact int64, for integer-valued m and r whose products stay below 2^53.

    The caller guarantees Σ_j |m_ij| |r_jl| < 2^53 (see :func:`int8_bits`); then float64
    arithmetic is exact in any order and the conversion to int64 loses nothing.
    """
    prod, _ = float64_product(m, r)
    return prod.astype(np.int64)


def fp32_matvec(c: np.ndarray, rt: np.ndarray) -> np.ndarray:
    """fl32(C·R) for float32 C (m×n) and R given transposed (``rt``: rounds × n, float32).

    One pass over C: a row block of C (about 1 MiB) is loaded once and every round's GEMV reads
    it from cache; no conversion or copy of C is made. Any summation order is allowed by the
    fp32 bound (γ_n), so OpenBLAS may thread each GEMV. Returns an (m × rounds) float32 array
    (a transposed view). Non-finite entries of C propagate to the output.
    """
    if c.ndim != 2 or rt.ndim != 2 or c.shape[1] != rt.shape[1]:
        raise ValueError(f"shape mismatch {c.shape} · {rt.shape}.T")
    if c.dtype != np.float32 or rt.dtype != np.float32:
        raise TypeError("fp32_matvec needs float32 operands")
    rows, cols = c.shape
    rounds = rt.shape[0]
    out_t = np.empty((rounds, rows), dtype=np.float32)
    block = max(1, _GEMV_BLOCK_BYTES // (4 * max(cols, 1)))
    with np.errstate(invalid="ignore", over="ignore"):
        for lo in range(0, rows, block):
            hi = min(rows, lo + block)
            part = c[lo:hi]
            for q in range(rounds):
                np.matmul(part, rt[q], out=out_t[q, lo:hi])
    return out_t.T


def fp32_row_reference(
    a_rows: np.ndarray, b: np.ndarray, *, k_block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """(fl32(A_I·B), bound) for the opened rows of an fp32 job: |c_i − ref_i| ≤ bound_i elementwise.

    Computed with fp32 GEMMs over contiguous memory only (A_I is s × k, B is k × n row-major),
    so ``prepare`` never reads B with a stride. Let S = |A_I|·|B| (exact), u = 2^-24,
    γ = γ_k(u), η = k·2^-150 (fp32 underflow: each of the k products loses ≤ 2^-150 absolutely,
    additions of subnormals are exact). Then, for any summation order, blocking or FMA:

    * the honest worker's c_i and our ref_i both satisfy |x − A_i·B| ≤ γ·S + η, so
      |c_i − ref_i| ≤ 2γ·S + 2η;
    * Q = fl32(|A_I|·|B|) (accumulated in fp32 over k blocks, a sum of k non-negative terms in
      some order) satisfies Q ≥ (1 − γ)·S − η, i.e. S ≤ (Q + η) / (1 − γ).

    Hence bound = [2γ/(1 − γ)·(Q + η) + 2η]·(1 + 2^-40), evaluated in float64 (a few
    operations, relative error ≪ 2^-40), which also covers the float64 rounding of the
    comparison |c_i − ref_i| (relative 2^-53). Returns (ref as float32, bound as float64).
    """
    s, k = a_rows.shape
    if b.shape[0] != k:
        raise ValueError(f"shape mismatch {a_rows.shape} · {b.shape}")
    a32 = np.ascontiguousarray(a_rows, dtype=np.float32)
    b32 = b if b.dtype == np.float32 else b.astype(np.float32)
    ref = np.matmul(a32, b32)
    a_abs = np.abs(a32)
    q = np.zeros((s, b.shape[1]), dtype=np.float32)
    buf = np.empty((min(k_block, max(k, 1)), b.shape[1]), dtype=np.float32)
    for lo in range(0, k, k_block):
        hi = min(k, lo + k_block)
        blk = buf[: hi - lo]
        np.abs(b32[lo:hi], out=blk)
        q += np.matmul(a_abs[:, lo:hi], blk)
    g = gamma(k, 2.0**-24)
    eta = k * 2.0**-150
    bound = (2 * g / (1 - g) * (q.astype(np.float64) + eta) + 2 * eta) * (1 + 2.0**-40)
    return ref, bound
