"""The live protocol loop on a real anvil: workers and oracle nodes as threads, real HTTP,
real SQLite. Every honest job is settled exactly once; a cheater's results are slashed; a job
no worker could take is refunded after its deadline; the running workers claim the epoch and
each receives exactly emission * its work // total work, to the wei."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oracle.chain.client import ALL_EVENTS, STATUS_PAID, STATUS_REFUNDED, Chain, TxSender
from oracle.client.report import draw_report, from_chain
from oracle.node.service import OracleConfig, OracleNode
from oracle.store.blobs import LocalBlobStore
from oracle.worker.service import Worker, WorkerConfig
from tests.e2e.conftest import PRICE, ZERO, matmul, post_jobs, wait_until


def _cheat_on(jobs: set[int]) -> Any:
    def tamper(job_id: int, result: np.ndarray) -> np.ndarray:
        if job_id in jobs:
            result = result.copy()
            result.flat[0] += 1
        return result

    return tamper


class Cluster:
    """Oracle nodes and workers running on threads until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.closers: list[Any] = []

    def run(self, obj: Any) -> None:
        t = threading.Thread(target=obj.run, args=(self.stop,), daemon=True)
        t.start()
        self.threads.append(t)
        self.closers.append(obj)

    def shutdown(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        for c in self.closers:
            c.close()


def settled_events(chain: Chain) -> tuple[Counter[int], list[tuple[int, str]], list[int]]:
    paid: Counter[int] = Counter()
    paid_to: list[tuple[int, str]] = []
    slashed: list[int] = []
    for e in chain.events(chain.deployment.block, chain.head()):
        if e.name == "JobSettled":
            paid[int(e.args["job_id"])] += 1
            paid_to.append((int(e.args["job_id"]), e.args["worker"]))
        elif e.name == "WorkerSlashed":
            slashed.append(int(e.args["job_id"]))
    return paid, paid_to, slashed


def start_oracles(
    anvil: Any,
    rec: Any,
    keys: dict[str, Any],
    tmp_path: Path,
    spec_url: str,
    n: int,
    cluster: Cluster,
    **cfg: Any,
) -> list[OracleNode]:
    nodes = []
    for i in range(n):
        c = OracleConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / f"oracle{i}.db"),
            spec_stores=[spec_url],
            confirmations=1,
            poll_interval=0.1,
            max_wait=0.3,
            takeover=2.0,
            batch_size=16,
            **cfg,
        )
        nodes.append(OracleNode(c, Chain(anvil.url, rec), keys["oracles"][i]))
    urls = [node.start_server() for node in nodes]
    for i, node in enumerate(nodes):
        node.cfg.peers = [u for j, u in enumerate(urls) if j != i]
    for node in nodes:
        cluster.run(node)
    return nodes


def start_worker(
    anvil: Any,
    rec: Any,
    acct: Any,
    tmp_path: Path,
    name: str,
    spec_url: str,
    oracle_urls: list[str],
    cluster: Cluster,
    **kw: Any,
) -> Worker:
    cfg = WorkerConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / f"{name}.db"),
        store_dir=str(tmp_path / f"{name}-blobs"),
        spec_stores=[spec_url],
        oracle_urls=oracle_urls,
        poll_interval=0.1,
        claim_interval=0.5,
    )
    w = Worker(cfg, Chain(anvil.url, rec), acct, **kw)
    w.start_server()
    cluster.run(w)
    return w


