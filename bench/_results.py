"""bench/results.json: one flat object of named numbers, merged by every bench script."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def merge_results(values: dict[str, float], path: Path = RESULTS) -> dict[str, float]:
    """Update `path` with `values`, keeping keys other scripts wrote."""
    current: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}
    current.update(values)
    path.write_text(json.dumps(dict(sorted(current.items())), indent=2) + "\n")
    return current
