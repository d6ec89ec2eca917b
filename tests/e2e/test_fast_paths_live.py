"""The oracle's throughput shortcuts on a real anvil keep their guarantees: events decoded
straight with eth_abi equal web3's decoding; the block-hash cache never serves a block above
the confirmed head and is emptied by a detected reorg; an item the contract skips is marked
moot from the receipt's ``AttestationSkipped`` log, with no per-item chain reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from web3.logs import DISCARD

from oracle.chain.client import ALL_EVENTS, Chain
from oracle.exceptions import ChainError
from oracle.node.service import OracleConfig, OracleNode
from oracle.store.blobs import LocalBlobStore
from oracle.worker.service import Worker, WorkerConfig
from tests.e2e.conftest import matmul, post_jobs, wait_until


def _node(anvil, rec, keys, tmp_path: Path, spec_url: str, **kw) -> OracleNode:
    cfg = OracleConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "o.db"),
        spec_stores=[spec_url],
        confirmations=kw.pop("confirmations", 0),
        batch_size=8,
        max_wait=0.0,
        **kw,
    )
    return OracleNode(cfg, Chain(anvil.url, rec), keys["oracles"][0])


def _worker(anvil, rec, key, tmp_path: Path, spec_url: str, name: str) -> Worker:
    cfg = WorkerConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / f"{name}.db"),
        store_dir=str(tmp_path / f"{name}-blobs"),
        spec_stores=[spec_url],
    )
    w = Worker(cfg, Chain(anvil.url, rec), key)
    w.start_server()
    return w


def test_fast_event_decoding__equals_web3_process_log(anvil, deploy, keys, tmp_path, spec_server):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(
        chain, keys["requester"], [matmul(i) for i in range(3)], LocalBlobStore(tmp_path / "specs")
    )
    w = _worker(anvil, rec, keys["honest"], tmp_path, spec_server.url, "w")
    node = _node(anvil, rec, keys, tmp_path, spec_server.url, worker_urls={w.address: w.server.url})
    try:

        def settled() -> bool:
            w.step()
            node.step()
            return sum(e.name == "JobSettled" for e in chain.events(rec.block, chain.head())) == 3

        wait_until(settled, timeout=30, every=0.05)
    finally:
        w.close()
        node.close()
    logs = chain.w3.eth.get_logs(
        {"address": chain.market.address, "fromBlock": rec.block, "toBlock": chain.head()}
    )
    fast = chain.events(rec.block, chain.head(), names=ALL_EVENTS)
    names = {e.name for e in fast}
    assert {
        "JobCreated",
        "ResultSubmitted",
        "JobSettled",
        "BatchSettled",
        "WorkRecorded",
        "Bonded",
    } <= names
    ref = []
    for name in ALL_EVENTS:
        for d in chain.market.events[name]().process_receipt({"logs": logs}, errors=DISCARD):
            ref.append(((int(d["blockNumber"]), int(d["logIndex"])), name, dict(d["args"])))
    ref.sort(key=lambda x: x[0])
    assert [((e.block_number, e.log_index), e.name, e.args) for e in fast] == ref
    assert len(jobs) == 3


def test_block_hash_cache__never_above_confirmed_head__emptied_by_reorg(
    anvil, deploy, keys, tmp_path, spec_server, monkeypatch
):
    rec = deploy(1, 1)
    node = _node(anvil, rec, keys, tmp_path, spec_server.url, confirmations=2)
    try:
        for _ in range(4):
            anvil.w3.provider.make_request("evm_mine", [])
        with pytest.raises(ChainError, match="above the confirmed head"):
            node.follower.confirmed_hash(0)  # nothing followed yet: nothing is confirmed
        safe = node.follower.follow()
        head = node.chain.head()
        assert safe == head - 2
        with pytest.raises(ChainError, match="above the confirmed head"):
            node.follower.confirmed_hash(safe + 1)  # exists on the chain, but not confirmed
        calls = []
        real = node.chain.block_hash
        monkeypatch.setattr(node.chain, "block_hash", lambda n: calls.append(n) or real(n))
        h = node.follower.confirmed_hash(safe)
        assert h == real(safe) and node.follower.confirmed_hash(safe) == h and calls == [safe]
        # A deep reorg (the recorded checkpoint hash no longer matches) empties the cache.
        cp = node.db.checkpoint()
        with sqlite3.connect(node.db.path) as db:
            db.execute("UPDATE blocks SET hash=? WHERE number=?", (b"\x00" * 32, cp))
        node.follower.check_reorg()
        assert node.metrics["deep_reorgs"] == 1
        with pytest.raises(ChainError, match="above the confirmed head"):
            node.follower.confirmed_hash(safe)
        node.follower.follow()
        calls.clear()
        assert node.follower.confirmed_hash(safe) == h and calls == [safe]  # read again, not served
    finally:
        node.close()


def test_item_skipped_by_contract__marked_moot_from_receipt(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    [job] = post_jobs(chain, keys["requester"], [matmul(7)], LocalBlobStore(tmp_path / "specs"))
    # Two honest workers commit to the same job: both verdicts are VALID, one batch holds
    # both, the contract pays the first and skips the second (job no longer open).
    ws = [_worker(anvil, rec, keys[k], tmp_path, spec_server.url, k) for k in ("honest", "cheater")]
    node = _node(
        anvil,
        rec,
        keys,
        tmp_path,
        spec_server.url,
        worker_urls={w.address: w.server.url for w in ws},
    )
    try:
        for w in ws:
            w.step(wait=True)

        def decided() -> bool:
            anvil.w3.provider.make_request("evm_mine", [])
            node.verifier.verify_due(node.follower.follow())
            return len(node.db.unsettled_verdicts()) == 2

        wait_until(decided, timeout=30, every=0.05)
        assert node.settler.settle_ready(now=1e12) == 1
        assert node.metrics["items_skipped"] == 1 and node.metrics["settle_txs"] == 1
        marks = {}
        for w in ws:
            c = w.db.job(job)["commitment"]
            marks[w.address] = node.db._one(
                "SELECT onchain FROM verdicts WHERE job_id=? AND worker=? AND commitment=?",
                (job, w.address, c),
            )[0]
        assert sorted(marks.values()) == ["moot", "settled"]
        assert node.db.unsettled_verdicts() == []  # nothing left to propose again
        assert node.settler.settle_ready(now=1e12) == 0
        assert all(tx["state"] == "mined" for tx in node.db.txs())
    finally:
        for w in ws:
            w.close()
        node.close()
