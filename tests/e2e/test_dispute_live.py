"""Collusion refuted on a real anvil: 3 oracles at threshold 2, two of which sign a wrong int8
result VALID; `pouw dispute` refutes it by one entry within the challenge window.

The requester posts an int8 matmul on its own `.npy` files through the CLI. A cheating worker
delivers a result with one wrong entry to the job store and commits to it; the two colluding
oracles sign the VALID attestation and relay it. Anyone holding the public data then runs
`pouw dispute`: it finds the entry, proves it on-chain, and the market reopens the job with
its escrow, takes the cheater's bond and both colluders' oracle bonds (half to the disputer,
half to the requester) and leaves the honest oracle's bond alone. A right result is reported
RIGHT (exit 1) and nothing is sent; a second dispute finds nothing left to dispute (exit 2).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import requests
from eth_utils import keccak

from oracle.chain.anvil import free_port
from oracle.chain.anvil import test_accounts as dev_accounts
from oracle.chain.client import STATUS_OPEN, STATUS_PAID, ZERO_ADDRESS, Chain, TxSender
from oracle.compute.keccak_inputs import keccak_matmul_inputs
from oracle.compute.work import result_tree
from oracle.protocol.attestation import Attestation, order_signatures, sign_settlement
from oracle.protocol.commitment import commitment
from oracle.protocol.params import LOCAL
from oracle.protocol.spec import parse_spec
from oracle.store.blobs import LocalBlobStore
from oracle.store.results import LocalResultStore, StoredResult
from tests.e2e.conftest import key_file, wait_until
from tests.e2e.test_requester_inputs_live import create_args, pouw

VALID_UNTIL = 2**40


def _post(anvil: Any, keys: dict[str, Any], tmp_path: Path, a: np.ndarray, b: np.ndarray) -> int:
    np.save(tmp_path / "A.npy", a)
    np.save(tmp_path / "B.npy", b)
    code, out, err = pouw(
        *create_args(anvil, keys, tmp_path),
        "--spec-store",
        tmp_path / "specs",
        "--a",
        tmp_path / "A.npy",
        "--b",
        tmp_path / "B.npy",
        "--json",
    )
    assert code == 0, err
    return int(json.loads(out)[0]["job_id"])


def _commit_and_settle(
    chain: Chain,
    store: Path,
    job_id: int,
    worker: Any,
    c: np.ndarray,
    signers: list[Any],
    verdict: int = 1,
    transcript: bytes = keccak(text="whatever the colluders say"),
) -> None:
    """`worker` delivers `c` to the job store and commits to it; `signers` sign `verdict`."""
    spec = parse_spec(LocalBlobStore(store).get(_spec_hash(chain, job_id)))
    root = result_tree(spec, c).root
    com = commitment(worker.address, root)
    data = c.astype("<i4").tobytes()
    LocalResultStore(store).put(StoredResult(com, worker.address, 4 * c.shape[1], data))
    tx = TxSender(chain, worker)
    tx.send(chain.market.functions.register(), "register", value=int(chain.call("min_bond")))
    rcpt = tx.send(chain.market.functions.submit_result(job_id, com), "submit")
    att = Attestation(
        job_id,
        worker.address,
        com,
        int(rcpt["blockNumber"]),
        int(chain.job(job_id)["work_units"]),
        verdict,
        transcript,
    )
    sigs = order_signatures(
        sign_settlement(k, chain.chain_id, chain.market.address, [att], VALID_UNTIL)
        for k in signers
    )
    fn = chain.market.functions.settle([att.as_tuple()], VALID_UNTIL, [s.as_tuple() for s in sigs])
    tx.send(fn, "settle")


def _int8_product(seed: int, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random int8 A (m×k) and B (k×n) and their exact product."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    return a, b, a.astype(np.int32) @ b.astype(np.int32)


def _spec_hash(chain: Chain, job_id: int) -> str:
    [ev] = chain.events(chain.deployment.block, chain.head(), job_id=job_id, names=("JobCreated",))
    return "0x" + bytes(ev.args["spec_hash"]).hex()


def test_collusion__two_of_three_sign_a_wrong_result__pouw_dispute_refutes_it(
    anvil, deploy, keys, tmp_path
):
    rec = deploy(2)
    chain = Chain(anvil.url, rec)
    store = tmp_path / "specs"
    a, b, right = _int8_product(15, 12, 40, 9)
    oracles = keys["oracles"]
    colluders, honest_oracle = oracles[:2], oracles[2]
    watcher = dev_accounts(10)[8]
    watcher_key = key_file(tmp_path, "watcher", watcher)
    common = ["--rpc", anvil.url, "--deployments", tmp_path / "deployments"]
    common += ["--spec-store", store]

    # An honest result settled VALID: nothing to dispute, nothing sent.
    honest_job = _post(anvil, keys, tmp_path, a, b)
    _commit_and_settle(chain, store, honest_job, keys["honest"], right, colluders)
    code, out, err = pouw("dispute", honest_job, *common, "--json")
    assert code == 1, err
    assert json.loads(out)["status"] == "right"

    # The colluders settle a wrong result VALID.
    job_id = _post(anvil, keys, tmp_path, a, b)
    wrong = right.copy()
    wrong[7, 4] += 1
    cheater = keys["cheater"]
    _commit_and_settle(chain, store, job_id, cheater, wrong, colluders)
    assert chain.job(job_id)["status"] == STATUS_PAID
    requester = keys["requester"].address
    credited_before = chain.call("credited", requester, ZERO_ADDRESS)

    code, out, err = pouw("dispute", job_id, *common, "--keyfile", watcher_key)
    assert code == 0, err
    assert out.startswith(f"REFUTED job {job_id}: C[7][4] is wrong"), out

    # The requester is made whole; the cheater and the colluders lose their bonds.
    assert chain.job(job_id)["status"] == STATUS_OPEN
    slashed = int(chain.call("min_bond")) + 2 * LOCAL.oracle_bond
    assert chain.call("credited", watcher.address, ZERO_ADDRESS) == slashed // 2
    assert (
        chain.call("credited", requester, ZERO_ADDRESS) == credited_before + slashed - slashed // 2
    )
    assert chain.call("bonds", cheater.address) == 0
    assert [chain.oracle_set_call("bonds", o.address) for o in colluders] == [0, 0]
    assert chain.oracle_set_call("bonds", honest_oracle.address) == LOCAL.oracle_bond

    # Nothing is left to dispute.
    code, out, err = pouw("dispute", job_id, *common, "--keyfile", watcher_key)
    assert code == 2, err
    assert out.startswith(f"NOT DISPUTED job {job_id}: no VALID verdict"), out


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=1).ok
    except requests.RequestException:
        return False


def _metric(url: str, name: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(f"pouw_watch_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no metric pouw_watch_{name}")


def test_pouw_watch__refutes_the_colluders_verdict_itself__and_not_again_after_a_restart(
    anvil, deploy, keys, tmp_path
):
    rec = deploy(2)
    chain = Chain(anvil.url, rec)
    store = tmp_path / "specs"
    a, b, right = _int8_product(16, 10, 33, 7)
    colluders = keys["oracles"][:2]
    watcher = dev_accounts(10)[9]
    watcher_key = key_file(tmp_path, "watcher", watcher)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    common = ["--rpc", anvil.url, "--deployments", tmp_path / "deployments"]
    common += ["--spec-store", store, "--db", tmp_path / "watch.db"]
    cmd = [sys.executable, "-m", "oracle.cli", "watch", *map(str, common)]
    daemon = subprocess.Popen(
        [*cmd, "--keyfile", str(watcher_key), "--port", str(port), "--poll", "0.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _up(url), 30)
        honest_job = _post(anvil, keys, tmp_path, a, b)
        _commit_and_settle(chain, store, honest_job, keys["honest"], right, colluders)
        wrong = right.copy()
        wrong[3, 6] -= 5
        job_id = _post(anvil, keys, tmp_path, a, b)
        _commit_and_settle(chain, store, job_id, keys["cheater"], wrong, colluders)
        requester = keys["requester"].address
        credited_before = chain.call("credited", requester, ZERO_ADDRESS)

        # Within the window, the watcher refutes the wrong verdict and leaves the right one.
        wait_until(lambda: chain.job(job_id)["status"] == STATUS_OPEN, 60)
        wait_until(lambda: _metric(url, "verdicts_right_total") == 1, 30)
        assert chain.job(honest_job)["status"] == STATUS_PAID
        assert _metric(url, "disputes_sent_total") == 1
        assert _metric(url, "verdicts_seen_total") == 2
        assert _metric(url, "verdicts_refuted") == 1
        slashed = int(chain.call("min_bond")) + 2 * LOCAL.oracle_bond
        assert chain.call("credited", watcher.address, ZERO_ADDRESS) == slashed // 2
        assert chain.call("credited", requester, ZERO_ADDRESS) == (
            credited_before + slashed - slashed // 2
        )
        assert [chain.oracle_set_call("bonds", o.address) for o in colluders] == [0, 0]

        # The colluders bond again and slash an honest worker, naming C[1][4] (right) as
        # wrong: the watcher overturns that too (the oracles' bonds: half to it, half to the
        # worker; the worker's bond back and the escrow paid to it).
        for o in colluders:
            bond = chain.oracle_set.functions.bond(o.address)
            TxSender(chain, keys["deployer"]).send(bond, "bond", value=LOCAL.oracle_bond)
        slashed_job = _post(anvil, keys, tmp_path, a, b)
        bogus = keccak(text="colluders")[:16] + (1).to_bytes(8, "big") + (4).to_bytes(8, "big")
        _commit_and_settle(chain, store, slashed_job, keys["honest"], right, colluders, 2, bogus)
        wait_until(lambda: chain.job(slashed_job)["status"] == STATUS_PAID, 60)
        wait_until(lambda: _metric(url, "verdicts_overturned") == 1, 30)
        assert _metric(url, "disputes_sent_total") == 2
        assert chain.call("credited", watcher.address, ZERO_ADDRESS) == (
            slashed // 2 + LOCAL.oracle_bond
        )
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err.decode()

    # A restart reads its state: both verdicts decided, nothing checked or sent again.
    nonce = chain.w3.eth.get_transaction_count(watcher.address)
    code, out, err = pouw("watch", *common, "--keyfile", watcher_key, "--once", "--json")
    assert code == 0, err
    by_job = {it["job_id"]: it for it in json.loads(out)}
    assert by_job[job_id]["status"] == "refuted"
    assert by_job[job_id]["entry"] == "3,6"
    assert by_job[honest_job]["status"] == "right"
    assert (by_job[slashed_job]["verdict"], by_job[slashed_job]["status"]) == (2, "overturned")
    assert by_job[slashed_job]["entry"] == "1,4"
    assert chain.w3.eth.get_transaction_count(watcher.address) == nonce


def test_collusion__seeded_job_on_the_keccak_stream__refuted_from_its_seed_alone(
    anvil, deploy, keys, tmp_path
):
    """`job create --keccak-inputs` posts a seeded matmul of spec version 2: nothing uploaded
    but the spec, and the contract regenerates row i of A and column j of B from the seed. A
    version-1 seeded job (SFC64) is said to be committee-only."""
    rec = deploy(2)
    chain = Chain(anvil.url, rec)
    store = tmp_path / "specs"
    colluders = keys["oracles"][:2]
    watcher = dev_accounts(10)[8]
    watcher_key = key_file(tmp_path, "watcher", watcher)
    common = ["--rpc", anvil.url, "--deployments", tmp_path / "deployments"]
    common += ["--spec-store", store]
    shape = ["--m", 6, "--n", 11, "--k", 37, "--seed", 42, "--json"]
    ids = []
    for extra in (["--keccak-inputs"], []):
        code, out, err = pouw(
            *create_args(anvil, keys, tmp_path), "--spec-store", store, *shape, *extra
        )
        assert code == 0, err
        ids.append(int(json.loads(out)[0]["job_id"]))
    keccak_job, sfc64_job = ids
    spec = parse_spec(LocalBlobStore(store).get(_spec_hash(chain, keccak_job)))
    assert (
        spec.version == 2
        and parse_spec(LocalBlobStore(store).get(_spec_hash(chain, sfc64_job))).version == 1
    )
    a, b = keccak_matmul_inputs(42, 6, 11, 37, "int8")
    wrong = a.astype(np.int32) @ b.astype(np.int32)
    wrong[5, 10] ^= 1 << 20
    _commit_and_settle(chain, store, keccak_job, keys["cheater"], wrong, colluders)

    code, out, err = pouw("dispute", keccak_job, *common, "--keyfile", watcher_key, "--json")
    assert code == 0, err
    outcome = json.loads(out)
    assert (outcome["status"], outcome["entry"]) == ("refuted", [5, 10])
    assert chain.job(keccak_job)["status"] == STATUS_OPEN
    assert [chain.oracle_set_call("bonds", o.address) for o in colluders] == [0, 0]

    # The same job on SFC64 inputs: settled VALID on a wrong result, but committee-only.
    for o in colluders:  # the slashed colluders bond again to settle it
        TxSender(chain, keys["deployer"]).send(
            chain.oracle_set.functions.bond(o.address), "bond", value=LOCAL.oracle_bond
        )
    _commit_and_settle(chain, store, sfc64_job, keys["honest"], wrong, colluders)
    code, out, err = pouw("dispute", sfc64_job, *common, "--keyfile", watcher_key)
    assert code == 2, err
    assert "SFC64" in out and out.startswith(f"NOT DISPUTED job {sfc64_job}"), out


def test_collusion__invalid_verdict_on_a_right_result__the_worker_overturns_it(
    anvil, deploy, keys, tmp_path
):
    """Two of three oracles slash an honest worker: INVALID, naming C[2][3] as wrong (in the
    clear, the last 16 bytes of the transcript hash). The worker proves that entry right with
    `pouw dispute JOB --worker ME`: its bond is back, the escrow is its, and the colluders'
    oracle bonds are its too (it is both the prover and the party harmed)."""
    rec = deploy(2)
    chain = Chain(anvil.url, rec)
    store = tmp_path / "specs"
    a, b, right = _int8_product(17, 9, 21, 8)
    colluders = keys["oracles"][:2]
    honest = keys["honest"]
    honest_key = key_file(tmp_path, "honest", honest)
    common = ["--rpc", anvil.url, "--deployments", tmp_path / "deployments"]
    common += ["--spec-store", store]
    job_id = _post(anvil, keys, tmp_path, a, b)
    amount = int(chain.job(job_id)["amount"])
    bogus = keccak(text="colluders")[:16] + (2).to_bytes(8, "big") + (3).to_bytes(8, "big")
    _commit_and_settle(chain, store, job_id, honest, right, colluders, 2, bogus)
    assert chain.call("bonds", honest.address) == 0  # slashed, pending for the requester
    credited = chain.call("credited", honest.address, ZERO_ADDRESS)

    # A VALID dispute finds nothing; anyone can see what the worker can do.
    code, out, err = pouw("dispute", job_id, *common, "--worker", honest.address)
    assert code == 0, err
    assert out.startswith(f"OVERTURNABLE job {job_id}: C[2][3], the verdict's witness, is right")

    code, out, err = pouw("dispute", job_id, *common, "--worker", honest.address, "--keyfile",
                          honest_key, "--json")  # fmt: skip
    assert code == 0, err
    outcome = json.loads(out)
    assert (outcome["status"], outcome["entry"]) == ("overturned", [2, 3])
    min_bond = int(chain.call("min_bond"))
    assert chain.call("bonds", honest.address) == min_bond  # its stake, back in its bond
    assert chain.call("credited", honest.address, ZERO_ADDRESS) == (
        credited + amount + 2 * LOCAL.oracle_bond
    )
    assert chain.job(job_id)["status"] == STATUS_PAID
    assert [chain.oracle_set_call("bonds", o.address) for o in colluders] == [0, 0]
    # Nothing is left to overturn.
    code, out, err = pouw("dispute", job_id, *common, "--worker", honest.address)
    assert code == 2, err
    assert out.startswith(f"NOT DISPUTED job {job_id}: no INVALID verdict"), out
