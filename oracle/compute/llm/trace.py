"""The committed trace of a greedy generation: what an oracle later opens and checks.

Recorded while the worker generates (:func:`traced_generate`), through the forward pass's trace
hook, for every block l and every position t of the T = P + N − 1 positions run:

* a **main row** (l, t): [x_in (d), h_mid (d), gate (d_ff), up (d_ff)] float32 — the residual
  stream entering the block, after the attention add, and the two FFN projections. Everything
  else at (l, t) follows from these and the K/V rows by checks the oracle can afford: the
  normed inputs (RMSNorm of x_in and of h_mid), q, k and v (three small products recomputed),
  the attention output (recomputed from q and every K/V row up to t), attn_output (recomputed
  and compared with h_mid − x_in), silu(gate)·up, and ffn_down by Freivalds against
  x_in(l+1) − h_mid (the next block's x_in, or the final x_L).
* a **K/V row** (l, t): [k after RoPE (d_kv), v (d_kv)] float32 — what attention at any later
  position reads, so the oracle fetches every K/V row of the job.
* a **final row** per position t: x_L (d), the residual stream after the last block — what the
  last block's ffn_down is checked against, and at the positions that produced a token
  (P − 1 … T − 1) what the oracle recomputes the logits row from to check the token is its
  argmax.

Each table is committed by its row Merkle root (:mod:`oracle.compute.merkle`); the three roots
are row 0 of the job's result (:func:`oracle.protocol.results.encode_llm_result`), so the
result's commitment binds the whole trace. Sizes for SmolLM2-135M (d 576, d_ff 1536, d_kv 192, 30
blocks): main rows 16.5 KiB, K/V rows 1.5 KiB, per position and block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from oracle.compute.llm.forward_pass import KVCache, forward
from oracle.compute.llm.gguf_model import LlamaConfig, LlamaWeights
from oracle.compute.merkle import MerkleTree, merkle_root
from oracle.exceptions import InputError

__all__ = ["LlmTrace", "TraceBuffer", "main_width", "traced_generate"]

_F32 = np.float32


class TraceBuffer:
    """One reusable float32 allocation for main rows (275 MB for a 512 + 32 job on SmolLM2).

    A fresh ``np.empty`` of that size costs its page faults on every job: a traced generation
    took 1.34x the plain one with it and 1.07x with this buffer kept and reused
    (``bench/llm.py``). A trace's ``main`` is a view into the buffer, valid until the buffer
    serves the next generation; one buffer per worker thread."""

    def __init__(self) -> None:
        self._flat = np.empty(0, dtype=_F32)

    def take(self, shape: tuple[int, int, int]) -> np.ndarray:
        """A (layers, positions, width) float32 view, contents undefined."""
        size = shape[0] * shape[1] * shape[2]
        if self._flat.size < size:
            self._flat = np.empty(size, dtype=_F32)
        return self._flat[:size].reshape(shape)


def main_width(config: LlamaConfig) -> int:
    """Floats in one main row: x_in, h_mid (d each), gate, up (d_ff each)."""
    return 2 * config.d_model + 2 * config.d_ff


@dataclass
class LlmTrace:
    """A generation and its trace (module docstring)."""

    config: LlamaConfig
    prompt: tuple[int, ...]
    tokens: tuple[int, ...]  # generated, EOS included if it stopped there
    main: np.ndarray  # (n_layers, T, main_width) float32
    kv: np.ndarray  # (n_layers, T, 2·d_kv) float32
    final: np.ndarray  # (T, d_model) float32: x_L at every position

    @property
    def positions(self) -> int:
        """T = P + N − 1."""
        return int(self.main.shape[1])

    def main_tree(self) -> MerkleTree:
        """The Merkle tree over the main rows, in (block, position) order (kept by the worker:
        its proofs answer the challenge)."""
        layers, t, _ = self.main.shape
        flat = np.ascontiguousarray(self.main.reshape(layers * t, -1))
        return MerkleTree.from_rows(flat.data.cast("B"), layers * t)

    def roots(self, main_tree: MerkleTree | None = None) -> tuple[bytes, bytes, bytes]:
        """(main root, K/V root, final root): row Merkle roots, rows in (block, position)
        order for the first two."""
        layers, t, _ = self.main.shape
        main = (main_tree or self.main_tree()).root
        return main, _root(self.kv.reshape(layers * t, -1)), _root(self.final)


def _root(rows: np.ndarray) -> bytes:
    """Row Merkle root of a 2-D float32 array (made contiguous if it is a strided view)."""
    flat = np.ascontiguousarray(rows)
    return merkle_root(flat.data.cast("B"), flat.shape[0])


class _Recorder:
    """The forward's trace hook, writing main rows for positions [start, start + rows)."""

    def __init__(self, trace: LlmTrace, weights: LlamaWeights) -> None:
        self.trace = trace
        self.weights = weights
        self.start = 0
        self.rows = 0
        self.h: np.ndarray | None = None  # the residual stream of the current call

    def begin(self, start: int, ids: Sequence[int]) -> None:
        self.start, self.rows = start, len(ids)
        self.h = self.weights.token_embd[np.asarray(ids)].astype(_F32, copy=True)

    def __call__(self, layer: int, name: str, x: np.ndarray, y: np.ndarray) -> None:
        cfg = self.trace.config
        d, ff = cfg.d_model, cfg.d_ff
        if layer >= cfg.n_layers:
            return  # the output head: its rows are recomputed by the oracle
        rows = self.trace.main[layer, self.start : self.start + self.rows]
        assert self.h is not None
        if name == "attn_q":
            rows[:, :d] = self.h  # x_in
        elif name == "attn_output":
            self.h += y  # exactly the forward's own `h += attn`
            rows[:, d : 2 * d] = self.h  # h_mid
        elif name == "ffn_gate":
            rows[:, 2 * d : 2 * d + ff] = y
        elif name == "ffn_up":
            rows[:, 2 * d + ff :] = y
        elif name == "ffn_down":
            self.h += y  # `h += down`: the next block's x_in


