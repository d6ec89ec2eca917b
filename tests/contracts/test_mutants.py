"""Tests written to kill semantic mutants the rest of the suite missed (issue 11 item 5).

Each mutant below was applied to contracts/JobMarket.vy by hand, this file was run, and the
named tests failed; with the contract restored they all pass.

M1 `@nonreentrant` removed from `withdraw`, and
M2 `@nonreentrant` removed from `withdraw_bond`: each killed by both
   test_cross_reentrancy__withdraw_bond_callback_calls_withdraw__refused and
   test_cross_reentrancy__withdraw_callback_calls_withdraw_bond__refused, at
   `assert not rw.reentered()` (True: the nested call went through).
M3 INVALID credits the slashed bond in the job's asset (`credited[requester][asset of job]`
   instead of ETH): killed by test_invalid_on_token_job__slashed_bond_credited_in_eth_escrow_stays
   at `credited(requester, ETH) == BOND` (it was 0; the bond sat in the token's column).
M4 `epoch_total_work[epoch] = total_work` instead of `+=`: killed by
   test_two_batches_in_one_epoch__total_work_adds_up_shares_within_emission at
   `epoch_total_work(epoch) == 7 * UNIT` (it was 6 * UNIT, the second batch alone).

Why both cross-function directions kill both M1 and M2: Vyper 0.4 has one lock for every
`@nonreentrant` function; the outer call takes it and a nested call to a locked function
reverts. If only the outer function lost its lock, the lock is free when the nested (still
locked) function is entered; if only the nested one lost it, it never looks at the lock.
Either way the nested call goes through. The same-function reentrancy tests in
test_attacks.py cannot see this: the nested call finds a zeroed balance and fails anyway.
"""

import ape
import pytest

from tests.conftest import commitment_of
from tests.utils.constants import (
    EPOCH_LENGTH,
    ETHER,
    INVALID,
    MIN_BOND,
    STATUS_OPEN,
    STATUS_PAID,
    UNBONDING_DELAY,
    ZERO_ADDRESS,
)

AMOUNT = ETHER // 10
#: A bond no other amount in these tests equals, so a misrouted payment shows.
BOND = MIN_BOND + 123_456_789
UNIT = 2 * 64**3


# ---------------------------------------------------------------------------
# Cross-function reentrancy: withdraw_bond <-> withdraw (M1, M2)
# ---------------------------------------------------------------------------


@pytest.fixture
def cross_worker(chain, project, deployer, market, create_job, attest, settle):
    """A hostile worker contract owed both ways at once: AMOUNT wei credited for a VALID job
    and an unbonded bond of BOND wei past its delay, each withdrawable on its own."""
    rw = project.ReentrantCrossWorker.deploy(market, sender=deployer)
    rw.register(sender=deployer, value=BOND)
    job_id = create_job()
    rw.submit(job_id, commitment_of(rw.address, b"\x01" * 32), sender=deployer)
    settle([attest(job_id, rw.address)])
    rw.unbond(sender=deployer)
    chain.pending_timestamp += UNBONDING_DELAY
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(rw) == BOND
    assert chain.provider.get_balance(rw.address) == 0
    return rw


def test_cross_reentrancy__withdraw_bond_callback_calls_withdraw__refused(
    chain, market, deployer, cross_worker
):
    """Paid its bond by `withdraw_bond`, the worker's callback calls `withdraw(ETH)`: the
    nested call is refused by the shared lock (empty revert data, not a market reason), only
    the bond is paid, and the credit is still there to withdraw afterwards, once."""
    rw = cross_worker
    market_before = chain.provider.get_balance(market.address)

    tx = rw.attack_withdraw_bond_then_withdraw(sender=deployer)

    assert rw.attempts() == 1  # the callback ran and tried to re-enter
    assert not rw.reentered()
    assert rw.revert_data() == b""  # the lock's bare revert, not "market: ..."
    assert [ev.amount for ev in tx.decode_logs(market.BondWithdrawn)] == [BOND]
    assert not tx.decode_logs(market.Withdrawn)
    assert chain.provider.get_balance(rw.address) == BOND
    assert chain.provider.get_balance(market.address) == market_before - BOND
    assert market.bonds(rw) == 0
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT

    # What the nested call was refused is still owed, and paid once outside the callback.
    tx = rw.withdraw_eth(sender=deployer)
    assert [ev.amount for ev in tx.decode_logs(market.Withdrawn)] == [AMOUNT]
    assert chain.provider.get_balance(rw.address) == BOND + AMOUNT
    assert chain.provider.get_balance(market.address) == market_before - BOND - AMOUNT
    assert market.credited(rw, ZERO_ADDRESS) == 0


def test_cross_reentrancy__withdraw_callback_calls_withdraw_bond__refused(
    chain, market, deployer, cross_worker
):
    """Paid its credit by `withdraw(ETH)`, the worker's callback calls `withdraw_bond`: the
    nested call is refused by the shared lock, only the credit is paid, and the bond is
    still there to withdraw afterwards, once."""
    rw = cross_worker
    market_before = chain.provider.get_balance(market.address)

    tx = rw.attack_withdraw_then_withdraw_bond(sender=deployer)

    assert rw.attempts() == 1
    assert not rw.reentered()
    assert rw.revert_data() == b""
    assert [ev.amount for ev in tx.decode_logs(market.Withdrawn)] == [AMOUNT]
    assert not tx.decode_logs(market.BondWithdrawn)
    assert chain.provider.get_balance(rw.address) == AMOUNT
    assert chain.provider.get_balance(market.address) == market_before - AMOUNT
    assert market.credited(rw, ZERO_ADDRESS) == 0
    assert market.bonds(rw) == BOND
    assert market.unbonding_at(rw) != 0  # still unbonding, still past its delay

    tx = rw.withdraw_bond(sender=deployer)
    assert [ev.amount for ev in tx.decode_logs(market.BondWithdrawn)] == [BOND]
    assert chain.provider.get_balance(rw.address) == AMOUNT + BOND
    assert chain.provider.get_balance(market.address) == market_before - AMOUNT - BOND
    assert market.bonds(rw) == 0


