"""Collateral scales with what it backs: each live submission holds ``min_bond`` at stake.

Issue 11 item 3: one bond used to back any number of live submissions, so eight minimum
bonds could occupy every submission slot of every job until an INVALID verdict landed for
each. Now a submission moves ``min_bond`` out of the free bond into its stake: VALID returns
it, INVALID slashes it with the free bond, and ``release`` returns it once the job no longer
takes submissions (the submission stays slashable)."""

import ape
from eth_utils import keccak

from tests.utils.constants import (
    INVALID,
    MIN_BOND,
    REFUND_GRACE,
    STATUS_PAID,
    VALID,
    ZERO_ADDRESS,
)

NOT_BONDED = "market: not bonded"
FULL = "market: too many submissions"


def _commit(market, who, job_id, tag="r"):
    c = keccak(text=f"{tag} {job_id} {who.address}")
    return market.submit_result(job_id, c, sender=who), c


def test_slot_griefing__each_slot_costs_a_bond(market, workers, stranger, create_job, bond, ledger):
    """Eight minimum bonds fill one job's eight slots and no more: a ninth submission to any
    other job needs a ninth bond, so blocking the market costs a bond per slot."""
    job_a, job_b = create_job(), create_job()
    for w in workers[:8]:
        bond(w)
        _commit(market, w, job_a)
    assert market.job(job_a).submissions == 8
    state = ledger(jobs=[job_a, job_b], accounts=workers[:8])
    for w in workers[:8]:
        assert market.bonds(w) == 0
        assert market.submissions(job_a, w).stake == MIN_BOND
        with ape.reverts(NOT_BONDED):
            _commit(market, w, job_b)
    state.assert_unchanged()
    # An honest worker still gets job B's slot; job A is full to anyone.
    bond(stranger, 2 * MIN_BOND)
    _commit(market, stranger, job_b)
    with ape.reverts(FULL):
        _commit(market, stranger, job_a)


def test_submit__moves_min_bond_into_the_stake(market, worker, create_job, bond):
    j1, j2 = create_job(), create_job()
    bond(worker, 2 * MIN_BOND + 5)
    tx, _ = _commit(market, worker, j1)
    [ev] = tx.decode_logs(market.ResultSubmitted)
    assert ev.stake == MIN_BOND
    assert market.bonds(worker) == MIN_BOND + 5
    _commit(market, worker, j2)
    assert market.bonds(worker) == 5
    assert [market.submissions(j, worker).stake for j in (j1, j2)] == [MIN_BOND, MIN_BOND]


def test_submit_results__bond_for_two__three_commits_revert_whole(
    market, worker, create_job, bond, ledger
):
    jobs = [create_job() for _ in range(3)]
    bond(worker, 2 * MIN_BOND)
    state = ledger(jobs=jobs)
    with ape.reverts(NOT_BONDED):
        market.submit_results([(j, keccak(text=f"c{j}")) for j in jobs], sender=worker)
    state.assert_unchanged()
    market.submit_results([(j, keccak(text=f"c{j}")) for j in jobs[:2]], sender=worker)
    assert market.bonds(worker) == 0


def test_valid__returns_the_stake_and_clears_the_submission(
    market, worker, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    tx = settle([attest(job_id, worker, VALID)])
    [ev] = tx.decode_logs(market.JobSettled)
    assert ev.stake == MIN_BOND
    sub = market.submissions(job_id, worker)
    assert (bytes(sub.commitment), sub.block_number, sub.stake) == (bytes(32), 0, 0)
    # The stake waits in the batch through the challenge window, then returns to the bond.
    assert market.bonds(worker) == 0
    assert market.pending(ZERO_ADDRESS) == MIN_BOND + market.job(job_id).amount
    finalize(tx)
    assert market.bonds(worker) == MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0


def test_invalid__slashes_free_bond_and_stake(
    market, requester, worker, create_job, bond, submit, attest, settle, finalize, settle_final
):
    j1, j2 = create_job(), create_job()
    bond(worker, 3 * MIN_BOND)
    submit(worker, j1)
    submit(worker, j2)  # free bond now MIN_BOND, two stakes of MIN_BOND
    tx = settle([attest(j1, worker, INVALID)])
    [ev] = tx.decode_logs(market.WorkerSlashed)
    assert ev.amount == 2 * MIN_BOND  # the free bond and j1's stake
    assert market.bonds(worker) == 0
    assert market.submissions(j1, worker).stake == 0
    # The slashed ETH is held until the batch is final, then credited to the requester.
    assert market.credited(requester, ZERO_ADDRESS) == 0
    assert market.pending(ZERO_ADDRESS) == 2 * MIN_BOND
    finalize(tx)
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0
    # j2's stake is still there, and still answers for j2.
    assert market.submissions(j2, worker).stake == MIN_BOND
    settle_final([attest(j2, worker, INVALID)])
    assert market.credited(requester, ZERO_ADDRESS) == 3 * MIN_BOND


def test_release__after_the_job_went_to_another__stake_back_and_still_slashable(
    market, requester, workers, create_job, bond, submit, attest, settle, settle_final, ledger
):
    winner, loser = workers[0], workers[1]
    job_id = create_job()
    bond(winner)
    bond(loser)
    submit(winner, job_id)
    submit(loser, job_id)
    settle([attest(job_id, winner, VALID)])
    assert market.job(job_id).status == STATUS_PAID
    tx = market.release([job_id], sender=loser)
    [ev] = tx.decode_logs(market.StakeReleased)
    assert (ev.job_id, ev.worker, ev.amount) == (job_id, loser.address, MIN_BOND)
    assert market.bonds(loser) == MIN_BOND
    state = ledger(jobs=[job_id])
    with ape.reverts("market: nothing staked on job"):
        market.release([job_id], sender=loser)  # once only
    state.assert_unchanged()
    # The released submission is still live: an INVALID verdict on it slashes the bond.
    settle_final([attest(job_id, loser, INVALID)])
    assert market.bonds(loser) == 0
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND


def test_release__open_job__reverts_until_its_deadline(
    chain, market, worker, stranger, create_job, bond, submit, ledger
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job still open"):
        market.release([job_id], sender=worker)
    with ape.reverts("market: nothing staked on job"):
        market.release([job_id], sender=stranger)
    state.assert_unchanged()
    chain.pending_timestamp = deadline + 1  # no more submissions: the slot is moot
    market.release([job_id], sender=worker)
    assert market.bonds(worker) == MIN_BOND


def test_release__refunded_job__stake_back(
    chain, market, requester, worker, create_job, bond, submit
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    chain.pending_timestamp = deadline + REFUND_GRACE + 1
    market.refund(job_id, sender=requester)
    tx = market.release([job_id], sender=worker)
    assert [ev.amount for ev in tx.decode_logs(market.StakeReleased)] == [MIN_BOND]
    assert market.bonds(worker) == MIN_BOND
