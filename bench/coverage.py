"""Statement coverage of contracts/ on anvil, from Ape's coverage report.

Runs the contract suite (`ape test tests/contracts --network ethereum:local:foundry
--coverage`, the slow stateful test excluded: it adds no statement), reads the Cobertura XML
Ape writes to `.build/coverage.xml`, prints per-contract numbers and merges
`coverage_statements_pct` into bench/results.json. Test-only contracts (contracts/test/) are
excluded in ape-config.yaml.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._results import merge_results  # noqa: E402

REPORT = ROOT / ".build" / "coverage.xml"


def parse(report: Path) -> tuple[float, list[tuple[str, int, int]]]:
    """(overall statement %, [(contract, statements, covered)]) from a Cobertura report."""
    root = ET.parse(report).getroot()
    rows = []
    for cls in root.iter("class"):
        lines = cls.findall("./lines/line")
        covered = sum(1 for line in lines if int(line.get("hits", "0")) > 0)
        rows.append((cls.get("name", "?"), len(lines), covered))
    total = sum(r[1] for r in rows)
    hit = sum(r[2] for r in rows)
    return (100.0 * hit / total if total else 0.0), rows


def main() -> float:
    REPORT.unlink(missing_ok=True)
    cmd = [str(ROOT / ".venv" / "bin" / "ape"), "test", "tests/contracts", "--network",
           "ethereum:local:foundry", "--coverage", "-q", "-m", "not slow", "-p", "no:warnings"]
    proc = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)
    if proc.returncode != 0 or not REPORT.exists():
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"coverage run failed (exit {proc.returncode})")
    pct, rows = parse(REPORT)
    table = Table(title="Statement coverage of contracts/ on anvil")
    for col in ("contract", "statements", "covered", "%"):
        table.add_column(col, justify="right" if col != "contract" else "left")
    for name, n, hit in rows:
        table.add_row(name, str(n), str(hit), f"{100.0 * hit / n:.1f}" if n else "-")
    table.add_row("total", str(sum(r[1] for r in rows)), str(sum(r[2] for r in rows)),
                  f"{pct:.1f}")
    Console().print(table)
    merge_results({"coverage_statements_pct": round(pct, 2)})
    return pct


if __name__ == "__main__":
    main()
