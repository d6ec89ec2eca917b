"""Fixtures for the live-loop tests: a real anvil, pouw deployed with web3, a spec store.

Everything is bounded: anvil must answer within 15 s, every wait in the tests has a deadline,
and anvil is killed at teardown. A background thread mines an empty block every 0.2 s so that
challenge blocks and confirmations appear as they would on a live chain.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from oracle.chain import deployments
from oracle.chain.anvil import start_anvil, stop_anvil, test_accounts
from oracle.chain.client import Chain
from oracle.chain.deploy import deploy_with_web3
from oracle.protocol.params import LOCAL
from oracle.protocol.spec import parse_spec, spec_hash, work_units
from oracle.store.blobs import LocalBlobStore
from oracle.store.server import BlobServer

ZERO = "0x0000000000000000000000000000000000000000"
PRICE = 10**16


class Anvil:
    """A running anvil and the web3 handle on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._mine, daemon=True)

    def _mine(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            except Exception:
                return

    def start_mining(self) -> None:
        self._thread.start()

    def stop_mining(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    proc, url = start_anvil()
    node = Anvil(url)
    node.start_mining()
    try:
        yield node
    finally:
        node.stop_mining()
        stop_anvil(proc)


@pytest.fixture(scope="session")
def keys() -> dict[str, Any]:
    accts = test_accounts(10)
    oracles = sorted(accts[5:8], key=lambda a: int(a.address, 16))
    return {
        "deployer": accts[0],
        "requester": accts[1],
        "honest": accts[2],
        "cheater": accts[3],
        "oracles": oracles,
    }


@pytest.fixture
def deploy(anvil: Anvil, keys: dict[str, Any], tmp_path: Path) -> Callable[[int], Any]:
    """deploy(threshold) -> (Deployment, deployments dir) with the three test oracles."""

    def go(threshold: int = 1, n_oracles: int = 3) -> Any:
        rec = deploy_with_web3(
            anvil.w3,
            keys["deployer"],
            [o.address for o in keys["oracles"][:n_oracles]],
            threshold,
            LOCAL,
            "ethereum:local:foundry",
        )
        root = tmp_path / "deployments"
        deployments.save(rec, root)
        return rec

    return go


@pytest.fixture
def spec_server(tmp_path: Path) -> Iterator[BlobServer]:
    """The public spec store: an HTTP blob server requesters PUT specs to."""
    with BlobServer(LocalBlobStore(tmp_path / "specs")) as srv:
        yield srv


def matmul(seed: int, dtype: str = "int8", n: int = 32, mode: str = "full") -> dict[str, Any]:
    verify: dict[str, Any] = {"mode": mode}
    if mode == "sampled":
        verify["openings"] = 4
    return {
        "version": 1,
        "kind": "matmul",
        "dtype": dtype,
        "m": n,
        "n": n,
        "k": n,
        "inputs": {"seed": seed},
        "verify": verify,
    }


def post_jobs(
    chain: Chain, requester: Any, specs: list[dict[str, Any]], spec_store: LocalBlobStore | None
) -> list[int]:
    """Publish the specs and escrow one job each, in one create_jobs transaction."""
    from oracle.chain.client import TxSender

    parsed = [parse_spec(s) for s in specs]
    if spec_store is not None:
        for p in parsed:
            spec_store.put(p.canonical)
    deadline = chain.block_timestamp(chain.head()) + 3_600
    fn = chain.market.functions.create_jobs(
        [(spec_hash(p), work_units(p), ZERO, PRICE, deadline) for p in parsed]
    )
    rcpt = TxSender(chain, requester).send(fn, "create_jobs", value=PRICE * len(parsed))
    return [
        int(e["args"]["job_id"]) for e in chain.market.events.JobCreated().process_receipt(rcpt)
    ]


def key_file(tmp_path: Path, name: str, account: Any) -> Path:
    """``account``'s raw hex key in ``tmp_path/<name>.key``, readable by its owner only, as
    the services and the CLI read keys (never from the command line)."""
    path = tmp_path / f"{name}.key"
    path.write_text(account.key.hex())
    path.chmod(0o600)
    return path


def wait_until(cond: Callable[[], bool], timeout: float = 30.0, every: float = 0.1) -> None:
    """Poll ``cond`` until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def kill_then_restart(cmd: list[str], done: Callable[[], bool], timeout: float = 40.0) -> None:
    """Run a service command ending in ``--kill-at POINT``: it must SIGKILL itself there; then
    run it again without the kill point until ``done()`` holds, and stop it."""
    assert cmd[-2] == "--kill-at"
    first = subprocess.run(cmd, capture_output=True, timeout=60, cwd=Path.cwd())
    assert first.returncode == -9, first.stderr.decode()[-2000:]
    assert b'"kill_point"' in first.stderr
    proc = subprocess.Popen(cmd[:-2], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(done, timeout=timeout)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def worker_and_node(
    anvil: Anvil,
    rec: Any,
    keys: dict[str, Any],
    tmp_path: Path,
    spec_url: str,
    confirmations: int = 0,
) -> tuple[Any, Any]:
    """The honest worker (serving) and the first oracle node (settles at once), the node told
    the worker's URL directly; the caller closes both."""
    from oracle.node.service import OracleConfig, OracleNode
    from oracle.worker.service import Worker, WorkerConfig

    w = Worker(
        WorkerConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "w.db"),
            store_dir=str(tmp_path / "w-blobs"),
            spec_stores=[spec_url],
        ),
        Chain(anvil.url, rec),
        keys["honest"],
    )
    node = OracleNode(
        OracleConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "o.db"),
            spec_stores=[spec_url],
            confirmations=confirmations,
            batch_size=8,
            max_wait=0.0,
        ),
        Chain(anvil.url, rec),
        keys["oracles"][0],
    )
    node.db.set_worker_url(w.address, w.start_server(), 0)
    return w, node
