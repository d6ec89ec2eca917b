"""A node restarted with verdicts it signed before reads the chain before it spends gas on
them: an item someone else settled meanwhile is marked and left out, not sent (two oracles
each sent ~75k gas of skipped items after a restart)."""

from __future__ import annotations

import time

from oracle.chain.client import Chain, TxSender
from oracle.node.db import StoredVerdict
from oracle.node.service import OracleConfig, OracleNode
from oracle.protocol.attestation import Attestation, sign_settlement
from oracle.protocol.commitment import commitment
from oracle.protocol.verdict import VerdictKey
from tests.e2e.conftest import matmul, post_jobs


def _verdict(key: VerdictKey, units: int, decided_at: float) -> StoredVerdict:
    return StoredVerdict(
        key=key,
        seed=b"\x01" * 32,
        challenge_block=key.submission_block + 1,
        challenge_hash=b"\x02" * 32,
        work_units=units,
        verdict=1,
        reason="ok",
        transcript={},
        transcript_hash=b"\x03" * 32,
        decided_at=decided_at,
    )


def test_restart__verdict_settled_meanwhile__not_sent_again(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    done, still_open = post_jobs(chain, keys["requester"], [matmul(1), matmul(2)], None)
    w = keys["honest"]
    tx = TxSender(chain, w)
    tx.send(chain.market.functions.register(), "register", value=2 * int(chain.call("min_bond")))
    tx.send(
        chain.market.functions.submit_results(
            [(j, commitment(w.address, bytes([j]) * 32)) for j in (done, still_open)]
        ),
        "submit",
    )
    keys_ = {
        j: VerdictKey(
            j,
            w.address,
            commitment(w.address, bytes([j]) * 32),
            chain.submission(j, w.address)[1],
        )
        for j in (done, still_open)
    }
    units = int(chain.job(done)["work_units"])
    # Someone settles `done` while our node is down (here: the oracle key, by hand).
    oracle = keys["oracles"][0]
    a = Attestation(*keys_[done].args(), units, 1, b"\x03" * 32)
    until = chain.now() + 600
    sig = sign_settlement(oracle, chain.chain_id, chain.market.address, [a], until)
    TxSender(chain, oracle).send(
        chain.market.functions.settle([a.as_tuple()], until, [sig.as_tuple()]), "settle"
    )
    cfg = OracleConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "o.db"),
        spec_stores=[spec_server.url],
        confirmations=0,
        max_wait=0.0,
        batch_size=8,
    )
    node = OracleNode(cfg, chain, oracle)
    try:
        # Verdicts recorded before this process started, on both submissions.
        before = time.time() - 60
        node.db.record_verdicts([_verdict(k, units, before) for k in keys_.values()])
        settled = node.settler.settle_ready()
        assert settled == 1  # only the still-open job went out
        assert node.metrics["settle_txs"] == 1
        assert node.metrics["items_found_settled"] == 1
        assert node.db.unsettled() == []
        assert chain.job_status(still_open) == 2
        skipped = chain.events(rec.block, chain.head(), names=("AttestationSkipped",))
        assert skipped == []  # nothing was sent that the contract would skip
    finally:
        node.close()
