"""A requester's own data in, the verified result out, on a real anvil with 3 oracles at
threshold 2 and the worker in its own process.

The requester posts, through the CLI, int8 and fp32 matmul jobs on its own ``.npy`` files (full
and sampled verification) and an mlp job from a ``safetensors`` model. Once every job is paid
the worker is SIGKILLed; ``pouw job result`` still returns each result from the job store,
checked against the worker's on-chain commitment, and ``pouw audit`` re-derives every
verdict from the job store alone: int8 bit-exact against ``A @ B`` in int32,
fp32 within the worst-case fp32 summation bound ``γ_k·(|A|·|B|)`` (γ_k = k·u/(1 − k·u),
u = 2^-24) of the float64 product, the mlp output batch within a relative 1e-4 of a float64
forward pass. Then what cannot be had: a job not settled (exit 1, nothing written), a job
that does not exist and a store that does not answer (exit 2), a store whose copy was
tampered with (skipped for the next; alone: exit 1, nothing written).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from oracle.chain.client import STATUS_PAID, Chain
from oracle.client.jobs import job_info
from oracle.store.blobs import LocalBlobStore
from oracle.store.results import LocalResultStore
from tests.e2e.conftest import key_file, wait_until
from tests.e2e.test_live_loop import Cluster, start_oracles
from tests.e2e.test_requester_inputs_live import create_args, pouw

U32 = 2.0**-24


def _worker(anvil: Any, tmp_path: Path, keys: dict[str, Any], store: str, oracles: list[str]):
    keyfile = key_file(tmp_path, "worker", keys["honest"])
    cmd = [
        sys.executable,
        "-m",
        "oracle.cli.main",
        "worker",
        "run",
        "--rpc",
        anvil.url,
        "--deployments",
        str(tmp_path / "deployments"),
        "--keyfile",
        str(keyfile),
        "--spec-store",
        store,
        "--db",
        str(tmp_path / "worker.db"),
        "--store",
        str(tmp_path / "worker-blobs"),
        "--poll",
        "0.1",
    ]
    for url in oracles:
        cmd += ["--oracle-url", url]
    log = (tmp_path / "worker.log").open("wb")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def _fp32_ok(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    k = a.shape[1]
    gamma = k * U32 / (1 - k * U32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = gamma * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))
    return bool((np.abs(c.astype(np.float64) - exact) <= bound).all())


def test_own_inputs__paid__worker_killed__results_still_verified_and_returned(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(2, 3)
    chain = Chain(anvil.url, rec)
    rng = np.random.default_rng(13)
    files: dict[str, Any] = {}
    for name, dtype in (("i8", np.int8), ("f32", np.float32)):
        if dtype == np.int8:
            a = rng.integers(-128, 128, (48, 40), dtype=np.int8)
            b = rng.integers(-128, 128, (40, 24), dtype=np.int8)
        else:
            a = rng.standard_normal((48, 40)).astype(np.float32)
            b = rng.standard_normal((40, 24)).astype(np.float32)
        np.save(tmp_path / f"A_{name}.npy", a)
        np.save(tmp_path / f"B_{name}.npy", b)
        files[name] = (a, b)
    dims = (16, 32, 8)
    weights = {}
    for layer in range(2):
        weights[f"layers.{layer}.weight"] = (
            rng.standard_normal((dims[layer + 1], dims[layer])) / 4
        ).astype(np.float32)
        weights[f"layers.{layer}.bias"] = rng.standard_normal(dims[layer + 1]).astype(np.float32)
    save_file(weights, str(tmp_path / "model.safetensors"))
    x = rng.standard_normal((10, dims[0])).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    cluster = Cluster()
    worker = None
    try:
        nodes = start_oracles(anvil, rec, keys, tmp_path, spec_server.url, 3, cluster)
        base = [*create_args(anvil, keys, tmp_path), "--spec-store", spec_server.url, "--json"]
        posted: dict[str, int] = {}
        for label, name, extra in (
            ("i8-full", "i8", []),
            ("f32-full", "f32", []),
            ("i8-sampled", "i8", ["--mode", "sampled", "--openings", "6"]),
            ("f32-sampled", "f32", ["--mode", "sampled", "--openings", "6"]),
        ):
            code, out, err = pouw(
                *base,
                "--a",
                tmp_path / f"A_{name}.npy",
                "--b",
                tmp_path / f"B_{name}.npy",
                *extra,
            )
            assert code == 0, err
            posted[label] = json.loads(out)[0]["job_id"]
        code, out, err = pouw(
            *base,
            "--kind",
            "mlp",
            "--weights",
            tmp_path / "model.safetensors",
            "--x",
            tmp_path / "x.npy",
            "--activation",
            "gelu",
        )
        assert code == 0, err
        posted["mlp"] = json.loads(out)[0]["job_id"]

        oracle_urls = [n.server.url for n in nodes if n.server is not None]
        worker = _worker(anvil, tmp_path, keys, spec_server.url, oracle_urls)
        wait_until(
            lambda: all(chain.job_status(j) == STATUS_PAID for j in posted.values()), timeout=90
        )
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        cluster.shutdown()

    common = ["--rpc", anvil.url, "--deployments", tmp_path / "deployments"]
    got: dict[str, np.ndarray] = {}
    for label, job_id in posted.items():
        out_file = tmp_path / f"{label}.npy"
        code, out, err = pouw(
            "job", "result", job_id, *common, "--store", spec_server.url, "--out", out_file
        )
        assert code == 0, err
        assert f"job {job_id}: result of {keys['honest'].address} verified" in out
        got[label] = np.load(out_file, allow_pickle=False)

    for label in ("i8-full", "i8-sampled"):
        a, b = files["i8"]
        assert got[label].dtype == np.int32
        assert np.array_equal(got[label], a.astype(np.int32) @ b.astype(np.int32)), label
    for label in ("f32-full", "f32-sampled"):
        a, b = files["f32"]
        assert got[label].dtype == np.float32 and _fp32_ok(got[label], a, b), label
    h = x.astype(np.float64)
    for layer in range(2):
        h = h @ weights[f"layers.{layer}.weight"].T.astype(np.float64) + weights[
            f"layers.{layer}.bias"
        ].astype(np.float64)
        if layer == 0:
            h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
    assert got["mlp"].shape == (10, dims[-1])
    assert np.allclose(got["mlp"], h, rtol=1e-4, atol=1e-5)

    # An auditor re-derives every verdict with the worker gone: inputs and the delivered
    # result from the job store, the seed from the chain.
    for label, job_id in posted.items():
        code, out, err = pouw("audit", job_id, *common, "--spec-store", spec_server.url)
        assert code == 0 and out.startswith(f"MATCH job {job_id}"), (label, out, err)

    # What a requester cannot have, each one line and no file written.
    job_id = posted["i8-full"]
    cases = []
    code, out, err = pouw(*base, "--a", tmp_path / "A_i8.npy", "--b", tmp_path / "B_i8.npy")
    assert code == 0, err
    unsettled = json.loads(out)[0]["job_id"]  # nobody works on it: the worker is gone
    cases.append(((unsettled, spec_server.url), 1, f"job {unsettled} is not settled"))
    cases.append(((999, spec_server.url), 2, "job 999 does not exist"))
    cases.append(((job_id, str(tmp_path / "empty")), 2, "is in none of the stores given"))
    cases.append(((job_id, "http://127.0.0.1:9"), 2, "127.0.0.1:9"))
    # A directory store whose copy of the result was tampered with.
    liar = tmp_path / "liar"
    spec_hash = job_info(chain, job_id)["spec_hash"]
    LocalBlobStore(liar).put(spec_server.store.get(spec_hash))
    result = LocalResultStore(liar)
    served = spec_server.results.get(_commitment(chain, job_id))
    result.put(served)
    path, offset, _, _, _ = result.open_range(served.commitment)
    with path.open("r+b") as fh:  # one bit of the first entry, behind the store's back
        first = os.pread(fh.fileno(), 1, offset)
        os.pwrite(fh.fileno(), bytes([first[0] ^ 1]), offset)
    cases.append(((job_id, str(liar)), 1, "no store holds a result that opens commitment"))
    for (jid, store), want_code, message in cases:
        out_file = tmp_path / f"none-{jid}.npy"
        code, out, err = pouw("job", "result", jid, *common, "--store", store, "--out", out_file)
        assert code == want_code, (jid, store, out, err)
        assert len(err.strip().splitlines()) == 1 and message in err, err
        assert not out_file.exists()
    # The tampered copy first, the store second: skipped, the good copy returned.
    out_file = tmp_path / "second.npy"
    code, _, err = pouw(
        "job", "result", job_id, *common, "--store", liar, "--store", spec_server.url,
        "--out", out_file,
    )  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.load(out_file), got["i8-full"])


def _commitment(chain: Chain, job_id: int) -> bytes:
    [sub] = [
        e
        for e in chain.events(chain.deployment.block, chain.head(), job_id=job_id)
        if e.name == "ResultSubmitted"
    ]
    return bytes(sub.args["commitment"])


def test_worker_whose_delivery_differs_from_its_commitment__invalid_and_slashed(
    anvil, deploy, keys, tmp_path, spec_server
):
    """A worker that tries to deliver other bytes than those it committed to (and commits
    anyway): the store refuses them (they do not open the commitment), so once the reveal
    window is over the submission is INVALID, settled as such, and the worker is slashed."""
    import time

    from oracle.protocol.verdict import NOT_DELIVERED, VerdictKey
    from oracle.store.results import ResultStores, StoredResult
    from tests.e2e.conftest import matmul, post_jobs, worker_and_node

    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    [job] = post_jobs(chain, keys["requester"], [matmul(3)], LocalBlobStore(tmp_path / "specs"))
    w, node = worker_and_node(anvil, rec, keys, tmp_path, spec_server.url)
    refused: list[str] = []

    def deliver_other_bytes(results: list[StoredResult], jobs: list[int]) -> set[bytes]:
        for r in results:
            data = bytearray(r.data)
            data[0] ^= 1
            other = StoredResult(r.commitment, w.address, r.row_bytes, bytes(data))
            held, errors = ResultStores([spec_server.url]).deliver([other])
            assert held == set()
            refused.extend(errors)
        return set()

    w._deliver_results = deliver_other_bytes  # type: ignore[method-assign]
    w._deliver = lambda todo: todo  # type: ignore[method-assign]  # and commits all the same
    try:
        w.step(wait=True)
        assert len(refused) == 1 and "do not open the commitment" in refused[0]
        node.step()
        assert chain.job_status(job) != STATUS_PAID
        anvil.w3.provider.make_request("evm_increaseTime", [301])
        anvil.w3.provider.make_request("evm_mine", [])
        time.sleep(1.1)  # past the fetch retry's backoff

        def slashed() -> bool:
            node.step()
            return any(
                e.name == "WorkerSlashed" and int(e.args["job_id"]) == job
                for e in chain.events(rec.block, chain.head())
            )

        wait_until(slashed, timeout=30, every=0.2)
        [sub] = [
            e
            for e in chain.events(rec.block, chain.head(), job_id=job)
            if e.name == "ResultSubmitted"
        ]
        key = VerdictKey(job, w.address, bytes(sub.args["commitment"]), sub.block_number)
        verdict = node.db.verdict(key)
        assert verdict is not None and verdict.reason == NOT_DELIVERED
        assert chain.stake(job, w.address) == 0 and chain.job_status(job) != STATUS_PAID
    finally:
        w.close()
        node.close()


def test_delivery_fails__not_committed__delivered_and_committed_on_a_later_step(
    anvil, deploy, keys, tmp_path, spec_server
):
    """A worker whose job stores do not take a batch (down, here: the first delivery fails)
    keeps the jobs computed and commits nothing of them (a commitment without a delivered
    result would be INVALID); a later step delivers them from its local blobs, then commits."""
    from tests.e2e.conftest import matmul, post_jobs, worker_and_node

    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(
        chain, keys["requester"], [matmul(7), matmul(8)], LocalBlobStore(tmp_path / "specs")
    )
    w, node = worker_and_node(anvil, rec, keys, tmp_path, spec_server.url)
    real = w.results.deliver
    calls: list[int] = []

    def down_twice(results: list[Any]) -> tuple[set[bytes], list[str]]:
        calls.append(len(results))
        if len(calls) <= 2:
            return set(), [f"{spec_server.url}: store down (test)"]
        return real(results)

    w.results.deliver = down_twice  # type: ignore[method-assign]
    try:
        w.step(wait=True)
        assert calls == [2, 2]  # after computing, and again before the commit: both failed
        assert [w.db.job(j)["state"] for j in jobs] == ["computed"] * 2
        assert all(chain.submission(j, w.address)[0] == b"\0" * 32 for j in jobs)
        assert w.metrics["results_delivered"] == 0
        w.step(wait=True)
        assert calls == [2, 2, 2]
        assert all(w.db.job(j)["state"] == "committed" for j in jobs)
        for j in jobs:
            c = w.db.job(j)["commitment"]
            assert chain.submission(j, w.address)[0] == c and spec_server.results.has(c)
        wait_until(lambda: (node.step(), all(chain.job_status(j) == STATUS_PAID for j in jobs))[1])
    finally:
        w.close()
        node.close()
