"""End-to-end throughput on anvil: settled jobs per second against raw web3 transactions.

Run: `make bench` (or `.venv/bin/python bench/e2e.py [--jobs 128] [--oracles 1]`). On one fresh
anvil, in one run:

(a) raw web3.py: ``--raw-tx`` ETH transfers, signed locally with explicit nonces, each sent
    and waited for before the next (what a client doing one transaction per job gets);
(b) the protocol: the job store, ``--oracles`` oracle nodes (k-of-n, threshold a majority)
    and ``--workers`` workers, each in its own process as in a real deployment, with their
    real HTTP servers and SQLite files; a requester (this process) posts ``--jobs`` int8
    matmul jobs of n=``--n`` with ``create_jobs`` in batches of 64 (all sent, then awaited);
    workers deliver each batch of results to the job store and commit with
    ``submit_results``; oracles read the delivered results in bundles from the store and
    settle in batches of up to 64. The clock runs from the first
    ``create_jobs`` transaction until every job is paid (its worker credited). Services
    start and workers are bonded before the clock starts (a one-off).

A thread mines an empty block every 0.1 s during (b), so challenge blocks appear on a quiet
chain; (a) runs before it starts. Writes ``e2e_settled_per_s_vs_raw_tx`` = (b)/(a) and
``oracle_verify_vs_compute`` (the oracles' check seconds, from holding a result to its
verdict, over the workers' compute seconds, input generation included, on the same jobs)
to bench/results.json, with the raw numbers beside them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from eth_account import Account  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from web3 import Web3  # noqa: E402

from bench._results import merge_results  # noqa: E402
from oracle.chain.anvil import start_anvil, stop_anvil, test_accounts  # noqa: E402
from oracle.chain.client import STATUS_PAID, ZERO_ADDRESS, Chain, TxSender  # noqa: E402
from oracle.chain.deploy import deploy_with_web3  # noqa: E402
from oracle.chain.deployments import Deployment  # noqa: E402
from oracle.infra.logs import setup_logging  # noqa: E402
from oracle.node.service import OracleConfig, OracleNode  # noqa: E402
from oracle.protocol.params import LOCAL  # noqa: E402
from oracle.protocol.spec import parse_spec, work_units  # noqa: E402
from oracle.store.blobs import LocalBlobStore  # noqa: E402
from oracle.store.server import BlobServer  # noqa: E402
from oracle.worker.service import Worker, WorkerConfig  # noqa: E402

PRICE = 10**12
CREATE_BATCH = 64


def raw_tx_per_s(w3: Web3, sender: Any, to: str, n: int) -> float:
    """Sequential signed ETH transfers, each waited for: transactions per second."""
    nonce = w3.eth.get_transaction_count(sender.address)
    chain_id = w3.eth.chain_id
    fee = int(w3.eth.get_block("latest")["baseFeePerGas"]) * 2 + 10**9
    t0 = time.perf_counter()
    for i in range(n):
        tx = {
            "to": to,
            "value": 1,
            "gas": 21_000,
            "nonce": nonce + i,
            "chainId": chain_id,
            "maxFeePerGas": fee,
            "maxPriorityFeePerGas": 10**9,
        }
        h = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.01)
        assert rcpt["status"] == 1
    return n / (time.perf_counter() - t0)


class _Miner:
    def __init__(self, w3: Web3, every: float) -> None:
        self.w3, self.every = w3, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            except Exception:
                return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service(
    role: str,
    cfg: OracleConfig | WorkerConfig,
    url: str,
    rec: Deployment,
    key: bytes,
    ready: Any,
    stop: Any,
    out: Any,
) -> None:
    """One oracle node or worker in its own process: serve, loop until ``stop``, report."""
    setup_logging(os.environ.get("POUW_BENCH_LOG", "error"))
    chain = Chain(url, rec)
    account = Account.from_key(key)
    obj: OracleNode | Worker
    if isinstance(cfg, OracleConfig):
        obj = OracleNode(cfg, chain, account)
    else:
        obj = Worker(cfg, chain, account)
    obj.start_server()
    ready.set()
    try:
        obj.run(stop)
    finally:
        obj.close()
        out.put((role, obj.metrics.snapshot()))


def _store_service(root: str, port: int, ready: Any, stop: Any) -> None:
    """The job store in its own process, as a deployment runs it: specs, and the results the
    workers deliver and the oracles read."""
    with BlobServer(LocalBlobStore(Path(root)), port=port):
        ready.set()
        stop.wait()


def settled_run(
    url: str, w3: Web3, work: Path, *, jobs: int, n: int, n_oracles: int, n_workers: int, batch: int
) -> dict[str, float]:
    """Post ``jobs`` jobs and time them until all are paid; returns the measurements."""
    accts = test_accounts(10)
    deployer, requester = accts[0], accts[1]
    workers_keys = accts[2 : 2 + n_workers]
    oracle_keys = sorted(accts[5 : 5 + n_oracles], key=lambda a: int(a.address, 16))
    threshold = n_oracles // 2 + 1
    rec = deploy_with_web3(
        w3, deployer, [o.address for o in oracle_keys], threshold, LOCAL, "ethereum:local:foundry"
    )
    chain = Chain(url, rec)
    for wk in workers_keys:
        TxSender(chain, wk).send(
            chain.market.functions.register(), "register", value=int(chain.call("min_bond")) * 128
        )
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    procs: list[Any] = []
    metrics: dict[str, Counter[str]] = {"oracle": Counter(), "worker": Counter()}
    latency: list[float] = []
    store_port = _free_port()
    store_url = f"http://127.0.0.1:{store_port}"
    store_ready = ctx.Event()
    store_proc = ctx.Process(
        target=_store_service,
        args=(str(work / "specs"), store_port, store_ready, stop),
        daemon=True,
    )
    store_proc.start()
    if not store_ready.wait(60):
        raise SystemExit("e2e: the job store process did not start")
    try:
        ports = [_free_port() for _ in oracle_keys]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        services: list[tuple[str, OracleConfig | WorkerConfig, bytes]] = []
        for i, key in enumerate(oracle_keys):
            services.append(
                (
                    "oracle",
                    OracleConfig(
                        rpc_url=url,
                        db_path=str(work / f"oracle{i}.db"),
                        spec_stores=[store_url],
                        confirmations=0,
                        poll_interval=0.02,
                        batch_size=batch,
                        max_wait=0.2,
                        takeover=5.0,
                        port=ports[i],
                        peers=[u for j, u in enumerate(urls) if j != i],
                    ),
                    bytes(key.key),
                )
            )
        for i, key in enumerate(workers_keys):
            services.append(
                (
                    "worker",
                    WorkerConfig(
                        rpc_url=url,
                        db_path=str(work / f"worker{i}.db"),
                        store_dir=str(work / f"worker{i}-blobs"),
                        spec_stores=[store_url],
                        oracle_urls=urls,
                        poll_interval=0.02,
                        claim_interval=3_600,
                    ),
                    bytes(key.key),
                )
            )
        for role, cfg, key in services:  # oracles first: workers announce to them at start
            ready = ctx.Event()
            proc = ctx.Process(
                target=_service, args=(role, cfg, url, rec, key, ready, stop, out), daemon=True
            )
            proc.start()
            procs.append(proc)
            if not ready.wait(60):
                raise SystemExit(f"e2e: {role} process did not start")
        specs = [
            parse_spec(
                {
                    "version": 1,
                    "kind": "matmul",
                    "dtype": "int8",
                    "m": n,
                    "n": n,
                    "k": n,
                    "inputs": {"seed": 1_000 + i},
                    "verify": {"mode": "full"},
                }
            )
            for i in range(jobs)
        ]
        store = LocalBlobStore(work / "specs")
        for s in specs:
            store.put(s.canonical)
        try:
            req = TxSender(chain, requester)
            deadline = chain.block_timestamp(chain.head()) + 3_600
            ids: list[int] = []
            t0 = time.perf_counter()
            sent = []  # a requester with many jobs sends every batch, then waits
            for lo in range(0, jobs, CREATE_BATCH):
                part = specs[lo : lo + CREATE_BATCH]
                fn = chain.market.functions.create_jobs(
                    [(s.hash, work_units(s), ZERO_ADDRESS, PRICE, deadline) for s in part]
                )
                tx = req.sign(fn, value=PRICE * len(part), gas=150_000 + 120_000 * len(part))
                req.broadcast(tx.raw)
                sent.append(tx)
            for tx in sent:
                rcpt = req.wait(tx.tx_hash, decoded=False)
                ids += [int(e.args["job_id"]) for e in chain.receipt_events(rcpt, ("JobCreated",))]
            pending = set(ids)
            limit = time.monotonic() + 300
            seen = rec.block - 1  # events are read once each: this thread shares the GIL
            # what a watcher sees: wall time from a job's first ResultSubmitted to its JobSettled
            submitted: dict[int, float] = {}
            latency: list[float] = []
            while pending:
                if time.monotonic() > limit:
                    raise SystemExit(f"e2e: {len(pending)} job(s) not paid within 300 s")
                head = chain.head()
                now = time.perf_counter()
                for e in chain.events(seen + 1, head, names=("ResultSubmitted", "JobSettled")):
                    job = int(e.args["job_id"])
                    if e.name == "ResultSubmitted":
                        submitted.setdefault(job, now)
                    elif job in pending:
                        pending.discard(job)
                        latency.append(now - submitted.get(job, now))
                seen = head
                if pending:
                    time.sleep(0.01)
            elapsed = time.perf_counter() - t0
        finally:
            stop.set()
            for _ in procs:
                try:
                    role, got = out.get(timeout=30)
                except Exception:  # a service that died reports nothing; the asserts below tell
                    break
                metrics[role].update(got)
            for proc in procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.kill()
    finally:
        stop.set()
        store_proc.join(timeout=10)
        if store_proc.is_alive():
            store_proc.kill()
    assert all(chain.job_status(j) == STATUS_PAID for j in ids)
    credited = sum(int(chain.call("credited", w.address, ZERO_ADDRESS)) for w in workers_keys)
    assert credited == PRICE * jobs, (credited, PRICE * jobs)
    verify_s = metrics["oracle"]["verify_seconds"]
    checks = metrics["oracle"]["verify_seconds_count"]
    compute_s = metrics["worker"]["compute_seconds"]
    computed = metrics["worker"]["compute_seconds_count"]
    p50, p95 = (float(q) for q in np.percentile(latency, [50, 95]))
    return {
        "elapsed": elapsed,
        "settled_per_s": jobs / elapsed,
        # per job: every oracle verifies each job; a job may be computed by several workers
        "verify_per_job": verify_s / max(checks, 1),
        "compute_per_job": compute_s / max(computed, 1),
        "settle_txs": metrics["oracle"]["settle_txs"],
        # the workers' delivery of each batch of results to the job store, before its commit
        "deliver_per_batch": metrics["worker"]["deliver_seconds"]
        / max(metrics["worker"]["deliver_seconds_count"], 1),
        "deliver_batches": metrics["worker"]["deliver_seconds_count"],
        "settle_latency_p50_s": p50,
        "settle_latency_p95_s": p95,
    }


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=512)
    parser.add_argument("--n", type=int, default=32, help="matmul size (n×n int8)")
    parser.add_argument("--oracles", type=int, default=1, choices=(1, 3))
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="workers; more than one race for every job (each computes and "
        "commits all, the oracles verify every submission)",
    )
    parser.add_argument("--batch", type=int, default=64, help="oracle settle batch size")
    parser.add_argument("--raw-tx", type=int, default=200)
    args = parser.parse_args()
    proc, url = start_anvil()
    try:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        accts = test_accounts(10)
        raw = raw_tx_per_s(w3, accts[9], accts[8].address, args.raw_tx)
        miner = _Miner(w3, 0.1)
        miner.thread.start()
        try:
            with tempfile.TemporaryDirectory(prefix="pouw-e2e-") as tmp:
                run = settled_run(
                    url,
                    w3,
                    Path(tmp),
                    jobs=args.jobs,
                    n=args.n,
                    n_oracles=args.oracles,
                    n_workers=args.workers,
                    batch=args.batch,
                )
        finally:
            miner.stop.set()
            miner.thread.join(timeout=2)
    finally:
        stop_anvil(proc)
    out = {
        "e2e_raw_tx_per_s": raw,
        "e2e_settled_per_s": run["settled_per_s"],
        "e2e_settled_per_s_vs_raw_tx": run["settled_per_s"] / raw,
        "oracle_verify_vs_compute": run["verify_per_job"] / run["compute_per_job"],
        "settle_latency_p50_s": run["settle_latency_p50_s"],
        "settle_latency_p95_s": run["settle_latency_p95_s"],
    }
    table = Table(
        title=f"end to end on anvil: {args.jobs} int8 matmul jobs n={args.n}, "
        f"{args.oracles} oracle(s), {args.workers} workers"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("raw web3 tx/s (sequential, each waited for)", f"{raw:,.1f}")
    table.add_row("settled jobs/s (first create -> every job paid)", f"{run['settled_per_s']:,.1f}")
    table.add_row("ratio (target >= 2)", f"{out['e2e_settled_per_s_vs_raw_tx']:.2f}")
    table.add_row("wall seconds", f"{run['elapsed']:.2f}")
    table.add_row("settle transactions", f"{run['settle_txs']:.0f}")
    table.add_row("oracle verify s / job", f"{run['verify_per_job'] * 1e3:.3f} ms")
    table.add_row("worker compute s / job", f"{run['compute_per_job'] * 1e3:.3f} ms")
    table.add_row(
        "worker delivery to the job store s / batch",
        f"{run['deliver_per_batch'] * 1e3:.1f} ms ({run['deliver_batches']:.0f} batches)",
    )
    table.add_row(
        "settle latency p50 / p95 (ResultSubmitted -> JobSettled, as a watcher sees it)",
        f"{run['settle_latency_p50_s']:.2f} s / {run['settle_latency_p95_s']:.2f} s",
    )
    table.add_row("verify / compute", f"{out['oracle_verify_vs_compute']:.3f}")
    Console().print(table)
    merge_results(out)
    return out


if __name__ == "__main__":
    main()
