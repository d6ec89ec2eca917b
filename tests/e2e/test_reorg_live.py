"""A reorg deeper than the confirmation depth, on a real anvil (``evm_snapshot`` /
``evm_revert`` replace every block after the snapshot): the oracle detects it, orphans the
verdict whose challenge block vanished, re-verifies the submission where it landed on the new
chain under the new seed, and the job is paid once, with the new transcript."""

from __future__ import annotations

from oracle.chain.client import Chain, TxSender
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import matmul, post_jobs, wait_until, worker_and_node
from tests.e2e.test_live_loop import settled_events


def test_deep_reorg__verdict_orphaned__resubmission_verified_under_new_seed(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    rpc = anvil.w3.provider.make_request
    [job] = post_jobs(chain, keys["requester"], [matmul(3)], LocalBlobStore(tmp_path / "specs"))
    w, node = worker_and_node(anvil, rec, keys, tmp_path, spec_server.url)
    try:
        w.ensure_bond(force=True)
        snapshot = rpc("evm_snapshot", [])["result"]
        w.follow()
        w.compute_new()
        w.commit_computed(wait=True)
        commitment = w.db.job(job)["commitment"]

        def decided() -> bool:
            node.verifier.verify_due(node.follower.follow())
            return len(node.db.unsettled_verdicts()) == 1

        wait_until(decided, timeout=20, every=0.05)
        [first] = node.db.unsettled_verdicts()
        checkpoint = node.db.checkpoint()

        # Every block since the snapshot is replaced: the submission is gone, then re-sent.
        assert rpc("evm_revert", [snapshot])["result"] is True
        TxSender(chain, keys["honest"]).send(
            chain.market.functions.submit_results([(job, commitment)]), "resubmit"
        )
        while chain.head() <= checkpoint + 1:
            rpc("evm_mine", [])
        assert chain.block_hash(first.challenge_block) != first.challenge_hash

        def paid() -> bool:
            node.step()
            return settled_events(chain)[0][job] == 1

        wait_until(paid, timeout=30, every=0.05)
    finally:
        w.close()
        node.close()
    assert node.metrics["deep_reorgs"] >= 1
    rows = node.db._all(
        "SELECT seed, orphaned, challenge_block, transcript_hash FROM verdicts WHERE job_id=?",
        (job,),
    )
    by_seed = {bytes(r[0]): r for r in rows}
    assert by_seed[first.seed][1] == 1  # the old verdict is orphaned, never settled
    [live] = [r for r in rows if r[1] == 0]
    assert bytes(live[0]) != first.seed
    [settled] = [e for e in chain.events(rec.block, chain.head()) if e.name == "JobSettled"]
    assert settled.args["worker"] == keys["honest"].address
    assert bytes(settled.args["transcript_hash"]) == bytes(live[3]) != first.transcript_hash
    assert paid_once(chain, job)


def paid_once(chain: Chain, job: int) -> bool:
    paid, _, slashed = settled_events(chain)
    return paid[job] == 1 and slashed == []