def traced_generate(
    weights: LlamaWeights,
    prompt: Sequence[int],
    max_new_tokens: int,
    *,
    eos_id: int | None,
    buffer: TraceBuffer | None = None,
) -> LlmTrace:
    """Greedy generation (as :func:`oracle.compute.llm.greedy_generate`) recording its trace
    (main rows in ``buffer`` if given: see :class:`TraceBuffer`)."""
    cfg = weights.config
    ids = [int(i) for i in prompt]
    if not ids:
        raise InputError("the prompt has no tokens")
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    cap = len(ids) + max_new_tokens - 1
    trace = LlmTrace(
        config=cfg,
        prompt=tuple(ids),
        tokens=(),
        main=(buffer or TraceBuffer()).take((cfg.n_layers, cap, main_width(cfg))),
        kv=np.empty((0,), dtype=_F32),
        final=np.empty((cap, cfg.d_model), dtype=_F32),
    )
    rec = _Recorder(trace, weights)
    cache = KVCache(cfg, cap)
    new: list[int] = []
    feed = ids
    while True:
        rec.begin(cache.length, feed)
        logits = forward(weights, feed, cache, trace=rec)
        assert rec.h is not None
        trace.final[rec.start : rec.start + rec.rows] = rec.h
        nxt = int(np.argmax(logits))
        new.append(nxt)
        if (eos_id is not None and nxt == eos_id) or len(new) >= max_new_tokens:
            break
        feed = [nxt]
    t = cache.length
    trace.main = trace.main[:, :t]
    trace.final = trace.final[:t]
    trace.tokens = tuple(new)
    d_kv, hd, nkv = cfg.d_kv, cfg.head_dim, cfg.n_kv_heads
    kv = np.empty((cfg.n_layers, t, 2 * d_kv), dtype=_F32)
    for layer in range(cfg.n_layers):
        kv[layer, :, :d_kv] = cache.k[layer][:, :t].transpose(1, 0, 2).reshape(t, nkv * hd)
        kv[layer, :, d_kv:] = cache.v[layer][:, :t].transpose(1, 0, 2).reshape(t, nkv * hd)
    trace.kv = kv
    return trace
