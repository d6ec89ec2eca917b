"""Greedy decoding: prefill the prompt in one batched forward, then one token per step.

The first new token is the argmax of the prefill's last-position logits; every later token is
the argmax of a one-position forward of the previous token against the KV cache. Decoding stops
after ``max_new_tokens`` tokens or right after the EOS id is produced (the EOS id is included
in the output and never fed back). Ties in the argmax go to the lowest id (``np.argmax``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from oracle.compute.llm.forward_pass import KVCache, TraceHook, forward
from oracle.compute.llm.gguf_model import LlamaWeights
from oracle.exceptions import InputError

__all__ = ["Generation", "greedy_generate"]


@dataclass(frozen=True)
class Generation:
    """The result of :func:`greedy_generate`."""

    prompt: tuple[int, ...]
    tokens: tuple[int, ...]  # the new tokens, EOS included when it stopped decoding
    stopped_at_eos: bool
    forward_positions: int  # positions run through the blocks: len(prompt) + len(tokens) − 1


def greedy_generate(
    weights: LlamaWeights,
    prompt: Sequence[int],
    max_new_tokens: int,
    *,
    eos_id: int | None = None,
    trace: TraceHook | None = None,
) -> Generation:
    """Greedy continuation of ``prompt`` (token ids); see the module docstring."""
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be ≥ 1, got {max_new_tokens}")
    ids = [int(i) for i in prompt]
    if not ids:
        raise InputError("the prompt has no tokens")
    cache = KVCache(weights.config, len(ids) + max_new_tokens)
    logits = forward(weights, ids, cache, trace=trace)
    new: list[int] = []
    while True:
        nxt = int(np.argmax(logits))
        new.append(nxt)
        if (eos_id is not None and nxt == eos_id) or len(new) >= max_new_tokens:
            break
        logits = forward(weights, [nxt], cache, trace=trace)
    return Generation(
        prompt=tuple(ids),
        tokens=tuple(new),
        stopped_at_eos=eos_id is not None and new[-1] == eos_id,
        forward_positions=cache.length,
    )
