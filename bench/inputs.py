"""Seeded input generation: the keccak counter-mode stream against today's SFC64 stream.

Run: ``python bench/inputs.py [--n 4096] [--reps 7]``. Generates a seeded matmul job's A and B
(n×n each) both ways, round-robin ``--reps`` times after one untimed call of each (the keccak
kernel compiled or loaded from numba's cache), and reports the medians:

* SFC64 — :func:`oracle.compute.rng.generate_tensor` for tensors 0 and 1 (what seeded jobs use
  today);
* keccak — :func:`oracle.compute.keccak_inputs.keccak_matmul_inputs` (A by rows, B by
  columns: the generator a contract regenerates for a single-entry dispute).

Writes ``input_gen_keccak_vs_sfc64`` (int8, the ratio of the medians; issue 15's target
≤ 1.5), ``input_gen_keccak_vs_sfc64_fp32`` and the seconds of each to bench/results.json.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._results import merge_results  # noqa: E402
from oracle.compute.keccak_inputs import keccak_matmul_inputs  # noqa: E402
from oracle.compute.rng import generate_tensor  # noqa: E402

SEED = 20241205


def _medians(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    n = args.n
    out: dict[str, float] = {}
    table = Table(title=f"seeded inputs A and B, {n}×{n} each (median of {args.reps})")
    for col in ("dtype", "SFC64 s", "keccak s", "keccak / SFC64"):
        table.add_column(col, justify="right")
    for dtype in ("int8", "fp32"):
        t = _medians(
            {
                "sfc64": lambda d=dtype: [
                    generate_tensor(SEED, i, (n, n), d)  # type: ignore[arg-type]
                    for i in (0, 1)
                ],
                "keccak": lambda d=dtype: keccak_matmul_inputs(SEED, n, n, n, d),  # type: ignore[arg-type]
            },
            args.reps,
        )
        ratio = t["keccak"] / t["sfc64"]
        table.add_row(dtype, f"{t['sfc64']:.4f}", f"{t['keccak']:.4f}", f"{ratio:.2f}")
        suffix = "" if dtype == "int8" else "_fp32"
        out[f"input_gen_keccak_vs_sfc64{suffix}"] = round(ratio, 3)
        out[f"input_gen_sfc64_s_{dtype}_{n}"] = round(t["sfc64"], 5)
        out[f"input_gen_keccak_s_{dtype}_{n}"] = round(t["keccak"], 5)
    Console().print(table)
    merge_results(out)
    return out


if __name__ == "__main__":
    main()