# ---------------------------------------------------------------------------
# INVALID on an ERC-20 job: the slashed bond is ETH (M3)
# ---------------------------------------------------------------------------


def test_invalid_on_token_job__slashed_bond_credited_in_eth_escrow_stays(
    chain, market, usd, requester, workers, create_job, bond, submit, attest, settle
):
    """An INVALID verdict on a job escrowed in an ERC-20 credits the slashed ETH bond to the
    requester in ETH, never in the job's token; the token escrow stays in the open job, and
    another worker can still win it in the token."""
    cheat, honest = workers[:2]
    escrow = 40 * ETHER
    job_id = create_job(asset=usd, amount=escrow)
    bond(cheat, BOND)
    submit(cheat, job_id)
    usd_in_market = usd.balanceOf(market)
    eth_in_market = chain.provider.get_balance(market.address)
    assert usd_in_market == escrow
    assert market.credited(requester, ZERO_ADDRESS) == 0
    assert market.credited(requester, usd) == 0

    tx = settle([attest(job_id, cheat, INVALID)])

    [ev] = tx.decode_logs(market.WorkerSlashed)
    assert (ev.job_id, ev.worker, ev.requester, ev.amount) == (
        job_id,
        cheat.address,
        requester.address,
        BOND,
    )
    assert market.bonds(cheat) == 0
    assert market.credited(requester, ZERO_ADDRESS) == BOND
    assert market.credited(requester, usd) == 0
    assert market.credited(cheat, ZERO_ADDRESS) == 0
    assert market.credited(cheat, usd) == 0
    job = market.job(job_id)
    assert (job.asset, job.amount, job.status, job.submissions) == (
        usd.address,
        escrow,
        STATUS_OPEN,
        0,
    )
    assert usd.balanceOf(market) == usd_in_market
    assert chain.provider.get_balance(market.address) == eth_in_market

    # The requester takes the bond out in ETH; it has nothing to take in the token.
    tx = market.withdraw(ZERO_ADDRESS, sender=requester)
    assert [ev.amount for ev in tx.decode_logs(market.Withdrawn)] == [BOND]
    assert chain.provider.get_balance(market.address) == eth_in_market - BOND
    with ape.reverts("market: nothing to withdraw"):
        market.withdraw(usd, sender=requester)

    # The escrow is still the job's: an honest worker wins it, in the token.
    bond(honest)
    submit(honest, job_id)
    settle([attest(job_id, honest)])
    assert market.job(job_id).status == STATUS_PAID
    assert market.credited(honest, usd) == escrow
    assert market.credited(honest, ZERO_ADDRESS) == 0
    assert usd.balanceOf(market) == usd_in_market


# ---------------------------------------------------------------------------
# Two settle batches in one epoch: the epoch total adds up (M4)
# ---------------------------------------------------------------------------


def test_two_batches_in_one_epoch__total_work_adds_up_shares_within_emission(
    chain, market, token, workers, create_job, bond, submit, attest, settle
):
    """Two batches settled in the same epoch by different workers on different jobs: the
    epoch's total work is the sum of both batches, and the three claims mint exactly
    emission * work // total each, together at most the emission and short of it by less
    than one wei per worker (here 2 wei)."""
    w1, w2, w3 = workers[:3]
    # Start at the beginning of the next epoch so both batches land in it.
    epoch = market.current_epoch() + 1
    chain.pending_timestamp = max(chain.pending_timestamp, market.GENESIS() + epoch * EPOCH_LENGTH)
    units = {w1: UNIT, w2: 2 * UNIT, w3: 4 * UNIT}
    jobs = {}
    for w, u in units.items():
        bond(w)
        jobs[w] = create_job(units=u)
        submit(w, jobs[w])

    first = settle([attest(jobs[w1], w1)])
    second = settle([attest(jobs[w2], w2), attest(jobs[w3], w3)])

    assert first.decode_logs(market.BatchSettled)[0].epoch == epoch
    assert second.decode_logs(market.BatchSettled)[0].epoch == epoch
    assert market.epoch_total_work(epoch) == 7 * UNIT
    for w, u in units.items():
        assert market.epoch_work(epoch, w) == u

    chain.pending_timestamp = max(
        chain.pending_timestamp, market.GENESIS() + (epoch + 1) * EPOCH_LENGTH
    )
    emission = market.epoch_emission(epoch)
    assert emission == 1_000 * ETHER
    supply_before = token.totalSupply()
    minted = {}
    for w, u in units.items():
        tx = market.claim([epoch], sender=w)
        [ev] = tx.decode_logs(market.RewardClaimed)
        minted[w] = ev.amount
        assert ev.work_units == u
        assert token.balanceOf(w) == ev.amount

    # Proportional to work, rounded down: 1/7, 2/7 and 4/7 of 1000 tokens.
    assert minted == {
        w1: 142_857_142_857_142_857_142,
        w2: 285_714_285_714_285_714_285,
        w3: 571_428_571_428_571_428_571,
    }
    assert minted == {w: emission * u // (7 * UNIT) for w, u in units.items()}
    assert sum(minted.values()) == emission - 2
    assert token.totalSupply() == supply_before + emission - 2
