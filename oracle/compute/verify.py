"""The oracle's verifier API, in two phases.

1. :func:`prepare` — as soon as the challenge seed is public (before or while the result
   arrives): regenerate or load the inputs, draw the Freivalds vectors (and opened rows) from
   the seed, compute B·r and A·(B·r) (and the fp32 bounds). Needs no result.
2. :func:`check_full` (full mode: the whole result) or :func:`check_sampled` (sampled mode:
   the worker's answer y = C·r plus Merkle openings) — only the work that needs the result.

Malformed results or answers are INVALID verdicts, never exceptions. The same spec, seed and
result always give the same verdict and transcript hash.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oracle.compute.kinds import get_kind
from oracle.compute.kinds.base import BlobSource, Prepared, result_chunks, seed_hex
from oracle.compute.llm.answer import max_llm_answer_bytes
from oracle.compute.merkle import merkle_root
from oracle.exceptions import ResultFormatError, SpecError
from oracle.protocol.results import (
    MAX_ANSWER_BYTES,
    SampledAnswer,
    decode_answer,
    decode_result,
    result_layout,
)
from oracle.protocol.spec import LlmSpec, Spec, parse_spec
from oracle.protocol.verdict import Verdict, VerdictCode, make_verdict

__all__ = ["Prepared", "answer_limit", "check_full", "check_sampled", "prepare", "verify_full"]


def prepare(
    spec: Spec | bytes | str | dict[str, Any],
    seed: bytes | int,
    *,
    inputs: Any = None,
    store: BlobSource | None = None,
) -> Prepared:
    """Seed-only verifier work. ``inputs`` skips regeneration (e.g. the oracle cached them)."""
    parsed = parse_spec(spec)
    kind = get_kind(parsed.kind)
    if inputs is None:
        inputs = kind.load_inputs(parsed, store)
    return kind.prepare(parsed, seed, inputs)


def answer_limit(spec: Spec) -> int:
    """The most bytes a sampled-mode answer of ``spec`` may take (a larger one is INVALID)."""
    if isinstance(spec.params, LlmSpec):
        return max_llm_answer_bytes(spec.params, spec.params.openings)
    return MAX_ANSWER_BYTES


def _format_invalid(prepared: Prepared, reason: str, **extra: Any) -> Verdict:
    body = {
        "kind": prepared.spec.kind,
        "mode": prepared.spec.mode,
        "spec_hash": "0x" + prepared.spec.hash.hex(),
        "seed": seed_hex(prepared.seed),
        **extra,
    }
    return make_verdict(VerdictCode.INVALID, reason, body)


def check_full(
    prepared: Prepared,
    result: bytes | bytearray | memoryview | np.ndarray,
    *,
    expected_root: bytes | None = None,
) -> Verdict:
    """Verify a whole result (raw bytes as served, or an array of the exact dtype and shape).

    With ``expected_root`` (the root the worker committed to), the result's Merkle root must
    equal it; without it only the arithmetic is checked (the caller checked the commitment).
    """
    try:
        arr = decode_result(prepared.spec, result)
    except ResultFormatError as exc:
        return _format_invalid(prepared, str(exc))
    if expected_root is not None:
        root = merkle_root(arr.data.cast("B"), arr.shape[0] * result_chunks(prepared.spec))
        if root != bytes(expected_root):
            return _format_invalid(
                prepared,
                "result does not match the committed root",
                root="0x" + root.hex(),
                expected_root="0x" + bytes(expected_root).hex(),
            )
    return get_kind(prepared.spec.kind).check_full(prepared, arr)


def check_sampled(
    prepared: Prepared, answer: SampledAnswer | bytes | bytearray | memoryview, root: bytes
) -> Verdict:
    """Verify a sampled-mode answer (encoded bytes or a decoded answer) against ``root``."""
    spec = prepared.spec
    if spec.mode != "sampled":
        raise SpecError(f"spec.verify.mode: job is in {spec.mode!r} mode, not sampled")
    if len(root) != 32:
        return _format_invalid(prepared, "committed root must be 32 bytes")
    if isinstance(spec.params, LlmSpec):  # its own answer format, decoded by the kind
        return get_kind(spec.kind).check_sampled(prepared, answer, bytes(root))
    (rows, cols), dtype = result_layout(spec)
    rounds = int(prepared.state.challenge.r.shape[1])
    y_dtype = np.dtype("<i8") if dtype.kind == "i" else np.dtype("<f4")
    if len(root) != 32:
        return _format_invalid(prepared, "committed root must be 32 bytes")
    if isinstance(answer, SampledAnswer):
        y = np.asarray(answer.y)
        if (
            y.dtype != y_dtype
            or y.shape != (rows, rounds)
            or any(len(o.row) != cols * dtype.itemsize for o in answer.openings)
        ):
            return _format_invalid(prepared, "answer has the wrong shape or dtype")
        decoded = answer
    else:
        try:
            decoded = decode_answer(
                answer, rows=rows, rounds=rounds, y_dtype=y_dtype, row_bytes=cols * dtype.itemsize
            )
        except ResultFormatError as exc:
            return _format_invalid(prepared, str(exc))
    return get_kind(spec.kind).check_sampled(prepared, decoded, bytes(root))


def verify_full(
    spec: Spec | bytes | str | dict[str, Any],
    seed: bytes | int,
    result: bytes | bytearray | memoryview | np.ndarray,
    *,
    store: BlobSource | None = None,
    expected_root: bytes | None = None,
) -> Verdict:
    """Both phases at once (for audits and tests)."""
    return check_full(prepare(spec, seed, store=store), result, expected_root=expected_root)
