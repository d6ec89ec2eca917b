from eth_utils import keccak

from oracle.protocol.attestation import settlement_digest
from tests.utils.constants import CHALLENGE_WINDOW, STATUS_PAID, VALID, VALID_UNTIL, ZERO_ADDRESS


def test_round_trip(chain, market, worker, create_job, bond, submit, attest, settle, finalize):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    a = attest(job_id, worker, VALID)
    tx = settle([a])
    assert bytes(tx.decode_logs(market.BatchSettled)[0].digest) == settlement_digest(
        chain.chain_id, market.address, [a], VALID_UNTIL
    )
    assert market.job(job_id).status == STATUS_PAID
    assert len(tx.decode_logs(market.JobSettled)) == 1
    [batch] = tx.decode_logs(market.BatchSettled)
    assert batch.final_at == tx.timestamp + CHALLENGE_WINDOW
    # The escrow waits out the challenge window in `pending`, then goes to the worker.
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert market.pending(ZERO_ADDRESS) == 10**17 + market.min_bond()
    finalize(tx)
    assert market.credited(worker, ZERO_ADDRESS) == 10**17
    assert market.pending(ZERO_ADDRESS) == 0
    assert keccak(text="x")
