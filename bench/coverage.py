"""Statement coverage of contracts/ on anvil, from Ape's coverage report.

Runs the contract suite on anvil with `ape test --network ethereum:local:foundry --coverage`,
a dozen tests per process (Ape keeps every traced receipt of the session in memory, ~150 MB a
test here: the whole suite in one process grew past 20 GB), merges the Cobertura
XML reports Ape writes to `.build/coverage.xml` (a statement counts as covered if any file's
run hit it), prints per-contract numbers and merges `coverage_statements_pct` into
bench/results.json. The slow stateful test is left out (it reaches no extra statement);
test-only contracts (contracts/test/) are excluded in ape-config.yaml.
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


def parse(report: Path) -> dict[str, dict[int, int]]:
    """{contract: {line: hits}} from one Cobertura report."""
    root = ET.parse(report).getroot()
    return {
        cls.get("name", "?"): {int(x.get("number", "0")): int(x.get("hits", "0"))
                              for x in cls.findall("./lines/line")}
        for cls in root.iter("class")
    }


def merge(reports: list[dict[str, dict[int, int]]]) -> dict[str, dict[int, int]]:
    """Per contract and line, the hits summed over runs."""
    out: dict[str, dict[int, int]] = {}
    for rep in reports:
        for name, lines in rep.items():
            into = out.setdefault(name, {})
            for line, hits in lines.items():
                into[line] = into.get(line, 0) + hits
    return out


CHUNK = 12


def test_ids() -> list[str]:
    """Node ids of the contract tests, the slow stateful one excluded."""
    cmd = [str(ROOT / ".venv" / "bin" / "pytest"), "tests/contracts", "--collect-only", "-q",
           "-m", "not slow", "-p", "no:warnings"]
    out = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    if not ids:
        raise SystemExit(f"no contract tests collected:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return ids


def main() -> float:
    ids = test_ids()
    reports = []
    failed: list[str] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        REPORT.unlink(missing_ok=True)
        cmd = [str(ROOT / ".venv" / "bin" / "ape"), "test", *chunk,
               "--network", "ethereum:local:foundry", "--coverage", "-q", "-p", "no:warnings"]
        proc = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy(), capture_output=True,
                              text=True)
        if proc.returncode not in (0, 1) or not REPORT.exists():
            sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"coverage run of tests {start}-{start + len(chunk)} failed "
                             f"(exit {proc.returncode})")
        # A test failing only on anvil still traced its transactions; name it, do not hide it.
        failed += [line.split()[1] for line in proc.stdout.splitlines()
                   if line.startswith("FAILED ")]
        reports.append(parse(REPORT))
        print(f"  {start + len(chunk)}/{len(ids)} tests traced", flush=True)
    merged = merge(reports)
    table = Table(title="Statement coverage of contracts/ on anvil")
    for col in ("contract", "statements", "covered", "%"):
        table.add_column(col, justify="right" if col != "contract" else "left")
    total = hit = 0
    for name, lines in sorted(merged.items()):
        n, h = len(lines), sum(1 for v in lines.values() if v > 0)
        total, hit = total + n, hit + h
        table.add_row(name, str(n), str(h), f"{100.0 * h / n:.1f}" if n else "-")
        missed = sorted(line for line, v in lines.items() if v == 0)
        if missed:
            print(f"  {name}: lines never hit: {missed}")
    pct = 100.0 * hit / total if total else 0.0
    for test in failed:
        print(f"  failed on anvil (passes on the embedded chain in make test): {test}")
    table.add_row("total", str(total), str(hit), f"{pct:.2f}")
    Console().print(table)
    merge_results({"coverage_statements_pct": round(pct, 2)})
    return pct


if __name__ == "__main__":
    main()
