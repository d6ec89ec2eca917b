"""What a job kind implements, and the pieces shared by the kinds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from oracle.compute.backend import Backend
from oracle.compute.merkle import MerkleTree, chunks_per_row, merkle_root
from oracle.compute.rng import seed_to_int
from oracle.exceptions import InputError
from oracle.protocol.results import SampledAnswer, result_layout
from oracle.protocol.spec import InputBlob, Spec
from oracle.protocol.verdict import Verdict

__all__ = [
    "BlobSource",
    "JobKind",
    "Prepared",
    "load_blob",
    "log2_ratio",
    "result_chunks",
    "seed_hex",
]


def result_chunks(spec: Spec) -> int:
    """Leaves per row of the spec's result tree (:func:`oracle.compute.merkle.chunks_per_row`
    of its row length and element size): the tree is ``MerkleTree.from_rows(data, m * p)``."""
    (_, cols), dtype = result_layout(spec)
    return chunks_per_row(cols, dtype.itemsize)


class BlobSource(Protocol):
    """Anything that returns a blob's verified bytes by name (:mod:`oracle.store.blobs`)."""

    def get(self, name: str, max_size: int | None = None) -> bytes: ...


@dataclass
class Prepared:
    """Seed-only verifier state: everything that does not need the result."""

    spec: Spec
    seed: int
    state: Any

    @property
    def seed_hex(self) -> str:
        """The challenge seed as 0x-prefixed 32-byte hex."""
        return seed_hex(self.seed)


class JobKind(Protocol):
    """The interface each kind module's implementation object provides."""

    name: str

    def load_inputs(self, spec: Spec, store: BlobSource | None) -> Any:
        """Generate (seeded) or fetch and validate (blob) the job's inputs."""
        ...

    def compute(self, spec: Spec, inputs: Any, backend: Backend) -> np.ndarray:
        """The worker's computation: the result array (see :mod:`oracle.protocol.results`)."""
        ...

    def prepare(self, spec: Spec, seed: bytes | int, inputs: Any) -> Prepared:
        """Seed-only verifier work."""
        ...

    def check_full(self, prepared: Prepared, result: np.ndarray) -> Verdict:
        """Verify a whole result (already decoded to the spec's shape and dtype)."""
        ...

    def check_sampled(self, prepared: Prepared, answer: Any, root: bytes) -> Verdict:
        """Verify a sampled-mode answer against the committed row root (a decoded
        :class:`SampledAnswer` for kinds with row results; the encoded bytes for llm)."""
        ...

    def answer(
        self,
        spec: Spec,
        result: np.ndarray,
        seed: bytes | int,
        tree: MerkleTree,
        store: BlobSource | None = None,
    ) -> SampledAnswer | bytes:
        """The worker's answer to a sampled-mode challenge (a :class:`SampledAnswer`, or the
        encoded bytes for a kind with its own answer format)."""
        ...


def seed_hex(seed: bytes | int) -> str:
    """A challenge seed as 0x-prefixed hex of at least 32 bytes."""
    value = seed_to_int(seed)
    return "0x" + value.to_bytes(max(32, (value.bit_length() + 7) // 8), "big").hex()


def load_blob(
    store: BlobSource | None,
    ref: InputBlob | None,
    sections: Sequence[tuple[int, int]],
    dtype: str,
    field: str,
) -> list[np.ndarray]:
    """Fetch a blob input and cut it into ``sections`` of (rows, elements per row), each a
    little-endian array checked against its Merkle root in ``ref.roots``; fp32 must be
    finite. InputError names ``field`` and what is wrong."""
    if store is None or ref is None:
        raise InputError(f"{field}: blob inputs need a blob store")
    dt = np.dtype("<i1" if dtype == "int8" else "<f4")
    size = sum(rows * cols for rows, cols in sections) * dt.itemsize
    data = store.get(ref.blob[2:], max_size=size)
    if len(data) != size:
        raise InputError(f"{field}: blob {ref.blob} has {len(data)} bytes, expected {size}")
    out, pos = [], 0
    for (rows, cols), root in zip(sections, ref.roots, strict=True):
        part = memoryview(data)[pos : pos + rows * cols * dt.itemsize]
        pos += len(part)
        actual = "0x" + merkle_root(part, rows).hex()
        if actual != root:
            raise InputError(
                f"{field}: blob {ref.blob} has row root {actual}, the spec says {root}"
            )
        arr = np.frombuffer(part, dtype=dt).reshape(rows, cols)
        if dt.kind == "f" and not np.isfinite(arr).all():
            raise InputError(f"{field}: blob {ref.blob} contains NaN or Inf")
        out.append(arr)
    return out


def log2_ratio(residual: np.ndarray, bound: np.ndarray) -> int | str:
    """floor(log2(max residual/bound)) as an int for transcripts; "nan" if any is NaN."""
    if residual.size == 0:
        return -1000
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            bound > 0,
            residual / np.where(bound > 0, bound, 1.0),
            np.where(residual > 0, np.inf, 0.0),
        )
    if np.isnan(ratio).any():
        return "nan"
    top = float(ratio.max())
    if math.isinf(top):
        return "inf"
    return max(-1000, math.floor(math.log2(top))) if top > 0 else -1000
