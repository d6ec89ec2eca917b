"""Statement coverage of contracts/ on anvil, from Ape's coverage report.

Runs the contract suite on anvil (`ape test tests/contracts --network ethereum:local:foundry
--coverage`, the slow stateful test left out: it reaches no extra statement), takes Ape's
statement counts per contract from its terminal report (its per-line XML attributes
statements to docstring and signature lines, so it is not used), and merges
`coverage_statements_pct` into bench/results.json. Test-only contracts (contracts/test/) are
excluded in ape-config.yaml.

What Ape measures: the runtime code run by transactions and by view calls (with `--coverage`,
Ape traces each `eth_call` with `debug_traceCall`, which anvil serves). The constructor is not
measured: Ape skips deployment receipts, and constructor code is not part of the runtime code.

One fix is applied around the run: ape-vyper 0.8.12 stores Vyper's `source_map` as the PC map
Ape resolves trace PCs with, but since Vyper 0.4 that is the map of the *initcode*; the runtime
code's map is `source_map_runtime`. With the initcode map, runtime PCs land on unrelated lines.
So the build's PC maps of the production contracts are swapped for their runtime maps (checked
against the build's runtime bytecode), keeping only PCs whose code comes from the contract's own
file (code inlined from snekmate modules carries the module's line numbers), and the build is
restored afterwards.

Tracing every transaction makes this slow (~25 min here); the autouse fixture
`_release_traced_receipts` in tests/conftest.py keeps memory bounded. Test files given as
arguments are run instead of the suite, as a quick check; their figure is not recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import merge_results  # noqa: E402

BIN = ROOT / ".venv" / "bin"
BUILD = ROOT / ".build" / "__local__.json"
REPORT = ROOT / ".build" / "coverage.xml"
# Contracts whose statements count (the test-only ones are excluded in ape-config.yaml).
PRODUCTION = ("JobMarket", "WorkToken")

ROW = re.compile(r"^\s*(contracts/\S+\.vy)\s+(\d+)\s+(\d+)\s+([\d.]+)%")


def runtime_pcmap(contract_type: dict) -> dict[str, dict]:
    """The contract's runtime PC map in Ape's format, own-file PCs only."""
    out = subprocess.run(
        [
            str(BIN / "vyper"),
            contract_type["sourceId"],
            "-p",
            str(ROOT),
            "-f",
            "bytecode_runtime,source_map_runtime",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    bytecode, source_map = out.stdout.splitlines()
    if bytecode != contract_type["runtimeBytecode"]["bytecode"]:
        raise SystemExit(
            f"{contract_type['sourceId']}: vyper's runtime bytecode differs from "
            "the build's; run `ape compile --force`"
        )
    maps = json.loads(source_map)
    # pc_ast_map: pc -> (source id, AST node id); source id 0 is the compiled file itself.
    own = {pc for pc, (source_id, _) in maps["pc_ast_map"].items() if source_id == 0}
    return {pc: {"location": loc} for pc, loc in maps["pc_pos_map"].items() if pc in own}


def main(tests: list[str] | None = None) -> float:
    subprocess.run([str(BIN / "ape"), "compile"], cwd=ROOT, check=True, capture_output=True)
    original = BUILD.read_text()
    build = json.loads(original)
    for name in PRODUCTION:
        build["contractTypes"][name]["pcmap"] = runtime_pcmap(build["contractTypes"][name])
    REPORT.unlink(missing_ok=True)
    cmd = [
        str(BIN / "ape"),
        "test",
        *(tests or ["tests/contracts"]),
        "--network",
        "ethereum:local:foundry",
        "--coverage",
        "-q",
        "-m",
        "not slow",
        "-p",
        "no:warnings",
    ]
    BUILD.write_text(json.dumps(build))
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)
    finally:
        BUILD.write_text(original)
    rows = [
        (m[1], int(m[2]), int(m[3])) for line in proc.stdout.splitlines() if (m := ROW.match(line))
    ]
    if proc.returncode not in (0, 1) or not rows:
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"coverage run failed (exit {proc.returncode})")
    # A test failing only on anvil still traced its transactions; name it, do not hide it.
    for line in proc.stdout.splitlines():
        if line.startswith("FAILED "):
            print(f"  failed on anvil (passes on the embedded chain in make test): {line[7:]}")
    table = Table(title="Statement coverage of contracts/ on anvil")
    for col in ("contract", "statements", "missed", "%"):
        table.add_column(col, justify="right" if col != "contract" else "left")
    total = sum(n for _, n, _ in rows)
    missed = sum(m for _, _, m in rows)
    for name, n, m in rows:
        table.add_row(name, str(n), str(m), f"{100.0 * (n - m) / n:.1f}" if n else "-")
    pct = 100.0 * (total - missed) / total if total else 0.0
    table.add_row("total", str(total), str(missed), f"{pct:.2f}")
    Console().print(table)
    if not tests:
        merge_results({"coverage_statements_pct": round(pct, 2)})
    return pct


if __name__ == "__main__":
    main(sys.argv[1:])
