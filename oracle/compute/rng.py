"""Deterministic randomness: seeded job inputs and the verifier's challenge.

Input generator (documented so that anyone can regenerate a seeded job's inputs):

* Tensor ``t`` of a job with seed ``S`` is produced in fixed-size chunks. Chunk ``c`` comes
  from its own stream ``SFC64(SeedSequence(entropy=S, spawn_key=(0x494E, t, c)))`` (numpy's
  SeedSequence hashing, numpy's SFC64), so chunks are independent, keyed by their counter
  ``(t, c)``, and can be generated in parallel in any order with identical output.
  SFC64 was measured fastest here: 32 MiB of raw output in 10 ms (Philox 20 ms, PCG64
  15 ms); through ``Generator.random(float32)`` two 4096² matrices take 69 ms with SFC64,
  101 ms with Philox. Philox is the textbook counter-based generator; keying an SFC64 stream
  by the chunk counter gives the same random-access property at twice Philox's speed.
* ``int8``: chunk ``c`` covers bytes ``[c·2^20, (c+1)·2^20)`` of the row-major tensor; its
  bytes are the little-endian bytes of ``random_raw(2^17)`` (uniform over [-128, 127]).
* ``fp32``: chunk ``c`` covers elements ``[c·2^18, (c+1)·2^18)``; ``random_raw(2^17)`` is read
  as 2^18 little-endian uint32 words ``u`` and element = ``((u >> 8) - 2^23) · 2^-23``, i.e.
  uniform on the 2^24-point grid of [-1, 1) (every value exact in fp32).
* The last chunk is truncated to the tensor's size.

Challenge (the verifier's randomness) for challenge seed ``Z`` (a 32-byte block-hash-derived
value or an int) and spec hash ``H``: ``Generator(SFC64(SeedSequence(entropy=[Z, H],
spawn_key=(domain,))))`` with one domain per use (Freivalds vectors, opened rows), so the same
seed and spec always give the same challenge and different jobs get independent ones.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.random import SFC64, Generator, SeedSequence

from oracle.compute.parallel import parallel_map

__all__ = [
    "FP32_CHUNK_ELEMENTS",
    "INT8_CHUNK_BYTES",
    "challenge_generator",
    "generate_tensor",
    "seed_to_int",
]

INT8_CHUNK_BYTES = 1 << 20
FP32_CHUNK_ELEMENTS = 1 << 18
_INPUT_DOMAIN = 0x494E  # "IN"
DOMAIN_FREIVALDS = 0x4652  # "FR"
DOMAIN_ROWS = 0x524F  # "RO"


def _stream(seed: int, tensor: int, chunk: int) -> SFC64:
    return SFC64(SeedSequence(entropy=seed, spawn_key=(_INPUT_DOMAIN, tensor, chunk)))


def generate_tensor(
    seed: int,
    tensor: int,
    shape: tuple[int, ...],
    dtype: Literal["int8", "fp32"],
    out_dtype: type[np.generic] | None = None,
) -> np.ndarray:
    """Generate tensor number ``tensor`` of the job with input seed ``seed`` (see module doc).

    ``out_dtype`` converts each chunk while it is still in cache (e.g. int8 values delivered as
    float32 for BLAS); the values are the same, only their storage type differs.
    """
    size = int(np.prod(shape, dtype=np.int64))
    if dtype == "int8":
        chunk, words = INT8_CHUNK_BYTES, INT8_CHUNK_BYTES // 8
    else:
        chunk, words = FP32_CHUNK_ELEMENTS, FP32_CHUNK_ELEMENTS // 2
    target = (
        np.dtype(out_dtype)
        if out_dtype is not None
        else np.dtype(np.int8 if dtype == "int8" else np.float32)
    )
    out = np.empty(size, dtype=target)
    starts = list(range(0, size, chunk))

    def fill(start: int) -> None:
        count = min(chunk, size - start)
        # A stream's first w words do not depend on how many are drawn: a short last chunk
        # (or a small tensor) draws only the words it uses.
        need = -(-count // 8) if dtype == "int8" else -(-count // 2)
        raw = _stream(seed, tensor, start // chunk).random_raw(min(words, need))
        raw = raw.astype("<u8", copy=False)
        if dtype == "int8":
            values = raw.view(np.int8)[:count]
            np.copyto(out[start : start + count], values, casting="unsafe")
        else:
            u = raw.view("<u4")[:count] >> np.uint32(8)
            vals = u.view(np.int32) - np.int32(1 << 23)
            np.multiply(
                vals, np.float32(2.0**-23), out=out[start : start + count], casting="unsafe"
            )

    parallel_map(fill, starts)
    return out.reshape(shape)


def seed_to_int(seed: bytes | int) -> int:
    """A challenge seed as a non-negative int (bytes are read big-endian, like a bytes32)."""
    if isinstance(seed, bool):
        raise TypeError("challenge seed must be bytes or int")
    if isinstance(seed, bytes | bytearray):
        return int.from_bytes(seed, "big")
    if isinstance(seed, int) and seed >= 0:
        return seed
    raise TypeError("challenge seed must be bytes or a non-negative int")


def challenge_generator(seed: bytes | int, spec_hash: bytes, domain: int) -> Generator:
    """The challenge stream for one purpose (``domain``) of one job (see module doc)."""
    entropy = [seed_to_int(seed), int.from_bytes(spec_hash, "big")]
    return Generator(SFC64(SeedSequence(entropy=entropy, spawn_key=(domain,))))
