"""Verification cost against compute cost, measured side by side; merged into bench/results.json.

Run: ``python bench/bench_verify.py`` (n = 1024, 2048, 4096) or ``--quick`` (n = 256, 512, 1024;
the headline ``*_4096_*`` keys are only written by the full run).

Definitions (all best-of-``reps`` wall seconds on this machine, one process):

* compute — ``oracle.compute.work.compute`` (the worker's job API) on materialized inputs;
  compute, raw, verify (full) and verify (sampled) run round-robin in one loop and each keeps
  its best time, so load from other processes hits numerator and denominator alike;
* raw — the same product without the API: ``a @ b`` for fp32; for int8 the fastest honest
  exact numpy method, which is the one the backend uses (int8 → fp32, k-blocked fp32 GEMMs of
  k ≤ 1024, exact because partial sums stay below 2^24, summed in int32), inlined here;
* verify — from holding the result (full: the decoded array; sampled: the answer's bytes) to
  the verdict: ``check_full`` / ``check_sampled``. Seed-only work (``prepare``) is excluded and
  reported separately; the Merkle root of a full result (compiled keccak, 8 leaves per
  permutation, both cores) and its content hash (keccak at ~0.45 GB/s on one thread) are also
  reported separately (``*_root_*``, ``content_hash_s``). ``prepare`` also compiles, or loads
  from numba's on-disk cache, the kernels the checks use (once per process, ~0.3 s warm,
  ~5 s cold; best-of keeps it out of ``prepare_*`` as it is not a per-job cost);
* oracle total (seeded int8, sampled mode) — regenerate inputs + prepare + check_sampled;
  worker total — generate inputs + compute + Merkle root (for the commitment) + answer.
  The same ratio for full mode adds the Merkle root to both sides (the worker commits to it,
  the oracle checks the served result against it) and the content hash to the worker, which
  names its blob by it (``oracle_total_ratio_int8_4096_seeded_full``); the oracle does not
  hash the content, as the root check binds it (``HttpBlobClient.get(check_hash=False)``).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import merge_results  # noqa: E402
from oracle.compute.merkle import chunks_per_row, merkle_root  # noqa: E402
from oracle.compute.verify import check_full, check_sampled, prepare  # noqa: E402
from oracle.compute.work import answer_challenge, compute, load_inputs, result_tree  # noqa: E402
from oracle.protocol.results import encode_result  # noqa: E402
from oracle.protocol.spec import Spec, parse_spec  # noqa: E402
from oracle.protocol.verdict import VerdictCode  # noqa: E402
from oracle.store.blobs import blob_name  # noqa: E402

SEED = bytes.fromhex("5e" * 32)
OPENINGS = 32


def best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Best wall time of ``reps`` calls and the last return value."""
    out: Any = None
    times = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def interleaved(
    fns: dict[str, Callable[[], Any]], reps: int, inner: dict[str, int]
) -> dict[str, float]:
    """Best wall time of each function, the functions run round-robin ``reps`` times.

    Interleaving makes a burst of load from another process hit every measurement alike, so
    the ratios between them stay honest on a shared machine. ``inner[name]`` extra calls per
    round for cheap functions (each timed separately; the minimum counts).
    """
    out = {name: float("inf") for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            for _ in range(inner.get(name, 1)):
                gc.collect()
                t0 = time.perf_counter()
                fn()
                out[name] = min(out[name], time.perf_counter() - t0)
    return out


def raw_int8(a8: np.ndarray, b8: np.ndarray) -> np.ndarray:
    """The raw exact int8 baseline (same method as the backend, no API around it)."""
    a, b = a8.astype(np.float32), b8.astype(np.float32)
    m, k = a.shape
    out = np.empty((m, b.shape[1]), dtype=np.int32)
    buf = np.empty((m, b.shape[1]), dtype=np.float32)
    tmp = np.empty_like(out)
    for i, lo in enumerate(range(0, k, 1024)):
        np.matmul(a[:, lo : lo + 1024], b[lo : lo + 1024], out=buf)
        if i == 0:
            np.copyto(out, buf, casting="unsafe")
        else:
            np.copyto(tmp, buf, casting="unsafe")
            np.add(out, tmp, out=out)
    return out


def spec_for(dtype: str, n: int, mode: str) -> Spec:
    verify: dict[str, Any] = {"mode": mode}
    if mode == "sampled":
        verify["openings"] = OPENINGS
    return parse_spec(
        {
            "version": 1,
            "kind": "matmul",
            "dtype": dtype,
            "m": n,
            "n": n,
            "k": n,
            "inputs": {"seed": 20240601 + n},
            "verify": verify,
        }
    )


def peak_ratio(fn: Callable[[], Any], base_bytes: int) -> float:
    """Peak traced allocation during ``fn`` / ``base_bytes`` (numpy reports to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / base_bytes


def bench_size(dtype: str, n: int, reps: int) -> dict[str, float]:
    """All numbers for one dtype and size."""
    full = spec_for(dtype, n, "full")
    sampled = spec_for(dtype, n, "sampled")
    t_gen, inputs = best(lambda: load_inputs(full), reps)
    c = compute(full, inputs=inputs)
    c_raw = raw_int8(inputs.a, inputs.b) if dtype == "int8" else inputs.a @ inputs.b
    assert c_raw.shape == c.shape
    del c_raw
    c_bytes = c.nbytes
    raw = encode_result(c)

    t_prep, prepared = best(lambda: prepare(full, SEED, inputs=inputs), reps)
    leaves = n * chunks_per_row(n, 4)  # the result tree's leaves: row chunks
    t_root, root = best(lambda: merkle_root(raw, leaves), reps)
    t_hash, _ = best(lambda: blob_name(raw), reps)
    t_prep_s, prepared_s = best(lambda: prepare(sampled, SEED, inputs=inputs), reps)
    t_tree, tree = best(lambda: result_tree(sampled, c), 1)
    t_answer, answer = best(lambda: answer_challenge(sampled, c, SEED, tree=tree), reps)
    assert tree.root == root
    verdict = check_full(prepared, c)
    assert verdict.verdict is VerdictCode.VALID, verdict.reason
    verdict_s = check_sampled(prepared_s, answer, tree.root)
    assert verdict_s.verdict is VerdictCode.VALID, verdict_s.reason

    def raw_product() -> Any:
        return raw_int8(inputs.a, inputs.b) if dtype == "int8" else inputs.a @ inputs.b

    # compute, raw and both verifications round-robin in one loop: contention hits all alike
    timed = interleaved(
        {
            "compute": lambda: compute(full, inputs=inputs),
            "raw": raw_product,
            "verify": lambda: check_full(prepared, c),
            "verify_s": lambda: check_sampled(prepared_s, answer, tree.root),
        },
        max(reps, 4),
        {"verify": 3, "verify_s": 3},
    )
    t_compute, t_raw = timed["compute"], timed["raw"]
    t_verify, t_check_s = timed["verify"], timed["verify_s"]

    def full_verify_once() -> None:
        p = prepare(full, SEED, inputs=inputs)
        check_full(p, c)

    mem = peak_ratio(full_verify_once, inputs.a.nbytes + inputs.b.nbytes + c_bytes)

    oracle_sampled = t_gen + t_prep_s + t_check_s
    worker_sampled = t_gen + t_compute + t_tree + t_answer
    oracle_full = t_gen + t_prep + t_root + t_verify
    worker_full = t_gen + t_compute + t_root + t_hash
    return {
        "gen_s": t_gen,
        "compute_s": t_compute,
        "raw_s": t_raw,
        "prepare_full_s": t_prep,
        "verify_full_s": t_verify,
        "root_s": t_root,
        "content_hash_s": t_hash,
        "prepare_sampled_s": t_prep_s,
        "answer_s": t_answer,
        "verify_sampled_s": t_check_s,
        "verify_ratio_full": t_verify / t_compute,
        "verify_ratio_full_with_root": (t_verify + t_root) / t_compute,
        "verify_ratio_sampled": t_check_s / t_compute,
        "verify_gbps_full": c_bytes / t_verify / 1e9,
        "sampled_bytes_ratio": len(answer) / c_bytes,
        "worker_vs_numpy": t_raw / t_compute,
        "worker_vs_numpy_incl_gen": t_raw / (t_compute + t_gen),
        "oracle_total_ratio_sampled": oracle_sampled / worker_sampled,
        "oracle_total_ratio_full": oracle_full / worker_full,
        "peak_mem_ratio_full": mem,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 256, 512, 1024")
    args = parser.parse_args()
    sizes = [256, 512, 1024] if args.quick else [1024, 2048, 4096]
    reps = 2 if args.quick else 3
    console = Console(width=200)
    results: dict[tuple[str, int], dict[str, float]] = {}
    for dtype in ("fp32", "int8"):
        for n in sizes:
            console.print(f"[dim]measuring {dtype} n={n}…[/dim]")
            results[(dtype, n)] = bench_size(dtype, n, reps)

    seconds = Table(title="seconds (best of runs)")
    for col in (
        "job",
        "gen",
        "compute",
        "raw",
        "prepare",
        "verify full",
        "root",
        "hash",
        "prepare smp",
        "answer",
        "verify smp",
    ):
        seconds.add_column(col, justify="right")
    ratios = Table(title="ratios")
    for col in (
        "job",
        "verify/compute full",
        "+root",
        "sampled",
        "GB/s full",
        "sampled bytes/C",
        "worker/numpy",
        "oracle/worker smp",
        "oracle/worker full",
        "peak mem/(in+out)",
    ):
        ratios.add_column(col, justify="right")
    out: dict[str, float] = {}
    for (dtype, n), r in results.items():
        seconds.add_row(
            f"{dtype} {n}",
            *(
                f"{r[k]:.4f}"
                for k in (
                    "gen_s",
                    "compute_s",
                    "raw_s",
                    "prepare_full_s",
                    "verify_full_s",
                    "root_s",
                    "content_hash_s",
                    "prepare_sampled_s",
                    "answer_s",
                    "verify_sampled_s",
                )
            ),
        )
        ratios.add_row(
            f"{dtype} {n}",
            f"{r['verify_ratio_full']:.4f}",
            f"{r['verify_ratio_full_with_root']:.4f}",
            f"{r['verify_ratio_sampled']:.4f}",
            f"{r['verify_gbps_full']:.1f}",
            f"{r['sampled_bytes_ratio']:.4f}",
            f"{r['worker_vs_numpy']:.3f}",
            f"{r['oracle_total_ratio_sampled']:.4f}",
            f"{r['oracle_total_ratio_full']:.4f}",
            f"{r['peak_mem_ratio_full']:.2f}",
        )
        for key in (
            "verify_ratio_full",
            "verify_ratio_full_with_root",
            "verify_ratio_sampled",
            "verify_gbps_full",
            "sampled_bytes_ratio",
            "worker_vs_numpy",
            "worker_vs_numpy_incl_gen",
            "oracle_total_ratio_sampled",
            "oracle_total_ratio_full",
            "peak_mem_ratio_full",
            "compute_s",
            "verify_full_s",
            "verify_sampled_s",
            "prepare_full_s",
            "root_s",
        ):
            out[f"{key}_{dtype}_{n}"] = round(r[key], 6)
    console.print(seconds)
    console.print(ratios)

    if (("fp32", 4096) in results) and (("int8", 4096) in results):
        f, i = results[("fp32", 4096)], results[("int8", 4096)]
        out.update(
            {
                "verify_ratio_fp32_4096_full": round(f["verify_ratio_full"], 6),
                "verify_ratio_fp32_4096_sampled": round(f["verify_ratio_sampled"], 6),
                "verify_ratio_int8_4096_full": round(i["verify_ratio_full"], 6),
                "verify_ratio_int8_4096_sampled": round(i["verify_ratio_sampled"], 6),
                "oracle_total_ratio_int8_4096_seeded": round(i["oracle_total_ratio_sampled"], 6),
                "oracle_total_ratio_int8_4096_seeded_full": round(i["oracle_total_ratio_full"], 6),
                "worker_vs_numpy": round(min(f["worker_vs_numpy"], i["worker_vs_numpy"]), 6),
            }
        )
        headline = Table(title="headline keys (n = 4096)")
        headline.add_column("key")
        headline.add_column("value", justify="right")
        for key in (
            "verify_ratio_fp32_4096_full",
            "verify_ratio_fp32_4096_sampled",
            "verify_ratio_int8_4096_full",
            "verify_ratio_int8_4096_sampled",
            "oracle_total_ratio_int8_4096_seeded",
            "oracle_total_ratio_int8_4096_seeded_full",
            "worker_vs_numpy",
        ):
            headline.add_row(key, f"{out[key]:.5f}")
        console.print(headline)
    merge_results(out)
    console.print(f"merged {len(out)} numbers into bench/results.json")


if __name__ == "__main__":
    main()
