"""The layering of oracle/ (arrows point down only) holds, and an upward import breaks it.

`lint-imports` reads the contracts in pyproject.toml. The second test copies the package to a
temporary directory, adds one upward import, and shows that the same contracts then fail and
name the offending import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    shutil.copytree(
        ROOT / "oracle", dst / "oracle", ignore=shutil.ignore_patterns("__pycache__", "abi")
    )
    return dst


def test_layers__the_tree__keeps_every_contract():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("protocol/spec.py", "import oracle.chain.client"),  # protocol -> chain
        ("compute/verify.py", "import oracle.store.blobs"),  # compute -> store
        ("node/service.py", "import oracle.cli.main"),  # a service -> the CLI
        ("node/db.py", "import oracle.worker.db"),  # one service -> another
        ("protocol/verdict.py", "import requests"),  # I/O in the pure layer
    ],
)
def test_layers__one_upward_import__breaks_a_contract(copy: Path, module: str, upward: str):
    path = copy / "oracle" / module
    original = path.read_text()
    path.write_text(original + f"\n{upward}  # noqa\n")
    try:
        out = _lint(copy)
    finally:
        path.write_text(original)
    assert out.returncode != 0
    assert "BROKEN" in out.stdout
    offender = "oracle." + module.removesuffix(".py").replace("/", ".")
    assert offender in out.stdout, out.stdout
