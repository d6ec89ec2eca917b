"""The worker's side of a job: inputs, compute, commitment root, sampled-mode answers."""

from __future__ import annotations

from typing import Any

import numpy as np

from oracle.compute.backend import Backend, select_backend
from oracle.compute.kinds import get_kind
from oracle.compute.kinds.base import BlobSource, result_chunks
from oracle.compute.merkle import MerkleTree, merkle_root
from oracle.protocol.results import encode_answer, encode_result, result_layout
from oracle.protocol.spec import Spec, parse_spec

__all__ = [
    "answer_challenge",
    "compute",
    "entry_opening",
    "load_inputs",
    "result_root",
    "result_tree",
]


def load_inputs(spec: Spec | bytes | str | dict[str, Any], store: BlobSource | None = None) -> Any:
    """The job's inputs: generated from the seed or fetched (hash-checked) from the store."""
    parsed = parse_spec(spec)
    return get_kind(parsed.kind).load_inputs(parsed, store)


def compute(
    spec: Spec | bytes | str | dict[str, Any],
    backend: Backend | None = None,
    *,
    inputs: Any = None,
    store: BlobSource | None = None,
) -> np.ndarray:
    """Run the job; returns the result array (shape and dtype of :func:`result_layout`)."""
    parsed = parse_spec(spec)
    kind = get_kind(parsed.kind)
    if inputs is None:
        inputs = kind.load_inputs(parsed, store)
    out = kind.compute(parsed, inputs, backend or select_backend())
    shape, dtype = result_layout(parsed)
    assert out.shape == shape and out.dtype == dtype, (out.shape, out.dtype)
    return out


def _result_rows(
    spec: Spec | bytes | str | dict[str, Any], result: np.ndarray
) -> tuple[memoryview, int]:
    """The result's little-endian bytes and the tree's number of leaves (rows × chunks)."""
    parsed = parse_spec(spec)
    shape, _ = result_layout(parsed)
    data = np.ascontiguousarray(result)
    if data.dtype.byteorder == ">":
        data = np.frombuffer(encode_result(data), dtype=data.dtype.newbyteorder("<"))
    return data.data.cast("B"), shape[0] * result_chunks(parsed)


def result_tree(spec: Spec | bytes | str | dict[str, Any], result: np.ndarray) -> MerkleTree:
    """The Merkle tree of a result (its root goes into the commitment): leaves are the rows'
    chunks, ``result_chunks(spec)`` per row (:mod:`oracle.compute.merkle`); a whole row opens
    with ``tree.row_proof(i, result_chunks(spec))``, an entry with :func:`entry_opening`."""
    return MerkleTree.from_rows(*_result_rows(spec, result))


def result_root(spec: Spec | bytes | str | dict[str, Any], result: np.ndarray) -> bytes:
    """The root of :func:`result_tree` (without keeping the tree's other hashes)."""
    return merkle_root(*_result_rows(spec, result))


def entry_opening(
    spec: Spec | bytes | str | dict[str, Any],
    result: np.ndarray,
    tree: MerkleTree,
    i: int,
    j: int,
) -> tuple[bytes, list[bytes]]:
    """The chunk of row ``i`` holding entry (i, j) of ``result`` and its proof in ``tree``
    (:func:`result_tree`), leaf i·p + j // (n/p): what an on-chain dispute opens."""
    parsed = parse_spec(spec)
    (rows, cols), _ = result_layout(parsed)
    if not (0 <= i < rows and 0 <= j < cols):
        raise IndexError(f"entry ({i}, {j}) outside the {rows}×{cols} result")
    p = result_chunks(parsed)
    width = cols // p
    c = j // width
    data, _ = _result_rows(parsed, result)
    row_bytes = len(data) // rows
    size = row_bytes // p
    start = i * row_bytes + c * size
    return bytes(data[start : start + size]), tree.proof(i * p + c)


def answer_challenge(
    spec: Spec | bytes | str | dict[str, Any],
    result: np.ndarray,
    seed: bytes | int,
    *,
    tree: MerkleTree | None = None,
    store: BlobSource | None = None,
) -> bytes:
    """The encoded sampled-mode answer (y = C·R and the opened rows with proofs; for llm,
    :mod:`oracle.compute.llm.answer`, which may load the model through ``store``)."""
    parsed = parse_spec(spec)
    tree = tree or result_tree(parsed, result)
    out = get_kind(parsed.kind).answer(parsed, result, seed, tree, store=store)
    return out if isinstance(out, bytes) else encode_answer(out)
