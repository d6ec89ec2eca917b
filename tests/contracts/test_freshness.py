"""A verdict settles the submission it was about, once, while its signatures are fresh.

Issue 11 items 1 and 2: a signed INVALID verdict replayed against the same result committed
again after a slash, and signatures that never expire (a batch kept for weeks, a key's
signature from before it joined the oracle set)."""

import ape

from oracle.protocol.attestation import SIGNATURE_TTL, settlement_digest, sign_settlement
from tests.utils.constants import (
    INVALID,
    MIN_BOND,
    SKIP_NO_SUCH_SUBMISSION,
    STATUS_OPEN,
    STATUS_PAID,
    VALID,
    ZERO_ADDRESS,
)

EXPIRED = "market: signatures expired"


def _skips(tx, market):
    return [(ev.job_id, ev.worker, ev.reason) for ev in tx.decode_logs(market.AttestationSkipped)]


def test_replayed_invalid__same_result_recommitted__skipped_and_new_bond_kept(
    chain,
    market,
    requester,
    stranger,
    worker,
    create_job,
    bond,
    submit,
    attest,
    sign,
    relay,
    finalize,
    ledger,
):
    """The attack: slashed, bonded again, the same commitment again; the old INVALID batch,
    relayed by anyone, must not take the new bond."""
    job_id = create_job()
    bond(worker)
    first = submit(worker, job_id)
    old = attest(job_id, worker, INVALID)
    old_sigs = sign([old])
    finalize(relay([old], old_sigs))
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    bond(worker)
    again = submit(worker, job_id, root=None)  # the same root: the same commitment
    assert again == first
    live = market.submissions(job_id, worker)
    assert bytes(live.commitment) == first and live.block_number != old.submission_block
    state = ledger(jobs=[job_id])
    tx = relay([old], old_sigs, sender=stranger)
    assert _skips(tx, market) == [(job_id, worker.address, SKIP_NO_SUCH_SUBMISSION)]
    state.assert_unchanged()  # the new bond, the submission and the requester's credit
    # A verdict on the new submission, signed afresh, settles it.
    tx = relay([attest(job_id, worker, VALID)], sign([attest(job_id, worker, VALID)]))
    assert [ev.job_id for ev in tx.decode_logs(market.JobSettled)] == [job_id]
    assert market.job(job_id).status == STATUS_PAID
    finalize(tx)
    assert market.bonds(worker) == MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND  # only the first slash


def test_attestation__names_another_block__skipped(
    market, worker, live_job, attest, settle, ledger
):
    """Binding is exact: the live commitment with any other submission block is not it."""
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    for block in (a.submission_block - 1, a.submission_block + 1, 0):
        tx = settle([attest(live_job, worker, block=block)])
        assert _skips(tx, market) == [(live_job, worker.address, SKIP_NO_SUCH_SUBMISSION)]
    state.assert_unchanged()
    settle([a])
    assert market.job(live_job).status == STATUS_PAID


def test_expired_batch__reverts_and_moves_nothing(
    chain, market, worker, live_job, attest, sign, relay, ledger
):
    a = attest(live_job, worker)
    until = chain.pending_timestamp + SIGNATURE_TTL
    sigs = sign([a], valid_until=until)
    chain.pending_timestamp = until + 1  # kept one second too long
    state = ledger(jobs=[live_job])
    with ape.reverts(EXPIRED):
        relay([a], sigs, valid_until=until)
    state.assert_unchanged()
    assert market.job(live_job).status == STATUS_OPEN
    # Stretching the expiry is another message: the old signatures recover to strangers.
    with ape.reverts("oracles: signer not oracle"):
        relay([a], sigs, valid_until=until + 3_600)
    state.assert_unchanged()


def test_batch__settles_up_to_its_last_second(chain, market, worker, live_job, attest, sign, relay):
    a = attest(live_job, worker)
    until = chain.pending_timestamp + 60
    sigs = sign([a], valid_until=until)
    chain.pending_timestamp = until  # the last second it counts
    relay([a], sigs, valid_until=until)
    assert market.job(live_job).status == STATUS_PAID


def test_signature_from_before_joining__has_expired_when_it_would_count(
    chain, market, oracle_set, deployer, outsider_key, worker, live_job, attest, relay, ledger
):
    """A key signs while it is no oracle; once the owner adds it, that old signature is
    stale: it counted for nothing then and counts for nothing now."""
    a = attest(live_job, worker)
    until = chain.pending_timestamp + SIGNATURE_TTL
    early = sign_settlement(outsider_key, chain.chain_id, market.address, [a], until)
    with ape.reverts("oracles: signer not oracle"):
        relay([a], [early], valid_until=until)
    chain.pending_timestamp = until + 1
    oracle_set.add_oracle(outsider_key.address, sender=deployer)
    oracle_set.bond(outsider_key.address, value=oracle_set.oracle_bond(), sender=deployer)
    oracle_set.set_threshold(1, sender=deployer)
    state = ledger(jobs=[live_job])
    with ape.reverts(EXPIRED):
        relay([a], [early], valid_until=until)
    state.assert_unchanged()
    # Only the expiry stops it: the same key, now a bonded member, signing afresh, counts.
    fresh_until = chain.pending_timestamp + SIGNATURE_TTL
    fresh = sign_settlement(outsider_key, chain.chain_id, market.address, [a], fresh_until)
    tx = relay([a], [fresh], valid_until=fresh_until)
    assert tx.decode_logs(market.BatchSettled)[0].signers == [outsider_key.address]
    assert market.job(live_job).status == STATUS_PAID


def test_settlement_digest__binds_submission_block_and_expiry(
    chain, market, worker, live_job, attest
):
    a = attest(live_job, worker)
    base = settlement_digest(chain.chain_id, market.address, [a], 1_000)
    moved = attest(live_job, worker, block=a.submission_block + 1)
    assert settlement_digest(chain.chain_id, market.address, [moved], 1_000) != base
    assert settlement_digest(chain.chain_id, market.address, [a], 1_001) != base


def test_readme_eip712_snippet__signs_an_attestation_that_settles(
    chain, market, oracles, worker, live_job, attest, relay
):
    """The README's plain eth-account snippet, run as written, settles a live submission."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("Signing one batch with plain eth-account") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    a = attest(live_job, worker)
    assert a.job_id == 1  # the snippet's job id
    ns = {
        "worker": worker.address,
        "commitment": a.commitment,
        "block": a.submission_block,
        "units": a.work_units,
        "chain_id": chain.chain_id,
        "market": market.address,
        "valid_until": chain.pending_timestamp + 600,
        "oracle_key": oracles[0].key,
    }
    exec(code, ns)
    signed, vs = ns["signed"], ns["vs"]
    item = (1, worker.address, a.commitment, a.submission_block, a.work_units, 1, b"\x00" * 32)
    market.settle([item], ns["valid_until"], [(signed.r, vs)], sender=worker)
    assert market.job(live_job).status == STATUS_PAID
