"""Bundled fetches on a real anvil: an oracle reads a worker's sampled answers in one
``POST /results`` round trip (and the delivered full results from the job store, in one
``POST /results/fetch``) and reaches the same verdicts as one request per item; a cheat inside
a bundle is still INVALID; a broken bundle endpoint only costs the fallback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import requests
from aiohttp import web

from oracle.chain.client import Chain
from oracle.node.service import OracleConfig, OracleNode
from oracle.protocol.bundle import decode_bundle
from oracle.protocol.verdict import NOT_DELIVERED, VerdictCode, VerdictKey
from oracle.store.blobs import LocalBlobStore
from oracle.worker.service import Worker, WorkerConfig
from tests.e2e.conftest import matmul, post_jobs, wait_until

SPECS = [
    matmul(1),
    matmul(2),
    matmul(3, dtype="fp32"),
    matmul(4, mode="sampled"),
    matmul(5, dtype="fp32", mode="sampled"),
]


def _setup(
    anvil,
    rec,
    keys,
    tmp_path: Path,
    spec_url: str,
    *,
    tamper=None,
    broken=False,
    bundle_items=64,
):
    cfg = WorkerConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "w.db"),
        store_dir=str(tmp_path / "w-blobs"),
        spec_stores=[spec_url],
    )
    w = Worker(cfg, Chain(anvil.url, rec), keys["honest"], tamper=tamper)
    hits = {"manifest": 0, "answer": 0, "blob": 0, "bundle": 0}
    for name, attr in (
        ("manifest", "manifest"),
        ("answer", "answer"),
        ("blob", "blob"),
        ("bundle", "bundle"),
    ):
        real = getattr(w.api, attr)

        async def counted(req, real=real, name=name):
            hits[name] += 1
            if broken and name == "bundle":
                return web.Response(body=b"\xff garbage")
            resp = await real(req)
            return resp

        setattr(w.api, attr, counted)
    w.start_server()
    ncfg = OracleConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "o.db"),
        spec_stores=[spec_url],
        confirmations=0,
        batch_size=8,
        max_wait=0.0,
        worker_urls={w.address: w.server.url},
        bundle_items=bundle_items,
    )
    node = OracleNode(ncfg, Chain(anvil.url, rec), keys["oracles"][0])
    return w, node, hits


def _verdicts(anvil, rec, keys, tmp_path, spec_server, **kw):
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(chain, keys["requester"], SPECS, LocalBlobStore(tmp_path / "specs"))
    deliver = kw.pop("deliver", True)
    w, node, hits = _setup(anvil, rec, keys, tmp_path, spec_server.url, **kw)
    try:
        if not deliver:  # nothing reaches the store, and the commit goes out all the same
            w._deliver_results = lambda results, jobs: set()  # type: ignore[method-assign]
            w._deliver = lambda todo: todo  # type: ignore[method-assign]
        w.step(wait=True)
        if not deliver:  # retried, never decided, while the window runs; then past its end
            node.verifier.verify_due(node.follower.follow())
            assert node.db.unsettled_verdicts() == []
            anvil.w3.provider.make_request("evm_increaseTime", [301])
            anvil.w3.provider.make_request("evm_mine", [])
            time.sleep(1.1)  # the retry backoff (1 s) of what was tried before

        def decided() -> bool:
            node.verifier.verify_due(node.follower.follow())
            return len(node.db.unsettled_verdicts()) == len(jobs)

        wait_until(decided, timeout=30, every=0.05)
        out = {}
        for j in jobs:
            block = int(w.chain.call("submissions", j, w.address)[1])
            key = VerdictKey(j, w.address, w.db.job(j)["commitment"], block)
            v = node.db.verdict(key)
            out[j] = (VerdictCode(v.verdict), v.reason)
        return jobs, out, hits, node.metrics, w
    finally:
        w.close()
        node.close()


def test_bundle__one_round_trip_same_verdicts(anvil, deploy, keys, tmp_path, spec_server):
    jobs, verdicts, hits, metrics, _ = _verdicts(anvil, deploy(1, 1), keys, tmp_path, spec_server)
    assert sorted(verdicts) == jobs and len(jobs) == len(SPECS)
    assert all(v[0] == VerdictCode.VALID for v in verdicts.values()), verdicts
    assert hits == {"manifest": 0, "answer": 0, "blob": 0, "bundle": 1}
    assert metrics["bundles"] == 1 and metrics["bundle_errors"] == 0


def test_bundle__cheat_inside_is_invalid(anvil, deploy, keys, tmp_path, spec_server):
    cheated: set[int] = set()

    def tamper(job_id: int, result: np.ndarray) -> np.ndarray:
        if job_id % 2 == 0:
            cheated.add(job_id)
            result = result.copy()
            result[0, 0] += 1
        return result

    jobs, verdicts, hits, _, _ = _verdicts(
        anvil, deploy(1, 1), keys, tmp_path, spec_server, tamper=tamper
    )
    assert cheated and hits["bundle"] == 1
    for j in jobs:
        assert verdicts[j][0] == (VerdictCode.INVALID if j in cheated else VerdictCode.VALID)


def test_bundle__broken_endpoint__falls_back_to_single_requests(
    anvil, deploy, keys, tmp_path, spec_server
):
    _, verdicts, hits, metrics, _ = _verdicts(
        anvil, deploy(1, 1), keys, tmp_path, spec_server, broken=True
    )
    assert all(v[0] == VerdictCode.VALID for v in verdicts.values()), verdicts
    assert hits["bundle"] == 1 and metrics["bundle_errors"] == 1
    # Only the two sampled jobs fell back to the worker; full results come from the store.
    assert hits["manifest"] == 2 and hits["answer"] == 2 and hits["blob"] == 0


def test_bundle_endpoint__bad_requests(anvil, deploy, keys, tmp_path, spec_server):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    [job] = post_jobs(chain, keys["requester"], [matmul(9)], LocalBlobStore(tmp_path / "specs"))
    w, node, _ = _setup(anvil, rec, keys, tmp_path, spec_server.url)
    try:
        w.step(wait=True)
        url = f"{w.server.url}/results"
        for body in (
            b"not json",
            b'{"items": []}',
            b'{"items": [{"job_id": 1}]}',
            json.dumps({"items": [{"job_id": job, "commitment": "0x12"}]}).encode(),
            json.dumps({"items": [{"job_id": job, "commitment": "0x" + "00" * 32}] * 257}).encode(),
        ):
            assert requests.post(url, data=body, timeout=5).status_code == 400
        c = w.db.job(job)["commitment"]
        items = [
            {"job_id": job, "commitment": "0x" + "00" * 32},
            {"job_id": job, "commitment": "0x" + c.hex()},
            {"job_id": job, "commitment": "0x" + c.hex(), "seed": "0x" + "11" * 32},
        ]
        resp = requests.post(url, json={"items": items}, timeout=5)
        assert resp.status_code == 200
        entries = decode_bundle(resp.content)
        assert entries[0][0]["error"] == "no committed result" and entries[0][1] == b""
        assert entries[1][0]["root"] == "0x" + w.db.job(job)["root"].hex()
        assert entries[1][1] == w.store.get(entries[1][0]["blob"])
        assert len(entries[2][1]) > 0  # a sampled answer, even for a full-mode job's result
    finally:
        w.close()
        node.close()


def test_bundle_items_1__no_bundles__same_verdicts(anvil, deploy, keys, tmp_path, spec_server):
    jobs, verdicts, hits, metrics, _ = _verdicts(
        anvil, deploy(1, 1), keys, tmp_path, spec_server, bundle_items=1
    )
    assert sorted(verdicts) == jobs
    assert all(v[0] == VerdictCode.VALID for v in verdicts.values()), verdicts
    assert hits["bundle"] == 0 and metrics["bundles"] == 0
    assert hits["manifest"] == 2 and hits["answer"] == 2 and hits["blob"] == 0


def test_committed_but_not_delivered__invalid_once_the_reveal_window_ends(
    anvil, deploy, keys, tmp_path, spec_server
):
    """A worker that commits without putting its result in the job store (here: its delivery
    step skipped) gets no verdict while the reveal window runs (the oracle retries), then
    INVALID for every job, full or sampled: its answer alone does not make a result the
    requester can fetch."""
    jobs, verdicts, _, metrics, _ = _verdicts(
        anvil, deploy(1, 1), keys, tmp_path, spec_server, bundle_items=1, deliver=False
    )
    assert sorted(verdicts) == jobs
    for j in jobs:
        assert verdicts[j] == (VerdictCode.INVALID, NOT_DELIVERED), (j, verdicts[j])
    assert metrics["fetch_errors"] >= 3  # the full-mode jobs were looked for before the end
