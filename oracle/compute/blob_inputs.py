"""A requester's arrays as blob inputs: the bytes to publish and the spec's ``inputs`` object.

The inverse of the kinds' ``load_inputs`` for blob specs (layouts in :mod:`oracle.protocol.spec`):
A row-major and B column-major for ``matmul``; the batch row-major and, per layer, rows of
[column j of W_l, b_l[j]] for ``mlp``. Each blob is named by the keccak256 of its bytes (the
store's name) and carries the row Merkle root(s) that a later proof of one row opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.compute.merkle import merkle_root
from oracle.protocol.hashing import keccak256

__all__ = ["BlobInputs", "matmul_blobs", "mlp_blobs"]


@dataclass(frozen=True)
class BlobInputs:
    """What a blob job publishes: ``blobs`` (name → bytes, names 0x-prefixed) and the
    ``inputs`` object its spec carries."""

    inputs: dict[str, Any]
    blobs: dict[str, bytes]


def _le(arr: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))


def _name(data: bytes) -> str:
    return "0x" + keccak256(data).hex()


def _root(data: bytes, rows: int) -> str:
    return "0x" + merkle_root(data, rows).hex()


def matmul_blobs(a: np.ndarray, b: np.ndarray) -> BlobInputs:
    """Blobs of ``a`` (m×k) and ``b`` (k×n), both int8 or both float32."""
    dtype = "<i1" if a.dtype == np.int8 else "<f4"
    a_bytes = _le(a, dtype).tobytes()
    b_bytes = _le(b.T, dtype).tobytes()  # column-major: row j of the blob is column j of B
    return BlobInputs(
        inputs={
            "a": {"blob": _name(a_bytes), "root": _root(a_bytes, a.shape[0])},
            "b": {"blob": _name(b_bytes), "root": _root(b_bytes, b.shape[1])},
        },
        blobs={_name(a_bytes): a_bytes, _name(b_bytes): b_bytes},
    )


def mlp_blobs(x: np.ndarray, layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> BlobInputs:
    """Blobs of the batch ``x`` (batch×d0) and the layers' (W_l (d_{l-1}×d_l), b_l (d_l,)),
    float32."""
    x_bytes = _le(x, "<f4").tobytes()
    sections = []
    for w, bias in layers:
        rows = np.concatenate([_le(w, "<f4").T, _le(bias, "<f4")[:, None]], axis=1)
        sections.append(_le(rows, "<f4").tobytes())
    w_bytes = b"".join(sections)
    roots = [_root(s, w.shape[1]) for s, (w, _) in zip(sections, layers, strict=True)]
    return BlobInputs(
        inputs={
            "weights": {"blob": _name(w_bytes), "roots": roots},
            "x": {"blob": _name(x_bytes), "root": _root(x_bytes, x.shape[0])},
        },
        blobs={_name(w_bytes): w_bytes, _name(x_bytes): x_bytes},
    )
