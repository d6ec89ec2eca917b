"""Freivalds' check: verify C = A·B with matrix–vector products instead of a matrix product.

For random vectors r (the columns of R, one per *round*) the verifier compares C·r with
A·(B·r). B·r and A·(B·r) need only the inputs and the challenge seed, so they are computed
before the result arrives (``prepare``); after it arrives only C·R remains — one pass over C.

**int8 inputs, exact int32 results (false accept ≤ 2^-40).**
Work in the ring Z/2^64 (wrapping 64-bit integers). Let D = C − A·B over Z. The true product
has |A·B|_ij ≤ k·2^14 ≤ 2^30 (k ≤ 2^16, the spec's limit), so it fits int32, and any int32 C,
even a forged one, gives |d_ij| ≤ 2^31 + 2^30 < 2^32. Draw each entry of r independently and
uniformly from S = {0, 1, …, 2^b − 1}, b = 20. The verifier computes y = C·r and z = A·(B·r)
modulo 2^64 (in any order: reduction mod 2^64 is a ring homomorphism from Z, so wrapping
arithmetic gives the same residue however the sums are grouped) and accepts iff y = z, i.e.
iff D·r ≡ 0 (mod 2^64). If row i of D is non-zero, pick j with d_ij ≠ 0 and write
d_ij = 2^v·u with u odd; v ≤ 31 since 0 < |d_ij| < 2^32. Fix every other entry of r: the
condition becomes d_ij·r_j ≡ t (mod 2^64) for a fixed t, which holds only for r_j in one
residue class modulo 2^(64−v) ≥ 2^33 (u is invertible mod 2^64), and S (2^b ≤ 2^33
consecutive integers) meets that class at most once: P[d_i·r ≡ 0] ≤ 2^-b (Schwartz–Zippel for
a degree-1 polynomial, over Z/2^64). With ``rounds`` independent vectors,
P[accept a wrong C] ≤ 2^(-b·rounds); b = 20 and rounds = 2 give 2^-40 for every shape the spec
allows. Equality is tested on the int64 representatives (two's complement) of the residues.

*Cost.* C·R is one pass over C. With numba present (:func:`ring_product`), a compiled loop
runs over chunks of rows, shared out to the calling thread and the pool: every int32 of C is
loaded once, sign-extended and multiplied by both rounds' r_j (which fit int32, so each
product is one exact 32×32→64-bit multiply), and summed in uint64 (numba gives unsigned
arithmetic defined wrap-around; signed int64 overflow would be undefined in LLVM). Four rows
go through the loop together: four memory streams keep more of C in flight than one, which
doubles the speed when C comes from DRAM. The kernels are compiled, or loaded from numba's
on-disk cache, by :func:`jit_warm_up`, which ``prepare`` calls, so no check after ``prepare``
ever compiles. Without numba (or for non-contiguous operands) the same residues come from
float64 BLAS: r is split into limbs of L bits (the top limb signed) so that every column
product stays below 2^53 in magnitude (cols · max|m| · (2^L − 1) < 2^53: exact in any
summation order), each column is computed by :func:`float64_product` (a cache-sized block of
C converted to float64, then a DGEMM small enough that OpenBLAS keeps it on one thread,
m·n·k ≤ 2^18), and the limbs are recombined with wrapping uint64 shifts and adds. Both paths
return identical integers.

Measured at n = m = k = 4096 on 2 shared cores, each call after a ``gc.collect()`` (as the
bench does; C then comes from DRAM): the compiled pass 2.2–3 ms (1.4 ms with C in cache),
the former convert + 4-column DGEMM 8–11 ms; integer numpy products (no BLAS) are 2x slower
still. Cheaper fp32 routes are not exact (an honest entry can reach k·2^14 = 2^26 > 2^24).
A range check |c_ij| ≤ k·2^14 fused into the float64 route would let b grow to 15 bits
(3 rounds instead of 4), but measured slower (one thread: 14.3 ms against 8.4 ms; a 3-column
DGEMM is no cheaper than a 4-column one, and the check is one more pass over each block);
modulo 2^64 needs no range check at all.

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
from typing import Any

import numpy as np

from oracle.compute.parallel import jit as _jit
from oracle.compute.parallel import parallel_for, parallel_map, workers

__all__ = [
    "EXACT_LIMIT",
    "FALSE_ACCEPT_LOG2",
    "INT8_BITS",
    "float64_product",
    "fp32_abs_slack",
    "fp32_matvec",
    "fp32_row_reference",
    "fp32_tau_coefficient",
    "gamma",
    "int8_bits",
    "int8_rounds",
    "jit_warm_up",
    "ring_product",
]

EXACT_LIMIT = 1 << 53
FALSE_ACCEPT_LOG2 = 40
INT8_BITS = 20
# |d_ij| < 2^32 (module docstring) needs |A·B|_ij ≤ k·2^14 ≤ 2^30.
_INT8_MAX_K = 1 << 16
_BLOCK_BYTES = 1 << 19
# OpenBLAS runs a GEMM on one thread when m·n·k ≤ 65536·4; blocks stay under it so that our own
# row-range threads (not OpenBLAS's) use the cores, without oversubscription or lock traffic.
_GEMM_SINGLE_THREAD = 1 << 18
# fp32 GEMV row blocks: 1 MiB of C at n = 4096, L2-resident while every round reads it.
_GEMV_BLOCK_BYTES = 1 << 20
# Below this many elements the compiled loop runs on the calling thread alone (sharing it out
# costs more than it saves).
_JIT_SPLIT_ELEMENTS = 1 << 20


def gamma(j: int, u: float) -> float:
    """γ_j = j·u / (1 − j·u), the relative error bound of a j-term float dot product."""
    if j * u >= 1:
        raise ValueError("j*u must be < 1")
    return j * u / (1 - j * u)


def int8_bits(n: int, k: int) -> int:
    """Bits b of each Freivalds vector entry for an int8 job (module docstring): always 20.

    Arithmetic is modulo 2^64, so no exactness bound depends on n; k ≤ 2^16 keeps every entry
    of C − A·B below 2^32 in magnitude, which the 2^-b bound needs.
    """
    if n < 1 or not 1 <= k <= _INT8_MAX_K:
        raise ValueError(f"int8 Freivalds needs n ≥ 1 and 1 ≤ k ≤ 2^16, got n={n}, k={k}")
    return INT8_BITS


def int8_rounds(bits: int) -> int:
    """Rounds so that 2^(-bits·rounds) ≤ 2^-40."""
    return math.ceil(FALSE_ACCEPT_LOG2 / bits)


def _ring_rows(c: Any, rt: Any, out_t: Any, lo: int, hi: int) -> None:  # pragma: no cover
    """out_t[:, i] = C_i·R mod 2^64 for rows lo ≤ i < hi (compiled by numba, never run as Python).

    ``c``: int8/int32 (m × n), ``rt``: int32/int64 (rounds × n), ``out_t``: uint64 (rounds × m).
    With two rounds (the int8 challenge), four rows go through one pass: four memory streams
    keep more of C in flight than one (twice the speed from DRAM) and each r_j is loaded once
    for four rows. Products are formed from sign-extended operands and summed in uint64, whose
    wrap-around numba leaves defined (signed adds carry ``nsw``: overflow would be undefined).
    With int32 r each product is one 32×32→64-bit multiply; int64 r (B·r fed back) uses full
    64-bit multiplies.
    """
    n = c.shape[1]
    rounds = rt.shape[0]
    i = lo
    if rounds == 2:
        while i + 4 <= hi:
            a0 = b0 = c0 = d0 = np.uint64(0)
            a1 = b1 = c1 = d1 = np.uint64(0)
            for j in range(n):
                r0 = np.uint64(np.int64(rt[0, j]))
                r1 = np.uint64(np.int64(rt[1, j]))
                x0 = np.uint64(np.int64(c[i, j]))
                x1 = np.uint64(np.int64(c[i + 1, j]))
                x2 = np.uint64(np.int64(c[i + 2, j]))
                x3 = np.uint64(np.int64(c[i + 3, j]))
                a0 += x0 * r0
                a1 += x0 * r1
                b0 += x1 * r0
                b1 += x1 * r1
                c0 += x2 * r0
                c1 += x2 * r1
                d0 += x3 * r0
                d1 += x3 * r1
            out_t[0, i] = a0
            out_t[1, i] = a1
            out_t[0, i + 1] = b0
            out_t[1, i + 1] = b1
            out_t[0, i + 2] = c0
            out_t[1, i + 2] = c1
            out_t[0, i + 3] = d0
            out_t[1, i + 3] = d1
            i += 4
    while i < hi:
        for q in range(rounds):
            acc = np.uint64(0)
            for j in range(n):
                acc += np.uint64(np.int64(c[i, j])) * np.uint64(np.int64(rt[q, j]))
            out_t[q, i] = acc
        i += 1


def _ring_signatures(t: Any) -> list[Any]:
    return [
        t.void(
            t.Array(cdt, 2, "C", readonly=ro),
            t.Array(rdt, 2, "C"),
            t.Array(t.uint64, 2, "C"),
            t.int64,
            t.int64,
        )
        for cdt in (t.int8, t.int32)
        for ro in (False, True)  # results decoded from bytes are read-only views
        for rdt in (t.int32, t.int64)
    ]


def jit_warm_up() -> bool:
    """Compile (or load from numba's on-disk cache) the C·R kernels; True if numba is present.

    Called by the verifier's ``prepare``, so that checks after it never compile. The first call
    in a process costs the numba import and a cache load (~0.3 s; a cold cache compiles eight
    signatures, ~2 s); later calls return at once.
    """
    return _jit(_ring_rows, _ring_signatures) is not None


def ring_product(m: np.ndarray, r: np.ndarray, *, jit: bool = True) -> np.ndarray:
    """m·r modulo 2^64, as int64 (two's complement), for an integer matrix m and integer r.

    ``m``: 2-D, int8/int16/int32/uint8/uint16 (|m_ij| ≤ 2^31), any strides; ``r``: 2-D integer
    (cols × rounds), any values. Identical results from the compiled loop (numba present,
    ``jit``, m int8/int32 C-contiguous) and from exact float64 BLAS over limbs of r (otherwise);
    see the module docstring. Returns a (rows × rounds) array (a transposed view).
    """
    if m.ndim != 2 or r.ndim != 2 or m.shape[1] != r.shape[0]:
        raise ValueError(f"shape mismatch {m.shape} · {r.shape}")
    if m.dtype.kind not in "iu" or m.dtype.itemsize > 4 or m.dtype == np.uint32:
        raise TypeError(f"ring_product needs an integer matrix of at most 32 bits, got {m.dtype}")
    if r.dtype.kind not in "iu" or r.dtype == np.uint64:
        raise TypeError(f"ring_product needs int64-representable r, got {r.dtype}")
    r64 = r.astype(np.int64, copy=False)
    kernel = _jit(_ring_rows, _ring_signatures) if jit else None
    if kernel is None or m.dtype not in (np.int8, np.int32) or not m.flags.c_contiguous:
        return _ring_product_blas(m, r64)
    rows, cols = m.shape
    small = r64.size == 0 or (r64.min() >= -(1 << 31) and r64.max() < 1 << 31)
    # int32 entries let the compiler use 32×32→64-bit multiplies (exact, no wrap).
    rt = np.ascontiguousarray(r64.T, dtype=np.int32 if small else np.int64)
    out_t = np.empty((r64.shape[1], rows), dtype=np.uint64)
    if rows * cols < _JIT_SPLIT_ELEMENTS:
        kernel(m, rt, out_t, 0, rows)
    else:  # chunks of rows (multiples of 4) shared out dynamically to the calling thread + pool
        step = max(4, -(-rows // (4 * workers())) // 4 * 4)
        parallel_for(
            lambda i: kernel(m, rt, out_t, i * step, min(rows, (i + 1) * step)), -(-rows // step)
        )
    return out_t.T.view(np.int64)


def _ring_product_blas(m: np.ndarray, r: np.ndarray) -> np.ndarray:
    """:func:`ring_product` without numba: exact float64 products of m and limbs of r.

    r = Σ_l r_l·2^(L·l) with 0 ≤ r_l < 2^L below the top limb and |r_top| < 2^L, L the largest
    width with cols·max|m|·(2^L − 1) < 2^53, so each m·r_l is an exact integer in float64 (any
    summation order); the limbs are recombined with wrapping uint64 shifts and adds.
    """
    rows, cols = m.shape
    info = np.iinfo(m.dtype)
    mag = max(-int(info.min), int(info.max), 1) * max(cols, 1)
    width = 1
    while width < 52 and mag * ((1 << (width + 1)) - 1) < EXACT_LIMIT:
        width += 1
    limbs: list[np.ndarray] = []
    rest = r
    while True:
        if bool(((rest > -(1 << width)) & (rest < (1 << width))).all()):
            limbs.append(rest)
            break
        limbs.append(rest & ((1 << width) - 1))
        rest = rest >> width
    rounds = r.shape[1]
    prod, _ = float64_product(m, np.concatenate(limbs, axis=1).astype(np.float64))
    ints = prod.astype(np.int64).view(np.uint64)
    out = np.zeros((rows, rounds), dtype=np.uint64)
    for index in range(len(limbs)):
        shift = width * index
        if shift < 64:
            out += ints[:, index * rounds : (index + 1) * rounds] << np.uint64(shift)
    return out.view(np.int64)


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
