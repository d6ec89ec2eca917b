"""Bad input never stops the oracle: each case ends in a recorded decision."""

from __future__ import annotations

from oracle.chain.client import Chain, TxSender
from oracle.node.service import OracleConfig, OracleNode
from oracle.protocol.commitment import commitment
from oracle.protocol.verdict import VerdictCode, VerdictKey
from tests.e2e.conftest import matmul, post_jobs, wait_until


def test_unreachable_worker_and_malformed_spec__decided_and_loop_goes_on(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(chain, keys["requester"], [matmul(1), matmul(2)], None)
    w = keys["cheater"]
    tx = TxSender(chain, w)
    tx.send(  # one bond per live submission
        chain.market.functions.register(), "register", value=2 * int(chain.call("min_bond"))
    )
    fn = chain.market.functions.submit_results(
        [(j, commitment(w.address, bytes([j]) * 32)) for j in jobs]
    )
    tx.send(fn, "submit")
    bad_spec = b'{"version": 1, "kind": "matmul"}'
    from oracle.protocol.spec import parse_spec, spec_hash
    from oracle.store.blobs import LocalBlobStore

    store = LocalBlobStore(tmp_path / "specs")
    store.put(parse_spec(matmul(2)).canonical)
    path = store.path(spec_hash(matmul(1)).hex())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bad_spec)  # a store serving bytes that do not hash to the name

    cfg = OracleConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "o.db"),
        spec_stores=[spec_server.url],
        confirmations=1,
        backoff=0.05,
        max_backoff=0.1,
        max_attempts=3,
        worker_urls={w.address: "http://127.0.0.1:9"},
    )
    node = OracleNode(cfg, chain, keys["oracles"][0])
    k0, k1 = (
        VerdictKey(
            j,
            w.address,
            commitment(w.address, bytes([j]) * 32),
            int(chain.call("submissions", j, w.address)[1]),
        )
        for j in jobs
    )

    def stepped_until(cond):
        def f():
            node.step()
            return cond()

        return f

    wait_until(
        stepped_until(lambda: (node.db.submission_state(k0) or ("",))[0] == "gave_up"), timeout=20
    )
    assert node.db.submission_state(k1)[0] == "pending"  # worker down: retrying, not decided
    anvil.w3.provider.make_request("evm_increaseTime", [400])  # past the reveal window
    wait_until(stepped_until(lambda: node.db.verdict(k1) is not None), timeout=20)
    v = node.db.verdict(k1)
    assert v.verdict == VerdictCode.INVALID and "reveal window" in v.reason
    wait_until(
        stepped_until(
            lambda: any(e.name == "WorkerSlashed" for e in chain.events(rec.block, chain.head()))
        ),
        timeout=20,
    )
    assert node.db.verdict(k0) is None  # a bad spec is never blamed on the worker
    node.close()
