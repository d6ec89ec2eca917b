from eth_utils import keccak

from oracle.protocol.attestation import settlement_digest
from tests.utils.constants import STATUS_PAID, VALID, VALID_UNTIL


def test_round_trip(chain, market, worker, create_job, bond, submit, attest, settle):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    a = attest(job_id, worker, VALID)
    assert bytes(market.settlement_digest([a.as_tuple()], VALID_UNTIL)) == settlement_digest(
        chain.chain_id, market.address, [a], VALID_UNTIL
    )
    tx = settle([a])
    assert market.job(job_id).status == STATUS_PAID
    assert market.credited(worker, "0x0000000000000000000000000000000000000000") == 10**17
    assert len(tx.decode_logs(market.JobSettled)) == 1
    assert keccak(text="x")
