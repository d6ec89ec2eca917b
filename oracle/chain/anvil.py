"""Starting a local anvil node (``pouw node`` and the e2e tests).

:func:`start_anvil` launches ``anvil`` on a loopback port (a free one when ``port=0``), waits
until it answers ``eth_chainId`` (bounded by ``timeout``) and returns the process and its URL.
Anvil's default accounts are derived from its well-known test mnemonic: never use them on a
live network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount

from oracle.exceptions import ChainError

__all__ = [
    "DEV_ORACLE_INDICES",
    "TEST_MNEMONIC",
    "anvil_binary",
    "dev_oracles",
    "free_port",
    "start_anvil",
    "stop_anvil",
    "test_accounts",
    "use_project_tools",
]

TEST_MNEMONIC = "test test test test test test test test test test test junk"

#: Which of :func:`test_accounts` are the oracles of a local dev deployment (``pouw deploy
#: --dev`` and ``ape run deploy`` on a local chain, both without ``--oracle``): clear of the
#: deployer (0) and of the requesters and workers of the README's walk-through.
DEV_ORACLE_INDICES = (5, 6, 7)


#: This checkout's npm packages (``make setup`` installs anvil and cast there).
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"


def use_project_tools() -> None:
    """Put this checkout's ``node_modules/.bin`` on PATH (if it exists and is not there yet),
    so every command that needs anvil — Ape's foundry provider included — finds the project's
    own copy without the Makefile's PATH."""
    bin_dir = NODE_MODULES / ".bin"
    path = os.environ.get("PATH", "")
    if bin_dir.is_dir() and str(bin_dir) not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), path]) if path else str(bin_dir)


def anvil_binary() -> str:
    """The anvil executable of this checkout's node_modules if present, else ``anvil`` on PATH.

    npm's ``node_modules/.bin/anvil`` is a node wrapper that spawns the platform binary as a
    child; killing the wrapper would orphan the node, so the platform binary itself is used.
    """
    modules = NODE_MODULES
    for native in sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil")):
        return str(native)
    local = modules / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found is None:
        raise ChainError("anvil not found (run `make setup`, or put anvil on PATH)")
    return found


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_accounts(n: int = 10) -> list[LocalAccount]:
    """Anvil's funded default accounts (well-known keys: local chains only)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(n)
    ]


def dev_oracles() -> list[LocalAccount]:
    """The oracle set of a local dev deployment: anvil's test accounts 5-7 (well-known keys)."""
    accounts = test_accounts(max(DEV_ORACLE_INDICES) + 1)
    return [accounts[i] for i in DEV_ORACLE_INDICES]


def start_anvil(
    port: int = 0,
    *,
    timeout: float = 15.0,
    chain_id: int = 31337,
    quiet: bool = True,
    block_time: int = 0,
    hardfork: str | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start anvil; returns (process, rpc url). ChainError if it does not come up in time.

    With ``block_time`` > 0 anvil also mines an (empty) block every ``block_time`` seconds
    while still mining each transaction at once (``--mixed-mining``): challenge blocks and
    confirmation depth then appear on a quiet chain, as on a live one. ``hardfork`` (e.g.
    ``"cancun"``) runs another fork's rules than anvil's default (a benchmark's comparison).
    """
    port = port or free_port()
    cmd = [
        anvil_binary(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--mnemonic",
        TEST_MNEMONIC,
    ]
    if block_time > 0:
        cmd += ["--block-time", str(block_time), "--mixed-mining"]
    if hardfork is not None:
        cmd += ["--hardfork", hardfork]
    out = subprocess.DEVNULL if quiet else None
    # Its own session, so stop_anvil() can end it with anything it spawned.
    proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ChainError(f"anvil exited with code {proc.returncode} (port {port} taken?)")
        try:
            r = requests.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1,
            )
            if r.ok:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop_anvil(proc)
    raise ChainError(f"anvil did not answer on {url} within {timeout}s")


def stop_anvil(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop an anvil started by :func:`start_anvil` and everything in its session."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
