"""SIGKILL the worker process mid-job (results stored but not sent, commit signed but not
broadcast, commit broadcast but not confirmed), restart it on the same SQLite file and blob
directory: every job ends paid exactly once to it, each commitment reached the chain once,
nothing was slashed — the chain ends as it would have without the crash."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from oracle.chain.client import Chain
from oracle.node.service import OracleConfig, OracleNode
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import key_file, kill_then_restart, matmul, post_jobs
from tests.e2e.test_live_loop import settled_events


def _worker_cmd(
    anvil_url: str,
    tmp_path: Path,
    keyfile: Path,
    spec_url: str,
    oracle_url: str,
    kill_at: str | None,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "oracle.cli.main",
        "worker",
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
        str(tmp_path / "worker.db"),
        "--store",
        str(tmp_path / "worker-blobs"),
        "--oracle-url",
        oracle_url,
        "--poll",
        "0.1",
    ]
    return cmd + (["--kill-at", kill_at] if kill_at else [])


@pytest.mark.parametrize(
    "kill_at", ["after_compute", "after_commit_signed", "after_commit_broadcast"]
)
def test_worker_sigkilled__restarts__each_job_paid_once(
    anvil, deploy, keys, tmp_path, spec_server, kill_at
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    keyfile = key_file(tmp_path, "worker", keys["honest"])
    cfg = OracleConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "oracle.node.db"),
        spec_stores=[spec_server.url],
        confirmations=1,
        poll_interval=0.1,
        max_wait=0.2,
    )
    node = OracleNode(cfg, Chain(anvil.url, rec), keys["oracles"][0])
    oracle_url = node.start_server()
    stop = threading.Event()
    t = threading.Thread(target=node.run, args=(stop,), daemon=True)
    t.start()
    try:
        jobs = post_jobs(
            chain,
            keys["requester"],
            [matmul(i) for i in range(3)],
            LocalBlobStore(tmp_path / "specs"),
        )
        cmd = _worker_cmd(anvil.url, tmp_path, keyfile, spec_server.url, oracle_url, kill_at)
        kill_then_restart(cmd, lambda: all(settled_events(chain)[0][j] >= 1 for j in jobs))
    finally:
        stop.set()
        t.join(timeout=10)
        node.close()
    paid, paid_to, slashed = settled_events(chain)
    assert [paid[j] for j in jobs] == [1, 1, 1] and slashed == []
    assert {w for _, w in paid_to} == {keys["honest"].address}
    submitted = Counter(
        int(e.args["job_id"])
        for e in chain.events(rec.block, chain.head())
        if e.name == "ResultSubmitted"
    )
    assert [submitted[j] for j in jobs] == [1, 1, 1]  # never committed twice


def test_worker_store_fails__nothing_recorded_or_committed__next_step_recovers(
    anvil, deploy, keys, tmp_path, spec_server, monkeypatch
):
    """A failing durability barrier (disk full, I/O error) loses nothing and commits nothing:
    the batch stays 'new' with no blob visible, and the next step stores and commits it."""
    from oracle.store import blobs as blobstore
    from oracle.worker.service import Worker, WorkerConfig

    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(
        chain, keys["requester"], [matmul(i) for i in range(3)], LocalBlobStore(tmp_path / "specs")
    )
    w = Worker(
        WorkerConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "w.db"),
            store_dir=str(tmp_path / "w-blobs"),
            spec_stores=[spec_server.url],
        ),
        Chain(anvil.url, rec),
        keys["honest"],
    )
    real = blobstore.make_durable

    def io_error(root, paths):
        raise OSError(28, "No space left on device")

    try:
        monkeypatch.setattr(blobstore, "make_durable", io_error)
        w.step(wait=True)
        assert [j["job_id"] for j in w.db.jobs("new")] == jobs  # nothing counted as computed
        assert not [p for p in (tmp_path / "w-blobs").rglob("*") if p.is_file()]
        assert not any(e.name == "ResultSubmitted" for e in chain.events(rec.block, chain.head()))
        monkeypatch.setattr(blobstore, "make_durable", real)
        w.step(wait=True)
        assert [j["job_id"] for j in w.db.jobs("committed")] == jobs
        for j in jobs:
            blob = w.db.job(j)["blob"]
            assert w.store.has(blob)
        submitted = [
            int(e.args["job_id"])
            for e in chain.events(rec.block, chain.head())
            if e.name == "ResultSubmitted"
        ]
        assert submitted == jobs
    finally:
        w.close()
