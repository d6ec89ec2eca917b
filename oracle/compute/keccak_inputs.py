"""Seeded inputs from a keccak counter-mode stream: the generator a contract can regenerate.

Line ``r`` of tensor ``t`` of a job with seed ``S`` is the concatenation of the 32-byte words

    word_w = keccak256(abi.encode(uint256 S, uint256 t, uint256 r, uint256 w)),  w = 0, 1, …

cut to the bytes the line needs. A line is a row of A (tensor 0) or a **column** of B
(tensor 1): B is generated column-major, so the k entries that one entry C[i][j] reads, row i
of A and column j of B, are each ⌈k/32⌉ (int8) or ⌈4k/32⌉ (fp32) hashes of a 128-byte
message, which a contract recomputes for a few hundred gas each
(``contracts/modules/entry_check.vy``) instead of reading them from calldata. Elements:

* ``int8``: byte e of the line, as a signed byte (uniform over [-128, 127]);
* ``fp32``: bytes 4e … 4e+3 as a little-endian uint32 ``u``, element
  ``((u >> 8) − 2^23) · 2^-23`` (uniform on the 2^24-point grid of [-1, 1), exact in fp32),
  the mapping :mod:`oracle.compute.rng` uses for its SFC64 stream.

This module generates whole tensors with the compiled kernel
(:func:`oracle.compute.keccak.keccak_counter`, 8 hashes side by side, lines split over the
thread pool) and one line at a time with plain keccak (:func:`keccak_line`, the reference the
kernel is tested against, and the fallback without numba). It is not yet what seeded jobs
use: switching them (a new protocol version) comes with the on-chain dispute of seeded jobs.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from oracle.compute.keccak import RC_ARRAY, counter_signatures, keccak_counter, keccak_f
from oracle.compute.parallel import jit, parallel_for, workers
from oracle.protocol.hashing import keccak256

__all__ = ["keccak_line", "keccak_lines", "keccak_matmul_inputs", "keccak_word"]

#: Lines generated per task of the thread pool (at least).
_LINES_PER_TASK = 64


def keccak_word(seed: int, tensor: int, line: int, word: int) -> bytes:
    """Word ``word`` of line ``line`` of tensor ``tensor`` (module docstring)."""
    return keccak256(b"".join(x.to_bytes(32, "big") for x in (seed, tensor, line, word)))


def keccak_line(seed: int, tensor: int, line: int, nbytes: int) -> bytes:
    """The first ``nbytes`` bytes of one line, one hash at a time (the reference)."""
    words = -(-nbytes // 32)
    return b"".join(keccak_word(seed, tensor, line, w) for w in range(words))[:nbytes]


def _kernel() -> Any:
    if sys.byteorder != "little":  # pragma: no cover - the kernel writes native words
        return None
    return jit(keccak_counter, counter_signatures, (keccak_f,))


def keccak_lines(seed: int, tensor: int, lines: int, nbytes: int) -> np.ndarray:
    """Lines 0 … lines−1 of tensor ``tensor``, ``nbytes`` bytes each: uint8 (lines, nbytes)."""
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2^64), got {seed}")
    words = -(-nbytes // 32)
    kernel = _kernel()
    if kernel is None:
        rows = [keccak_line(seed, tensor, r, nbytes) for r in range(lines)]
        return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(lines, nbytes).copy()
    out = np.empty((lines, words, 4), dtype=np.uint64)
    per = max(_LINES_PER_TASK, -(-lines // (4 * workers())))
    spans = [(lo, min(lines, lo + per)) for lo in range(0, lines, per)]

    def run(t: int) -> None:
        lo, hi = spans[t]
        kernel(seed, tensor, lo, hi, words, RC_ARRAY, out[lo:hi])

    parallel_for(run, len(spans))
    flat = out.view(np.uint8).reshape(lines, words * 32)
    return flat if nbytes == words * 32 else np.ascontiguousarray(flat[:, :nbytes])


def _elements(raw: np.ndarray, dtype: Literal["int8", "fp32"]) -> np.ndarray:
    if dtype == "int8":
        return raw.view(np.int8)
    u = raw.view("<u4") >> np.uint32(8)
    return (u.view(np.int32) - np.int32(1 << 23)).astype(np.float32) * np.float32(2.0**-23)


def keccak_matmul_inputs(
    seed: int, m: int, n: int, k: int, dtype: Literal["int8", "fp32"]
) -> tuple[np.ndarray, np.ndarray]:
    """A (m×k, row-major) and B (k×n, a transposed view of its n generated columns)."""
    size = 1 if dtype == "int8" else 4
    a = _elements(keccak_lines(seed, 0, m, k * size), dtype)
    cols = _elements(keccak_lines(seed, 1, n, k * size), dtype)
    return a.reshape(m, k), cols.reshape(n, k).T
