"""``pouw node`` stops cleanly and at once on SIGTERM and on Ctrl-C (SIGINT): exit 0, no
traceback, anvil gone (it hung ~20 s and printed ``subprocess.TimeoutExpired`` on SIGTERM)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        return requests.post(url, json=body, timeout=0.5).ok
    except requests.RequestException:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pouw_node__signal__stops_within_seconds_without_traceback(sig: signal.Signals) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # No node_modules on PATH, as for a user running .venv/bin/pouw: it finds the project's.
    path = [p for p in os.environ["PATH"].split(os.pathsep) if "node_modules" not in p]
    env = {**os.environ, "PATH": os.pathsep.join(path)}
    pouw = Path(sys.executable).parent / "pouw"
    proc = subprocess.Popen(
        [str(pouw), "node", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        limit = time.monotonic() + 30
        while not _answers(url):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < limit, "anvil did not come up"
            time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert took < 5, f"took {took:.1f} s to stop"
    assert "Traceback" not in err and "TimeoutExpired" not in err, err[-2000:]
    assert "anvil stopped" in err
    assert not _answers(url)  # anvil itself is gone, not only the wrapper


def test_use_project_tools__puts_the_checkouts_anvil_first_on_path(monkeypatch) -> None:
    """What Ape's foundry provider looks up (``anvil`` on PATH) is the project's copy once
    the CLI has started, whatever PATH the user had."""
    import shutil

    from oracle.chain.anvil import NODE_MODULES, use_project_tools

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("anvil") is None or "node_modules" not in shutil.which("anvil")
    use_project_tools()
    assert shutil.which("anvil") == str(NODE_MODULES / ".bin" / "anvil")
    use_project_tools()  # idempotent
    assert os.environ["PATH"].count(str(NODE_MODULES / ".bin")) == 1
