"""``llm``: greedy generation on a Llama-architecture GGUF model, verified from its committed
trace (:mod:`oracle.compute.llm`).

* **Inputs**: the model, named by its blob in the spec, fetched and loaded once per process
  (:mod:`oracle.compute.llm.model_cache`); its shape must be the spec's.
* **Compute** (worker): :func:`~oracle.compute.llm.trace.traced_generate`; the result is the
  trace's three roots and the tokens (:func:`oracle.protocol.results.encode_llm_result`). The
  trace stays in a bounded in-memory cache (:class:`TraceCache`) until the challenge comes; a
  worker that lost it (restart, eviction) generates again and answers only if the result is
  the one it committed.
* **Answer** (worker): the challenge's opened main rows with proofs, every K/V and final row,
  and the result itself (:mod:`oracle.compute.llm.answer`).
* **Prepare** (oracle, seed only): the Freivalds matrices and Wᵀr of every FFN map.
* **Check** (oracle): the answer's result must open the commitment; then the rules of the
  stopping token (no EOS before the last token; fewer than ``max_new_tokens`` only if the last
  one is EOS) and every check of :mod:`oracle.compute.llm.verify`.

llm jobs are verified in sampled mode only: the full trace (1.2 MB per token for SmolLM2) is
never transferred.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.compute.backend import Backend
from oracle.compute.kinds.base import BlobSource, Prepared, result_chunks, seed_hex
from oracle.compute.llm.answer import decode_llm_answer, encode_llm_answer
from oracle.compute.llm.model_cache import MODELS, LoadedModel
from oracle.compute.llm.trace import LlmTrace, TraceBuffer, traced_generate
from oracle.compute.llm.verify import (
    FreivaldsPrep,
    answer_challenge,
    llm_challenge,
    prepare_freivalds,
    verify_answer,
)
from oracle.compute.merkle import MerkleTree, merkle_root
from oracle.compute.rng import seed_to_int
from oracle.exceptions import InputError, ResultFormatError, SpecError
from oracle.protocol.results import (
    SampledAnswer,
    decode_llm_result,
    encode_llm_result,
    result_layout,
)
from oracle.protocol.spec import LlmSpec, Spec
from oracle.protocol.verdict import Verdict, VerdictCode, make_verdict

__all__ = ["TRACES", "LlmKind", "TraceCache"]


def _p(spec: Spec) -> LlmSpec:
    if not isinstance(spec.params, LlmSpec):
        raise SpecError("spec.kind: not an llm spec")
    return spec.params


@dataclass
class _Entry:
    trace: LlmTrace
    tree: MerkleTree
    buffer: TraceBuffer
    nbytes: int


class TraceCache:
    """Traces by result root, up to ``max_bytes`` of them (least recently used out first).

    An evicted trace's buffer serves the next generation (a fresh 275 MB allocation per job
    costs its page faults: :class:`~oracle.compute.llm.trace.TraceBuffer`). Answers are cut
    from a trace under the cache's lock, so a buffer is never reused while one is read."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._spare: TraceBuffer | None = None
        self._lock = threading.Lock()

    def buffer(self) -> TraceBuffer:
        """A buffer for the next generation (a spare one if there is one)."""
        with self._lock:
            spare, self._spare = self._spare, None
        return spare or TraceBuffer()

    def put(self, key: bytes, trace: LlmTrace, tree: MerkleTree, buffer: TraceBuffer) -> None:
        """Keep ``trace`` (generated into ``buffer``) under ``key``."""
        nbytes = trace.main.nbytes + trace.kv.nbytes + trace.final.nbytes
        with self._lock:
            self._entries[key] = _Entry(trace, tree, buffer, nbytes)
            self._entries.move_to_end(key)
            total = sum(e.nbytes for e in self._entries.values())
            while total > self.max_bytes and len(self._entries) > 1:
                _, old = self._entries.popitem(last=False)
                total -= old.nbytes
                self._spare = old.buffer

    def answer(self, key: bytes, fn: Any) -> Any:
        """``fn(trace, tree)`` under the lock, or None if ``key`` is not cached."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return fn(entry.trace, entry.tree)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


#: The worker process's traces: ``$POUW_LLM_TRACE_CACHE_MB`` (default 1024) MB of them.
TRACES = TraceCache(int(os.environ.get("POUW_LLM_TRACE_CACHE_MB", "1024")) << 20)


@dataclass
class _State:
    model: LoadedModel
    prep: FreivaldsPrep


class LlmKind:
    """The ``llm`` kind (module docstring)."""

    name = "llm"

    def load_inputs(self, spec: Spec, store: BlobSource | None) -> LoadedModel:
        """The spec's model, loaded (and its shape checked)."""
        p = _p(spec)
        return MODELS.load(p.model.blob, store, p.model)

    def compute(self, spec: Spec, inputs: LoadedModel, backend: Backend | None) -> np.ndarray:
        """Generate with the trace; keep the trace for the challenge; return the result."""
        p = _p(spec)
        buffer = TRACES.buffer()
        trace = traced_generate(
            inputs.model.weights, p.prompt, p.max_new_tokens, eos_id=p.eos, buffer=buffer
        )
        tree = trace.main_tree()
        data = encode_llm_result(spec, trace.roots(tree), trace.tokens)
        (rows, cols), dtype = result_layout(spec)
        TRACES.put(merkle_root(data, rows * result_chunks(spec)), trace, tree, buffer)
        return np.frombuffer(data, dtype=dtype).reshape(rows, cols).copy()

    def prepare(self, spec: Spec, seed: bytes | int, inputs: LoadedModel) -> Prepared:
        """The Freivalds matrices (independent of T) and Wᵀr for every FFN map."""
        p = _p(spec)
        w = inputs.model.weights
        t_max = len(p.prompt) + p.max_new_tokens - 1
        ch = llm_challenge(w, len(p.prompt), t_max, seed, spec.hash, p.openings)
        prep = prepare_freivalds(w, ch, inputs.checks)  # checks: built once per model
        return Prepared(spec, seed_to_int(seed), _State(inputs, prep))

    def check_full(self, prepared: Prepared, result: np.ndarray) -> Verdict:
        """Not supported: llm jobs are verified in sampled mode only."""
        raise SpecError("spec.verify.mode: llm supports sampled mode only")

    def check_sampled(self, prepared: Prepared, answer: Any, root: bytes) -> Verdict:
        """Verify an encoded answer (module docstring) against the committed result root."""
        spec = prepared.spec
        p = _p(spec)
        st: _State = prepared.state
        base: dict[str, Any] = {
            "kind": "llm",
            "mode": "sampled",
            "spec_hash": "0x" + spec.hash.hex(),
            "seed": seed_hex(prepared.seed),
        }

        def invalid(reason: str, **extra: Any) -> Verdict:
            return make_verdict(VerdictCode.INVALID, reason, {**base, **extra})

        if isinstance(answer, SampledAnswer):
            return invalid("answer is not an llm answer")
        try:
            got = decode_llm_answer(spec, answer)
            rows = result_layout(spec)[0][0]
            if merkle_root(got.result, rows * result_chunks(spec)) != bytes(root):
                return invalid("result does not match the committed root")
            roots, tokens = decode_llm_result(spec, got.result)
        except ResultFormatError as exc:
            return invalid(str(exc))
        n_prompt = len(p.prompt)
        if got.t != n_prompt + len(tokens) - 1:
            return invalid("trace length does not match prompt and tokens")
        if p.eos is not None and p.eos in tokens[:-1]:
            return invalid("generation continued past the end-of-sequence token")
        if len(tokens) < p.max_new_tokens and tokens[-1] != p.eos:
            return invalid("generation stopped early without the end-of-sequence token")
        w = st.model.model.weights
        ch = llm_challenge(w, n_prompt, got.t, prepared.seed, spec.hash, p.openings)
        if not np.array_equal(ch.positions, got.positions):
            return invalid("answer opens other positions than the challenge")
        res = verify_answer(w, p.prompt, tokens, roots, got.answer, ch, st.prep, st.model.checks)
        extra = {"tokens": len(tokens), "opened": int(ch.positions.size)}
        if not res.ok:
            return invalid(res.reason, **extra)
        return make_verdict(VerdictCode.VALID, res.reason, {**base, **extra})

    def answer(
        self,
        spec: Spec,
        result: np.ndarray,
        seed: bytes | int,
        tree: MerkleTree,
        store: BlobSource | None = None,
    ) -> bytes:
        """The encoded answer, from the cached trace, or from a generation run again (which
        must reproduce the committed result)."""
        p = _p(spec)
        data = np.ascontiguousarray(result).tobytes()
        _, tokens = decode_llm_result(spec, data)
        t = len(p.prompt) + len(tokens) - 1
        model = MODELS.load(p.model.blob, store, p.model)
        ch = llm_challenge(model.model.weights, len(p.prompt), t, seed, spec.hash, p.openings)

        def cut(trace: LlmTrace, main_tree: MerkleTree) -> bytes:
            return encode_llm_answer(data, ch.positions, answer_challenge(trace, ch, main_tree))

        out = TRACES.answer(tree.root, cut)
        if out is None:
            again = self.compute(spec, model, backend=None)
            if again.tobytes() != data:
                raise InputError("generating again did not reproduce the committed result")
            out = TRACES.answer(tree.root, cut)
            if out is None:
                raise InputError("the trace was evicted before it could answer")
        assert isinstance(out, bytes)
        return out
