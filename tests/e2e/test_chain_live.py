"""``Chain.events`` on a real node: the node filters by event and by job, and what comes back
is exactly the matching part of the unfiltered stream, in chain order."""

from __future__ import annotations

from oracle.chain.client import JOB_EVENTS, Chain, TxSender
from oracle.protocol.commitment import commitment
from tests.e2e.conftest import matmul, post_jobs


def test_events__filtered_by_name_and_job__same_as_filtering_everything(anvil, deploy, keys):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(chain, keys["requester"], [matmul(i) for i in range(3)], None)
    w = keys["honest"]
    tx = TxSender(chain, w)
    bond = 2 * int(chain.call("min_bond"))  # one per live submission
    tx.send(chain.market.functions.register(), "register", value=bond)
    tx.send(
        chain.market.functions.submit_results(
            [(j, commitment(w.address, bytes([j]) * 32)) for j in jobs[:2]]
        ),
        "submit",
    )
    every = chain.events(rec.block, chain.head())
    assert {e.name for e in every} == {"JobCreated", "ResultSubmitted"}
    only_created = chain.events(rec.block, chain.head(), names=("JobCreated",))
    assert only_created == [e for e in every if e.name == "JobCreated"]
    assert [int(e.args["job_id"]) for e in only_created] == jobs
    one_job = chain.events(rec.block, chain.head(), job_id=jobs[1], names=JOB_EVENTS)
    assert one_job == [e for e in every if int(e.args["job_id"]) == jobs[1]]
    assert [e.name for e in one_job] == ["JobCreated", "ResultSubmitted"]
    assert chain.events(rec.block, chain.head(), names=("JobSettled",)) == []


def test_broadcast__same_bytes_twice__harmless_and_a_bad_one_is_a_chain_error(anvil, deploy, keys):
    """A restarted node re-sends stored bytes: the node's "already known" / "nonce too low"
    answer means the transaction is in, not an error; anything else is a ChainError."""
    import pytest

    from oracle.exceptions import ChainError

    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    tx = TxSender(chain, keys["honest"])
    sent = tx.sign(chain.market.functions.register(), value=int(chain.call("min_bond")))
    tx.broadcast(sent.raw)
    tx.wait(sent.tx_hash, decoded=False)
    tx.broadcast(sent.raw)  # mined already: the node refuses it as known / nonce too low
    assert int(chain.call("bonds", keys["honest"].address)) == int(chain.call("min_bond"))
    with pytest.raises(ChainError, match="eth_sendRawTransaction"):
        tx.broadcast(b"\x02not a transaction")
