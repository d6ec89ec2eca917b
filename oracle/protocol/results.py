"""Serialization of results and of sampled-mode challenge answers (no pickle, no eval).

**Result** (the blob a worker serves in full mode, and the bytes its Merkle tree covers):
the raw row-major array, little-endian, nothing else. Shape and dtype come from the spec:

* matmul int8 → int32, shape (m, n); matmul fp32 → float32, shape (m, n);
* mlp → float32, shape (batch, W) with W = Σ_{l<L} 2·d_l + d_L: for every sample the
  pre-activations Z_1, the activations H_1, …, Z_{L-1}, H_{L-1}, then the output Z_L;
* llm → uint32, rows of ``LLM_ROW_WORDS`` = 32 words (128 bytes), 1 + ⌈max_new_tokens/32⌉
  rows: row 0 holds the trace's three roots (main, K/V, final: 24 words, the bytes of each
  root in order) and the number of tokens generated; the next rows the generated token ids,
  zero-padded. The result is small, and its root binds the whole trace through row 0
  (``oracle.compute.llm.trace``): the requester's completion and the oracles' opened rows
  hang off the same commitment.

Every result element is 4 bytes (:data:`RESULT_ITEMSIZE`). The result's Merkle tree has
chunked leaves: each row is cut into p equal chunks by its element count and that size
(``oracle.compute.merkle.chunks_per_row``, p = 1 for rows under 1 KiB).

A result of the wrong length is refused (:class:`ResultFormatError`); every bit pattern of the
right length decodes (a NaN in an fp32 result is then rejected by the checks).

**Sampled answer** (the worker's reply to a challenge):

    b"POUWANS1" || u32 big-endian header length || header || y || openings

``header`` is canonical JSON ``{"indices": [...], "proof_lengths": [...], "rounds": R,
"rows": M}``; ``y`` = C·R as an (M × R) row-major little-endian array of int64 (int8 jobs) or
float32 (fp32 jobs); then for each opened row in header order: the row's bytes, then its
proof hashes (32 bytes each): the proof above the row's chunk subtree
(``oracle.compute.merkle.MerkleTree.row_proof``). The total length must match exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import numpy as np

from oracle.exceptions import ResultFormatError
from oracle.protocol.canonical import canonical_json
from oracle.protocol.spec import LlmSpec, MatmulSpec, Spec

#: A sampled answer's header: integers, and lists of integers (indices, proof lengths).
_AnswerHeader = dict[str, int | list[int] | str | None]

__all__ = [
    "LLM_ROW_WORDS",
    "MAX_ANSWER_BYTES",
    "RESULT_ITEMSIZE",
    "Opening",
    "SampledAnswer",
    "decode_answer",
    "decode_llm_result",
    "decode_result",
    "encode_answer",
    "encode_llm_result",
    "encode_result",
    "result_layout",
]

ANSWER_MAGIC = b"POUWANS1"
#: The largest sampled-mode answer an oracle reads (a larger one is INVALID).
MAX_ANSWER_BYTES = 64 << 20
MAX_HEADER_BYTES = 1 << 16


#: llm results: uint32 words per row.
LLM_ROW_WORDS = 32
#: Bytes per result element, every kind (int32, float32, uint32): with a row's length it
#: fixes the result tree's chunks (a result store knows rows by their length only).
RESULT_ITEMSIZE = 4


def result_layout(spec: Spec) -> tuple[tuple[int, int], np.dtype]:
    """(shape, little-endian dtype) of the spec's result."""
    p = spec.params
    if isinstance(p, MatmulSpec):
        return (p.m, p.n), np.dtype("<i4" if p.dtype == "int8" else "<f4")
    if isinstance(p, LlmSpec):
        return (1 + -(-p.max_new_tokens // LLM_ROW_WORDS), LLM_ROW_WORDS), np.dtype("<u4")
    width = 2 * sum(p.dims[1:-1]) + p.dims[-1]
    return (p.batch, width), np.dtype("<f4")


def encode_result(result: np.ndarray) -> bytes:
    """Raw little-endian row-major bytes of ``result``."""
    arr = np.ascontiguousarray(result)
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def decode_result(spec: Spec, data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """View ``data`` as the spec's result array (zero-copy for bytes), checking size and dtype."""
    shape, dtype = result_layout(spec)
    if isinstance(data, np.ndarray):
        if data.dtype != dtype or data.shape != shape:
            raise ResultFormatError(
                f"result: expected {dtype.str} array of shape {shape}, "
                f"got {data.dtype.str} {data.shape}"
            )
        return np.ascontiguousarray(data)
    view = memoryview(data).cast("B")
    expected = shape[0] * shape[1] * dtype.itemsize
    if len(view) != expected:
        raise ResultFormatError(f"result: {len(view)} bytes, expected {expected}")
    return np.frombuffer(view, dtype=dtype).reshape(shape)


def encode_llm_result(
    spec: Spec, roots: tuple[bytes, bytes, bytes], tokens: tuple[int, ...]
) -> bytes:
    """The llm result (module docstring) of a generation with trace ``roots`` (main, K/V,
    final) and ``tokens``."""
    p = spec.params
    if not isinstance(p, LlmSpec):
        raise ResultFormatError("result: not an llm job")
    if not 1 <= len(tokens) <= p.max_new_tokens or any(not 0 <= t < 2**32 for t in tokens):
        raise ResultFormatError(f"result: 1 to {p.max_new_tokens} token ids expected")
    if any(len(r) != 32 for r in roots) or len(roots) != 3:
        raise ResultFormatError("result: three 32-byte roots expected")
    (rows, width), dtype = result_layout(spec)
    out = np.zeros((rows, width), dtype=dtype)
    out[0, :24] = np.frombuffer(b"".join(roots), dtype="<u4")
    out[0, 24] = len(tokens)
    out.reshape(-1)[width : width + len(tokens)] = tokens
    return out.tobytes()


def decode_llm_result(
    spec: Spec, data: bytes | bytearray | memoryview
) -> tuple[tuple[bytes, bytes, bytes], tuple[int, ...]]:
    """(trace roots, tokens) of an llm result; ResultFormatError if it is not one."""
    p = spec.params
    if not isinstance(p, LlmSpec):
        raise ResultFormatError("result: not an llm job")
    arr = decode_result(spec, data)
    n = int(arr[0, 24])
    if not 1 <= n <= p.max_new_tokens:
        raise ResultFormatError(f"result: {n} tokens, expected 1 to {p.max_new_tokens}")
    flat = arr.reshape(-1)
    if flat[arr.shape[1] + n :].any() or arr[0, 25:].any():
        raise ResultFormatError("result: padding is not zero")
    head = arr[0, :24].astype("<u4").tobytes()
    roots = (head[:32], head[32:64], head[64:96])
    return roots, tuple(int(t) for t in flat[arr.shape[1] : arr.shape[1] + n])


@dataclass(frozen=True)
class Opening:
    """One opened row: its index, its bytes and its Merkle proof."""

    index: int
    row: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class SampledAnswer:
    """A worker's answer to a sampled-mode challenge: y = C·R and the opened rows."""

    y: np.ndarray
    openings: tuple[Opening, ...]


def encode_answer(answer: SampledAnswer) -> bytes:
    """Serialize an answer (module docstring)."""
    y = np.ascontiguousarray(answer.y)
    header = canonical_json(
        {
            "indices": [o.index for o in answer.openings],
            "proof_lengths": [len(o.proof) for o in answer.openings],
            "rounds": int(y.shape[1]),
            "rows": int(y.shape[0]),
        }
    )
    parts = [ANSWER_MAGIC, struct.pack(">I", len(header)), header, encode_result(y)]
    for o in answer.openings:
        parts.append(o.row)
        parts.extend(o.proof)
    return b"".join(parts)


def _int_list(header: Mapping[str, object], key: str) -> list[int]:
    value = header.get(key)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        raise ResultFormatError(f"answer.{key}: must be a list of non-negative integers")
    return list(value)


def decode_answer(
    data: bytes | bytearray | memoryview,
    *,
    rows: int,
    rounds: int,
    y_dtype: np.dtype,
    row_bytes: int,
) -> SampledAnswer:
    """Parse an answer, checking it against the expected sizes; raises ResultFormatError."""
    view = memoryview(data).cast("B")
    if len(view) < 12 or bytes(view[:8]) != ANSWER_MAGIC:
        raise ResultFormatError("answer: bad magic")
    (hlen,) = struct.unpack(">I", view[8:12])
    if hlen > MAX_HEADER_BYTES or 12 + hlen > len(view):
        raise ResultFormatError("answer: bad header length")
    try:
        # Typed and one level deep: nested brackets fail at once instead of recursing.
        header = msgspec.json.decode(bytes(view[12 : 12 + hlen]), type=_AnswerHeader)
    except msgspec.MsgspecError as exc:
        raise ResultFormatError(f"answer: header is not a flat JSON object ({exc})") from None
    if not isinstance(header, dict):
        raise ResultFormatError("answer: header must be an object")
    if header.get("rows") != rows or header.get("rounds") != rounds:
        raise ResultFormatError(
            f"answer: y must be {rows}×{rounds}, got {header.get('rows')}×{header.get('rounds')}"
        )
    indices = _int_list(header, "indices")
    lengths = _int_list(header, "proof_lengths")
    if len(indices) != len(lengths):
        raise ResultFormatError("answer: indices and proof_lengths differ in length")
    pos = 12 + hlen
    y_len = rows * rounds * y_dtype.itemsize
    expected = pos + y_len + sum(row_bytes + 32 * p for p in lengths)
    if len(view) != expected:
        raise ResultFormatError(f"answer: {len(view)} bytes, expected {expected}")
    y = np.frombuffer(view[pos : pos + y_len], dtype=y_dtype).reshape(rows, rounds)
    pos += y_len
    openings = []
    for index, plen in zip(indices, lengths, strict=True):
        row = bytes(view[pos : pos + row_bytes])
        pos += row_bytes
        proof = tuple(bytes(view[pos + 32 * i : pos + 32 * (i + 1)]) for i in range(plen))
        pos += 32 * plen
        openings.append(Opening(index, row, proof))
    return SampledAnswer(y, tuple(openings))
