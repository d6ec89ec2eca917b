"""Export the compiled contracts' ABIs and deployment bytecode into `oracle/abi/` (committed).

Services talk to the chain with web3.py and must not need Ape or a compiler at run time, so the
package ships `oracle/abi/<Name>.json` = ``{"abi": [...], "bytecode": "0x..."}`` for each
production contract. Run `make abi` after changing `contracts/`; `tests/oracle/test_abi.py`
fails while the committed files differ from the compiled build.

Usage: `python scripts/export_abi.py [--build .build/__local__.json] [--check]`
(`--check` exits 1 listing stale files instead of writing). It is a plain script, not an
Ape script: it has neither `cli` nor `main`, so `ape run` does not list it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CONTRACTS = ("Disputes", "JobMarket", "OracleSet", "WorkToken")
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "oracle" / "abi"


def artifact(contract_type: dict) -> str:
    """The committed text of one contract's artifact (stable key order, newline-terminated)."""
    body = {
        "abi": contract_type["abi"],
        "bytecode": contract_type["deploymentBytecode"]["bytecode"],
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / ".build" / "__local__.json")
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    if not args.build.exists():
        print(f"error: {args.build} not found; run `ape compile` first", file=sys.stderr)
        return 2
    types = json.loads(args.build.read_text())["contractTypes"]
    stale = []
    for name in CONTRACTS:
        text = artifact(types[name])
        path = OUT / f"{name}.json"
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("stale: " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
