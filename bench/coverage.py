"""Statement coverage of contracts/ on anvil, from Ape's coverage report.

Runs the contract suite on anvil (`ape test tests/contracts --network ethereum:local:foundry
--coverage`, the slow stateful test left out: it reaches no extra statement), takes Ape's
statement counts per contract from its terminal report (its per-line XML attributes
statements to docstring and signature lines, so it is not used), and merges
`coverage_statements_pct` into bench/results.json. Ape counts what transactions execute:
view functions read with `eth_call` and constructor code are not traced, so they count as
missed even though the suite calls every one of them. Test-only contracts (contracts/test/) are
excluded in ape-config.yaml. Tracing every transaction makes this slow (~25 min here); the
autouse fixture `_release_traced_receipts` in tests/conftest.py keeps memory bounded.
"""

from __future__ import annotations

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

REPORT = ROOT / ".build" / "coverage.xml"


ROW = re.compile(r"^\s*(contracts/\S+\.vy)\s+(\d+)\s+(\d+)\s+([\d.]+)%")


def main() -> float:
    REPORT.unlink(missing_ok=True)
    cmd = [str(ROOT / ".venv" / "bin" / "ape"), "test", "tests/contracts", "--network",
           "ethereum:local:foundry", "--coverage", "-q", "-m", "not slow", "-p", "no:warnings"]
    proc = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)
    rows = [(m[1], int(m[2]), int(m[3])) for line in proc.stdout.splitlines()
            if (m := ROW.match(line))]
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
    merge_results({"coverage_statements_pct": round(pct, 2)})
    return pct


if __name__ == "__main__":
    main()
