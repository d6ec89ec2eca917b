"""A reorg shallower than the confirmation depth changes nothing on a real anvil: the node never
reads above ``head - confirmations``, so a submission that is reorganised away before it is
confirmed is never recorded; the one that replaces it is verified once, nothing is orphaned,
no deep reorg is reported, and the job is paid once."""

from __future__ import annotations

from oracle.chain.client import Chain, TxSender
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import matmul, post_jobs, wait_until, worker_and_node
from tests.e2e.test_live_loop import settled_events

DEPTH = 6


def test_shallow_reorg__never_seen__one_verdict_paid_once(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    rpc = anvil.w3.provider.make_request
    [job] = post_jobs(chain, keys["requester"], [matmul(5)], LocalBlobStore(tmp_path / "specs"))
    w, node = worker_and_node(anvil, rec, keys, tmp_path, spec_server.url, confirmations=DEPTH)
    try:
        w.ensure_bond(force=True)
        anvil.stop_mining()  # blocks come only from this test from here on
        node.follower.follow()
        snapshot = rpc("evm_snapshot", [])["result"]
        w.follow()
        w.compute_new()
        w.commit_computed(wait=True)
        commitment = w.db.job(job)["commitment"]
        for _ in range(DEPTH - 2):  # the submission stays above head - DEPTH
            rpc("evm_mine", [])
        node.verifier.verify_due(node.follower.follow())
        assert node.db._one("SELECT COUNT(*) FROM submissions")[0] == 0
        checkpoint = node.db.checkpoint()

        assert rpc("evm_revert", [snapshot])["result"] is True  # a reorg of DEPTH - 1 blocks
        TxSender(chain, keys["honest"]).send(
            chain.market.functions.submit_results([(job, commitment)]), "resubmit"
        )

        def paid() -> bool:
            rpc("evm_mine", [])
            node.step()
            return settled_events(chain)[0][job] == 1

        wait_until(paid, timeout=30, every=0.05)
    finally:
        w.close()
        node.close()
    assert node.metrics["deep_reorgs"] == 0 and checkpoint < chain.head()
    rows = node.db._all("SELECT orphaned FROM verdicts WHERE job_id=?", (job,))
    assert rows == [(0,)]  # one verdict, never orphaned
    paid_count, _, slashed = settled_events(chain)
    assert paid_count[job] == 1 and slashed == []
