"""Exact work of a greedy generation, in floating-point operations (2 per multiply-add).

What is counted, for a prompt of P tokens and N ≥ 1 generated tokens (the forward runs
T = P + N − 1 positions: the prompt, then every generated token but the last, which is never
fed back; the output head runs once per generated token):

* every linear map of every block, per position:
  d·d_q (attn_q) + 2·d·d_kv (attn_k, attn_v) + d_q·d (attn_output) + 3·d·d_ff (ffn_gate,
  ffn_up, ffn_down) multiply-adds, with d = d_model, d_q = n_heads·head_dim,
  d_kv = n_kv_heads·head_dim;
* attention's two products: the query at position p (0-based) meets p + 1 keys in every
  query head, so QK^T and AV are n_heads·head_dim·(p + 1) multiply-adds each — the causal
  triangle only (a batched prefill also multiplies the masked entries above the diagonal;
  that is the implementation's waste, not work, and is not counted);
* the output head: d·vocab multiply-adds per generated token.

Not counted: RMSNorm, RoPE, SiLU and the gating product, residual additions and the embedding
lookup (a few operations per element of a d- or d_ff-wide row: ~10^4 per position and block
for SmolLM2 against 3.5·10^6 multiply-adds of its linear maps), and the score scaling and
softmax (~5 operations per score against 4·head_dim = 256 FLOPs per score in QK^T and AV).

SmolLM2-135M, P = 6, N = 8: 3.22 GFLOP = 2.760e9 linear + 6.29e6 attention + 4.53e8 head.
"""

from __future__ import annotations

from dataclasses import dataclass

from oracle.compute.llm.gguf_model import LlamaConfig
from oracle.exceptions import InputError

__all__ = ["ForwardWork", "forward_work", "linear_macs_per_position"]


@dataclass(frozen=True)
class ForwardWork:
    """FLOPs (2 per multiply-add) of a generation, by part."""

    linear: int  # the blocks' linear maps
    attention: int  # QK^T and AV over the causal triangle
    output_head: int  # the logits of each generated token
    positions: int  # T = P + N − 1 positions run through the blocks

    @property
    def total(self) -> int:
        """All counted FLOPs."""
        return self.linear + self.attention + self.output_head


def linear_macs_per_position(config: LlamaConfig) -> int:
    """Multiply-adds of one block's linear maps for one position."""
    d = config.d_model
    return d * config.d_q + 2 * d * config.d_kv + config.d_q * d + 3 * d * config.d_ff


def forward_work(config: LlamaConfig, n_prompt: int, n_new: int) -> ForwardWork:
    """The counted FLOPs of greedily generating ``n_new`` tokens after ``n_prompt`` (module doc).

    ``n_new`` is the number of tokens actually produced (an EOS that stopped decoding counts).
    """
    if n_prompt < 1 or n_new < 1:
        raise InputError(f"work units need n_prompt ≥ 1 and n_new ≥ 1, got {n_prompt}, {n_new}")
    t = n_prompt + n_new - 1
    linear = config.n_layers * t * linear_macs_per_position(config)
    keys_seen = t * (t + 1) // 2  # Σ_{p<t} (p + 1)
    attention = config.n_layers * 2 * config.n_heads * config.head_dim * keys_seen
    head = n_new * config.d_model * config.vocab_size
    return ForwardWork(
        linear=2 * linear, attention=2 * attention, output_head=2 * head, positions=t
    )
