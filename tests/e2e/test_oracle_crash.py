"""SIGKILL the oracle process at each critical point, restart it on the same SQLite file:
every job ends settled exactly once, and no transaction is ever sent twice for one nonce."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from oracle.chain.client import Chain
from oracle.store.blobs import LocalBlobStore
from oracle.worker.service import Worker, WorkerConfig
from tests.e2e.conftest import key_file, kill_then_restart, matmul, post_jobs
from tests.e2e.test_live_loop import settled_events


def _oracle_cmd(
    anvil_url: str,
    tmp_path: Path,
    keyfile: Path,
    spec_url: str,
    worker: str,
    worker_url: str,
    kill_at: str | None,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "oracle.cli.main",
        "oracle",
        "run",
        "--rpc",
        anvil_url,
        "--deployments",
        str(tmp_path / "deployments"),
        "--keyfile",
        str(keyfile),
        "--spec-store",
        spec_url,
        "--db",
        str(tmp_path / "oracle.node.db"),
        "--confirmations",
        "1",
        "--poll",
        "0.1",
        "--max-wait",
        "0.2",
        "--worker-url",
        f"{worker}={worker_url}",
    ]
    return cmd + (["--kill-at", kill_at] if kill_at else [])


def _unresolved_txs(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM txs WHERE state='signed'").fetchone()[0])


@pytest.mark.parametrize(
    "kill_at", ["after_verdict", "after_sign", "after_tx_signed", "after_broadcast"]
)
def test_oracle_sigkilled__restarts__each_job_settled_once(
    anvil, deploy, keys, tmp_path, spec_server, kill_at
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    keyfile = key_file(tmp_path, "oracle", keys["oracles"][0])
    stop = threading.Event()
    wcfg = WorkerConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "w.db"),
        store_dir=str(tmp_path / "w-blobs"),
        spec_stores=[spec_server.url],
        poll_interval=0.1,
    )
    worker = Worker(wcfg, Chain(anvil.url, rec), keys["honest"])
    wurl = worker.start_server()
    t = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    t.start()
    try:
        jobs = post_jobs(
            chain,
            keys["requester"],
            [matmul(i) for i in range(3)],
            LocalBlobStore(tmp_path / "specs"),
        )
        cmd = _oracle_cmd(
            anvil.url, tmp_path, keyfile, spec_server.url, worker.address, wurl, kill_at
        )
        kill_then_restart(
            cmd,
            lambda: (
                all(settled_events(chain)[0][j] >= 1 for j in jobs)
                and _unresolved_txs(tmp_path / "oracle.node.db") == 0
            ),
        )
    finally:
        stop.set()
        t.join(timeout=10)
        worker.close()
    paid, _, slashed = settled_events(chain)
    assert [paid[j] for j in jobs] == [1, 1, 1] and slashed == []
    with sqlite3.connect(tmp_path / "oracle.node.db") as db:
        txs = db.execute("SELECT nonce, state FROM txs ORDER BY nonce").fetchall()
        sigs = db.execute("SELECT digest, COUNT(*) FROM signatures GROUP BY digest").fetchall()
    assert txs and all(state == "mined" for _, state in txs), txs
    assert len({n for n, _ in txs}) == len(txs)
    assert all(n == 1 for _, n in sigs)  # one own signature per digest, never re-signed apart
