"""The bytes of an llm worker's answer to a challenge (what ``GET …/answer?seed=`` serves).

    b"POUWLLM1" || u32 big-endian header length || header || result || rows || kv || final
    || proofs

``header`` is canonical JSON ``{"positions": [...], "t": T}``: the opened positions (sorted,
distinct, each < T) and T, the number of positions run. Then, every size following from the
spec's model shape and these two numbers (no length is trusted from the sender):

* ``result``: the committed result (:func:`oracle.protocol.results.encode_llm_result`), so the
  oracle checks it against the on-chain commitment and reads the trace roots and tokens from it;
* ``rows``: the opened main rows, (layers, positions, 2·dim + 2·ffn) float32 little-endian;
* ``kv``: every K/V row, (layers, T, 2·kv_heads·head_dim) float32;
* ``final``: every final row, (T, dim) float32;
* ``proofs``: for each block, for each opened position, the Merkle proof of main row
  (block·T + position) among layers·T rows, 32 bytes per hash, each proof exactly as long as
  :func:`oracle.compute.merkle.proof_length` says.

The total must match exactly; anything else is a :class:`ResultFormatError` (the job's
verdict is then INVALID). For SmolLM2-135M at 512 + 32 tokens: ~51 MB, 92 KiB per token, most
of it the K/V table (``bench/llm.py``: ``llm_bytes_fetched_per_token``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import msgspec
import numpy as np

from oracle.compute.llm.verify import LlmAnswer
from oracle.compute.merkle import FlatProofs, proof_lengths
from oracle.exceptions import ResultFormatError
from oracle.protocol.canonical import canonical_json
from oracle.protocol.results import result_layout
from oracle.protocol.spec import LlmSpec, Spec

__all__ = [
    "LLM_ANSWER_MAGIC",
    "DecodedLlmAnswer",
    "decode_llm_answer",
    "encode_llm_answer",
    "max_llm_answer_bytes",
]

LLM_ANSWER_MAGIC = b"POUWLLM1"
_MAX_HEADER = 1 << 16
_F32 = np.dtype("<f4")


class _Header(msgspec.Struct, forbid_unknown_fields=True):
    positions: list[int]
    t: int


@dataclass
class DecodedLlmAnswer:
    """What an answer carries: the committed result's bytes, T, the opened positions, and the
    trace openings (:class:`~oracle.compute.llm.verify.LlmAnswer`)."""

    result: bytes
    t: int
    positions: np.ndarray
    answer: LlmAnswer


def _widths(p: LlmSpec) -> tuple[int, int, int, int]:
    """(layers, main row floats, K/V row floats, final row floats) of the spec's model."""
    m = p.model
    return m.layers, 2 * m.dim + 2 * m.ffn, 2 * m.d_kv, m.dim


def max_llm_answer_bytes(p: LlmSpec, openings: int) -> int:
    """The largest answer a job can have: every position run (T at most P + N − 1) with
    ``openings`` sampled prompt positions and every generated one opened, proofs of the
    longest length. SmolLM2-135M at 512 + 256 tokens: ~180 MB (30 blocks × 272 opened rows
    of 16.5 KiB, then the K/V table)."""
    layers, main_w, kv_w, d = _widths(p)
    t = len(p.prompt) + p.max_new_tokens - 1
    n = min(t, openings + p.max_new_tokens)
    depth = max(1, (layers * t - 1).bit_length())
    rows = 1 + -(-p.max_new_tokens // 32)
    header = 64 + 12 * n
    body = 4 * (layers * n * main_w + layers * t * kv_w + t * d) + 32 * depth * layers * n
    return 12 + header + rows * 128 + body


def encode_llm_answer(result: bytes, positions: np.ndarray, answer: LlmAnswer) -> bytes:
    """Serialize an answer (module docstring)."""
    t = int(answer.final.shape[0])
    header = canonical_json({"positions": [int(p) for p in positions], "t": t})
    parts: list[bytes | memoryview] = [
        LLM_ANSWER_MAGIC,
        struct.pack(">I", len(header)),
        header,
        result,
    ]
    for arr in (answer.rows, answer.kv, answer.final):
        parts.append(np.ascontiguousarray(arr, dtype=_F32).data.cast("B"))
    if isinstance(answer.proofs, FlatProofs):
        parts.append(answer.proofs.hashes.astype("<u8", copy=False).tobytes())
    else:
        parts.extend(h for per_layer in answer.proofs for proof in per_layer for h in proof)
    return b"".join(parts)


def decode_llm_answer(spec: Spec, data: bytes | bytearray | memoryview) -> DecodedLlmAnswer:
    """Parse an answer to a challenge of ``spec`` (an llm spec), checking every size."""
    p = spec.params
    if not isinstance(p, LlmSpec):
        raise ResultFormatError("answer: not an llm job")
    view = memoryview(data).cast("B")
    if len(view) < 12 or bytes(view[:8]) != LLM_ANSWER_MAGIC:
        raise ResultFormatError("answer: bad magic")
    (hlen,) = struct.unpack(">I", view[8:12])
    if hlen > _MAX_HEADER or 12 + hlen > len(view):
        raise ResultFormatError("answer: bad header length")
    try:
        header = msgspec.json.decode(bytes(view[12 : 12 + hlen]), type=_Header)
    except msgspec.MsgspecError as exc:
        raise ResultFormatError(f"answer: bad header ({exc})") from None
    t, n_prompt = header.t, len(p.prompt)
    if not n_prompt <= t <= n_prompt + p.max_new_tokens - 1:
        raise ResultFormatError(
            f"answer: t = {t}, expected {n_prompt} to {n_prompt + p.max_new_tokens - 1}"
        )
    positions = np.asarray(header.positions, dtype=np.int64)
    if positions.size == 0 or positions.size > t:
        raise ResultFormatError("answer: no positions, or more than T")
    if positions[0] < 0 or positions[-1] >= t or (np.diff(positions) <= 0).any():
        raise ResultFormatError("answer: positions must be sorted, distinct and below T")
    layers, main_w, kv_w, d = _widths(p)
    (rows, cols), dtype = result_layout(spec)
    result_len = rows * cols * dtype.itemsize
    n = int(positions.size)
    sizes = (layers * n * main_w * 4, layers * t * kv_w * 4, t * d * 4)
    indices = (np.arange(layers, dtype=np.int64)[:, None] * t + positions[None, :]).reshape(-1)
    lengths = proof_lengths(indices, layers * t)
    total = int(lengths.sum())
    pos = 12 + hlen
    expected = pos + result_len + sum(sizes) + 32 * total
    if len(view) != expected:
        raise ResultFormatError(f"answer: {len(view)} bytes, expected {expected}")
    result = bytes(view[pos : pos + result_len])
    pos += result_len
    arrays = []
    for size, shape in zip(sizes, ((layers, n, main_w), (layers, t, kv_w), (t, d)), strict=True):
        arrays.append(np.frombuffer(view[pos : pos + size], dtype=_F32).reshape(shape))
        pos += size
    # every proof back to back, read in place: (Σ lengths, 4) little-endian words
    hashes = np.frombuffer(view[pos : pos + 32 * total], dtype="<u8").reshape(total, 4)
    proofs = FlatProofs(hashes, lengths)
    answer = LlmAnswer(rows=arrays[0], proofs=proofs, kv=arrays[1], final=arrays[2])
    return DecodedLlmAnswer(result=result, t=t, positions=positions, answer=answer)
