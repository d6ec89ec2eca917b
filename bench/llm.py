"""The LLM worker's baseline on the default model: plain inference, before any trace or check.

Run: `.venv/bin/python bench/llm.py [--prompt 512] [--new 32] [--reps 3]` (part of `make bench`).
On SmolLM2-135M-Instruct (Q4_1 file, dequantized to float32 once, not timed):

* a greedy generation of ``--new`` tokens after a ``--prompt``-token prompt (the job the llm
  kind's figures are stated for: 512 + 32), median of ``--reps``, split into the batched
  prefill and the decode steps;
* the prefill's FLOP rate (its counted FLOPs, :func:`oracle.compute.llm.forward_work`, over its
  seconds) against numpy's GEMM rate on the same shapes (every linear map of the prefill as
  one fp32 GEMM of (prompt × d_in)·(d_in × d_out), timed alone):
  ``llm_worker_prefill_vs_numpy_gemm`` (target >= 0.5, goal >= 0.8).

Writes ``llm_*`` keys to bench/results.json. The figures of verification (the oracle's share,
the worker's trace overhead, bytes fetched) come with the llm job kind's checks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._results import merge_results  # noqa: E402
from oracle.compute.llm import (  # noqa: E402
    DEFAULT_MODEL_FILE,
    KVCache,
    forward,
    forward_work,
    load_llama_gguf,
)


def _median(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    path = ROOT / ".pouw" / "models" / DEFAULT_MODEL_FILE
    t0 = time.perf_counter()
    model = load_llama_gguf(path)
    load_s = time.perf_counter() - t0
    w = model.weights
    cfg = w.config
    rng = np.random.default_rng(0)
    prompt = rng.integers(3, cfg.vocab_size, args.prompt).tolist()

    def prefill() -> KVCache:
        cache = KVCache(cfg, args.prompt + args.new)
        forward(w, prompt, cache, logits="last")
        return cache

    def generate() -> None:
        cache = KVCache(cfg, args.prompt + args.new)
        logits = forward(w, prompt, cache, logits="last")
        for _ in range(args.new - 1):
            token = int(np.argmax(logits))
            logits = forward(w, [token], cache, logits="last")

    prefill()  # warm BLAS and the allocator
    prefill_s = _median(prefill, args.reps)
    total_s = _median(generate, args.reps)
    decode_s = (total_s - prefill_s) / max(args.new - 1, 1)
    work = forward_work(cfg, args.prompt, 1)  # the prefill: P positions, one head row
    prefill_flops = work.linear + work.attention + work.output_head
    shapes = []
    for layer in w.layers:
        for name in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
            shapes.append(getattr(layer, name))
    xs = {
        m.shape[1]: rng.standard_normal((args.prompt, m.shape[1])).astype(np.float32)
        for m in shapes
    }

    def gemms() -> None:
        for m in shapes:
            xs[m.shape[1]] @ m.T

    gemms()
    gemm_s = _median(gemms, args.reps)
    gemm_flops = sum(2 * args.prompt * m.shape[0] * m.shape[1] for m in shapes)
    prefill_rate = prefill_flops / prefill_s
    gemm_rate = gemm_flops / gemm_s
    job = f"p{args.prompt}_g{args.new}"
    out = {
        "llm_model_load_s": load_s,
        f"llm_prefill_s_p{args.prompt}": prefill_s,
        "llm_decode_s_per_token": decode_s,
        f"llm_plain_inference_s_{job}": total_s,
        "llm_prefill_gflops": prefill_rate / 1e9,
        "llm_numpy_gemm_gflops": gemm_rate / 1e9,
        "llm_worker_prefill_vs_numpy_gemm": prefill_rate / gemm_rate,
    }
    table = Table(title=f"llm worker baseline: SmolLM2-135M, prompt {args.prompt}, {args.new} new")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("model load (GGUF → float32), s", f"{load_s:.2f}")
    table.add_row(f"prefill of {args.prompt} tokens, s", f"{prefill_s:.3f}")
    table.add_row("decode, ms per token", f"{decode_s * 1e3:.1f}")
    table.add_row(f"whole generation ({job}), s", f"{total_s:.3f}")
    table.add_row("prefill GFLOP/s (counted FLOPs)", f"{prefill_rate / 1e9:.1f}")
    table.add_row("numpy fp32 GEMM GFLOP/s, same shapes", f"{gemm_rate / 1e9:.1f}")
    table.add_row("prefill / GEMM (target >= 0.5)", f"{prefill_rate / gemm_rate:.2f}")
    Console().print(table)
    merge_results(out)
    return out


if __name__ == "__main__":
    main()
