"""README's local walk-through, run as written: every command line of its ``sh`` blocks from
"A local network, one process per role" to the auditor, in a fresh directory (``.venv`` linked
to this checkout's), long-running roles in the background as the README's terminals.

The README cannot drift from the code: a flag renamed, a job id that does not exist or a
command that fails fails this test. What the README says in prose (the oracle command "and
the same for account6 on 9106 and account7 on 9107") is applied as said.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PORTS = (8545, 8600, 9105, 9106, 9107, 9202)
FIRST = "**A local network, one process per role**"
LAST = "It re-derives the seed from the chain"
BACKGROUND = ("pouw node", "pouw store serve", "pouw oracle run", "pouw worker run")


def readme_commands() -> list[str]:
    """The walk-through's command lines, in order: continuation lines joined, comments and
    comment-only lines dropped."""
    text = (ROOT / "README.md").read_text()
    part = text[text.index(FIRST) : text.index(LAST)]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", part, re.S):
        line = ""
        for raw in block.splitlines():
            code = re.split(r"\s#", " " + raw, maxsplit=1)[0].strip()
            if not code:
                continue
            line = f"{line} {code}".strip()
            if line.endswith("\\"):
                line = line[:-1].strip()
                continue
            commands.append(line)
            line = ""
    return commands


def _busy(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _peer_variant(cmd: str, n: int) -> str:
    """The oracle command for account ``n`` (6 or 7), as the README's comment says."""
    others = [p for p in (9105, 9106, 9107) if p != 9100 + n]
    out = cmd.replace("account5", f"account{n}").replace("oracle5", f"oracle{n}")
    out = out.replace("--port 9105", f"--port {9100 + n}")
    out = re.sub(
        r"--peer \S+ --peer \S+", " ".join(f"--peer http://127.0.0.1:{p}" for p in others), out
    )
    return out


def test_readme_walkthrough__every_command_line_runs_as_written(tmp_path: Path) -> None:
    if any(_busy(p) for p in PORTS):
        pytest.skip(f"a port of the walk-through is in use: {PORTS}")
    commands = readme_commands()
    assert any("pouw oracle run" in c for c in commands) and any(
        "pouw audit" in c for c in commands
    )
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POUW_")}
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if "node_modules" not in p
    )
    background: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def run(cmd: str, timeout: float = 120) -> str:
        done = subprocess.run(
            ["bash", "-c", cmd],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"`{cmd}` exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done.stdout

    def start(cmd: str) -> None:
        log = (logs / f"{len(background)}.log").open("wb")
        background.append(
            subprocess.Popen(
                ["bash", "-c", f"exec {cmd}"],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def wait_port(port: int, timeout: float = 60) -> None:
        limit = time.monotonic() + timeout
        while not _busy(port):
            assert all(p.poll() is None for p in background), _tails(logs)
            assert time.monotonic() < limit, f"nothing listening on {port}\n{_tails(logs)}"
            time.sleep(0.2)

    def job(n: int) -> dict:
        return json.loads(run(f".venv/bin/pouw job show {n} --json"))

    try:
        for cmd in commands:
            if "pouw audit" in cmd:  # the auditor's turn comes once job 1 is settled
                limit = time.monotonic() + 120
                while job(1)["status"] != "paid":
                    assert time.monotonic() < limit, _tails(logs)
                    time.sleep(1)
            if "pouw job show" in cmd or "pouw report" in cmd:
                # What they show is worth showing once the jobs 1-5 settled.
                limit = time.monotonic() + 120
                while any(job(n)["status"] != "paid" for n in range(1, 6)):
                    assert time.monotonic() < limit, _tails(logs)
                    time.sleep(1)
            if any(b in cmd for b in BACKGROUND):
                start(cmd)
                if "pouw node" in cmd:
                    wait_port(8545)
                elif "store serve" in cmd:
                    wait_port(8600)
                elif "oracle run" in cmd:
                    for n in (6, 7):
                        start(_peer_variant(cmd, n))
                    for port in (9105, 9106, 9107):
                        wait_port(port)
                elif "worker run" in cmd:
                    wait_port(9202)
                continue
            out = run(cmd)
            if "pouw job cancel 6" in cmd:
                assert "job 6 cancelled" in out
            if "pouw audit" in cmd:
                assert out.startswith(f"MATCH job {cmd.split()[2]}"), out
            if "pouw job result 7" in cmd:
                assert "result of 0x" in out and "verified" in out, out
            if "pouw job result 8" in cmd:  # the LLM job's completion, verified
                assert "prompt:     The capital of France is" in out, out
                assert out.split("completion:", 1)[1].lstrip().startswith("Paris"), out
            if "C == A @ B" in cmd:
                assert out.startswith("C == A @ B (96, 80) int32"), out
        assert (tmp_path / "report.png").stat().st_size > 10_000
        assert job(6)["status"] == "cancelled"
        assert job(7)["status"] == "paid" and (tmp_path / "C.npy").is_file()
        assert job(8)["status"] == "paid"
    finally:
        for proc in reversed(background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in background:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _tails(logs: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(logs.glob("*.log")))


def test_readme_deployer__local_lines_run_as_written(tmp_path: Path) -> None:
    """The deployer's `ape run deploy` lines for the embedded chain and anvil, as written, in
    a copy of the Ape project (so a developer's own local deployment records are untouched).
    The testnet lines (`ape accounts import`, `--network ethereum:sepolia:node`) need a key
    and a network this machine does not have; the README says so."""
    import shutil

    text = (ROOT / "README.md").read_text()
    part = text[text.index("**Deployer.**") :]
    block = re.search(r"```sh\n(.*?)```", part, re.S)
    assert block is not None
    lines = [
        re.split(r"\s#", " " + raw, maxsplit=1)[0].strip() for raw in block.group(1).splitlines()
    ]
    local = [
        ln for ln in lines if ln.startswith(".venv/bin/ape run deploy") and "sepolia" not in ln
    ]
    assert len(local) == 2, lines
    for name in ("contracts", "scripts"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "ape-config.yaml", tmp_path / "ape-config.yaml")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {**os.environ, "APE_DATA_FOLDER": str(tmp_path / ".ape")}
    env["PATH"] = os.pathsep.join(
        [str(ROOT / "node_modules" / ".bin"), *env["PATH"].split(os.pathsep)]
    )  # ape-foundry looks anvil up on PATH; `pouw` puts it there itself, `ape` does not
    for cmd in local:
        done = subprocess.run(
            ["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"`{cmd}`:\n{(done.stdout + done.stderr)[-3000:]}"
    for record in ("ethereum-local-test.json", "ethereum-local-foundry.json"):
        market = json.loads((tmp_path / "deployments" / record).read_text())["market"]
        assert re.fullmatch(r"0x[0-9a-fA-F]{40}", market)