@pytest.mark.parametrize("n_oracles,threshold", [(1, 1), (3, 2)])
def test_round_trip__two_workers_one_cheats__honest_jobs_settled_exactly_once(
    anvil, deploy, keys, tmp_path, spec_server, n_oracles, threshold
):
    rec = deploy(threshold, n_oracles)
    chain = Chain(anvil.url, rec)
    store = LocalBlobStore(tmp_path / "specs")
    cluster = Cluster()
    try:
        nodes = start_oracles(anvil, rec, keys, tmp_path, spec_server.url, n_oracles, cluster)
        oracle_urls = [n.server.url for n in nodes if n.server is not None]
        specs = [matmul(i, "int8" if i % 2 else "fp32") for i in range(6)]
        specs.append(matmul(99, "int8", mode="sampled"))
        jobs = post_jobs(chain, keys["requester"], specs, store)
        cheated = {jobs[0], jobs[3], jobs[6]}
        start_worker(
            anvil, rec, keys["honest"], tmp_path, "honest", spec_server.url, oracle_urls, cluster
        )
        start_worker(
            anvil,
            rec,
            keys["cheater"],
            tmp_path,
            "cheater",
            spec_server.url,
            oracle_urls,
            cluster,
            tamper=_cheat_on(cheated),
        )

        # A job whose spec was never published: no worker can take it.
        [orphan] = post_jobs(chain, keys["requester"], [matmul(1234)], None)

        def done() -> bool:
            paid, _, slashed = settled_events(chain)
            return all(paid[j] >= 1 for j in jobs) and set(slashed) >= cheated

        wait_until(done, timeout=60)

        # Every stake comes home: with the payout (VALID), to the requester (INVALID), or by
        # the losing worker's own `release` once the job went to the other.
        every = [(j, w) for j in jobs for w in (keys["honest"].address, keys["cheater"].address)]
        wait_until(lambda: all(chain.stake(j, w) == 0 for j, w in every), timeout=30)

        # Past the deadline (and the settlement grace) and the epoch's end: the requester
        # takes the unfinished job's escrow back, and the running workers claim the epoch.
        anvil.w3.provider.make_request("evm_increaseTime", [3_600 + 601])
        anvil.w3.provider.make_request("evm_mine", [])
        TxSender(chain, keys["requester"]).send(chain.market.functions.refund(orphan), "refund")
        worked = {
            (int(e.args["epoch"]), e.args["worker"]): 0
            for e in chain.events(rec.block, chain.head(), names=("WorkRecorded",))
        }
        wait_until(
            lambda: (
                len([e for e in chain.events(rec.block, chain.head(), names=("RewardClaimed",))])
                == len(worked)
            ),
            timeout=30,
        )
    finally:
        cluster.shutdown()
    # The split of each epoch's emission matches attested work exactly, to the wei.
    work: Counter[tuple[int, str]] = Counter()
    for e in chain.events(rec.block, chain.head(), names=("WorkRecorded",)):
        work[(int(e.args["epoch"]), e.args["worker"])] += int(e.args["work_units"])
    expected: Counter[str] = Counter()
    for (epoch, worker), units in work.items():
        total = sum(u for (ep, _), u in work.items() if ep == epoch)
        expected[worker] += int(chain.call("epoch_emission", epoch)) * units // total
    for worker, amount in expected.items():
        assert chain.token.functions.balanceOf(worker).call() == amount > 0
    assert chain.job_status(orphan) == STATUS_REFUNDED
    assert int(chain.call("credited", keys["requester"].address, ZERO)) >= PRICE
    paid, paid_to, slashed = settled_events(chain)
    assert all(paid[j] == 1 for j in jobs), paid
    assert all(chain.job_status(j) == STATUS_PAID for j in jobs)
    cheater = keys["cheater"].address
    assert not [j for j, w in paid_to if w == cheater and j in cheated]
    # A submission neither paid nor slashed had its stake released by its worker, once; a
    # paid one never (its stake came back with the pay). A cheater's losing submission may be
    # released before its INVALID lands: it stays slashable, and is slashed.
    evs = chain.events(rec.block, chain.head(), names=ALL_EVENTS)
    submitted = {
        (int(e.args["job_id"]), e.args["worker"]) for e in evs if e.name == "ResultSubmitted"
    }
    slashed_subs = {
        (int(e.args["job_id"]), e.args["worker"]) for e in evs if e.name == "WorkerSlashed"
    }
    released = [(int(e.args["job_id"]), e.args["worker"]) for e in evs if e.name == "StakeReleased"]
    assert len(released) == len(set(released))
    assert not set(released) & set(paid_to)
    assert submitted - set(paid_to) - slashed_subs <= set(released)
    assert sorted(slashed) == sorted(cheated)
    # `pouw report` reads the same story back from chain state alone.
    data = from_chain(chain)
    assert [j[0] for j in data.jobs] == [*jobs, orphan]
    assert sum(units for _, _, units in data.work) == sum(j[3] for j in data.jobs if j[0] != orphan)
    draw_report(data, str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
