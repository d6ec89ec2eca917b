"""Tests written to kill semantic mutants the rest of the suite missed (issue 11 item 5).

Each mutant below was applied to contracts/JobMarket.vy by hand, this file was run, and the
named tests failed; with the contract restored they all pass.

M1 `@nonreentrant` removed from `withdraw`, and
M2 `@nonreentrant` removed from `withdraw_bond`: each killed by both
   test_cross_reentrancy__withdraw_bond_callback_calls_withdraw__refused and
   test_cross_reentrancy__withdraw_callback_calls_withdraw_bond__refused, at
   `assert not rw.reentered()` (True: the nested call went through).
M3 INVALID credits the slashed bond in the job's asset instead of ETH. Since the challenge
   window the slash is held in `pending` by `settle` and credited by `finalize`, so M3 has two
   forms: M3a `settle` holds it under the job's asset (`held = _add_payout(held, ..., asset of
   job, amount, ...)`), M3b `finalize` credits `credited[requester][asset of job]`. Both are
   killed by test_invalid_on_token_job__slashed_bond_credited_in_eth_escrow_stays: M3a at
   `pending(ETH) == BOND` (it was 0; the bond sat in the token's column), M3b at
   `credited(requester, ETH) == BOND` after finalize (it was 0).
M4 `epoch_total_work[epoch] = total_work` instead of `+=`: killed by
   test_two_batches_in_one_epoch__total_work_adds_up_shares_within_emission at
   `epoch_total_work(epoch) == 7 * UNIT` (it was 6 * UNIT, the second batch alone).
M5 `settle` sets `epoch_final_at[epoch] = final_at` without the `if final_at > ...` guard, and
M6 the same for `last_final_at`: `final_at` only grows with time while the challenge window
   stays, so only a window shortened by `set_parameters` between two batches shows them.
   Killed by test_shorter_window__epoch_and_market_stay_final_at_the_latest_batch: M5 at
   `epoch_final_at(epoch) == first.final_at` (and the claim inside the first batch's window
   went through), M6 at `last_final_at() == first.final_at` (the OracleSet would let an oracle
   that signed the first batch withdraw its bond while that batch can still be disputed).

Why both cross-function directions kill both M1 and M2: Vyper 0.4 has one lock for every
`@nonreentrant` function; the outer call takes it and a nested call to a locked function
reverts. If only the outer function lost its lock, the lock is free when the nested (still
locked) function is entered; if only the nested one lost it, it never looks at the lock.
Either way the nested call goes through. The same-function reentrancy tests in
test_attacks.py cannot see this: the nested call finds a zeroed balance and fails anyway.
"""

import ape
import pytest

from tests.conftest import commitment_of, settled_batch
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
from tests.utils.parameters import set_parameters

AMOUNT = ETHER // 10
#: A bond no other amount in these tests equals, so a misrouted payment shows.
BOND = MIN_BOND + 123_456_789
UNIT = 2 * 64**3


# ---------------------------------------------------------------------------
# Cross-function reentrancy: withdraw_bond <-> withdraw (M1, M2)
# ---------------------------------------------------------------------------


@pytest.fixture
def cross_worker(chain, project, deployer, market, create_job, attest, settle_final):
    """A hostile worker contract owed both ways at once: AMOUNT wei credited for a VALID job
    (its batch finalized, so the stake is back in the bond) and an unbonded bond of BOND wei
    past its delay, each withdrawable on its own."""
    rw = project.ReentrantCrossWorker.deploy(market, sender=deployer)
    rw.register(sender=deployer, value=BOND)
    job_id = create_job()
    rw.submit(job_id, commitment_of(rw.address, b"\x01" * 32), sender=deployer)
    settle_final([attest(job_id, rw.address)])
    rw.unbond(sender=deployer)
    chain.pending_timestamp += UNBONDING_DELAY
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(rw) == BOND
    assert market.pending(ZERO_ADDRESS) == 0
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
    chain, market, usd, requester, workers, create_job, bond, submit, attest, settle, finalize
):
    """An INVALID verdict on a job escrowed in an ERC-20 holds the slashed ETH bond as pending
    ETH and, once the batch is final, credits it to the requester in ETH, never in the job's
    token; the token escrow stays in the open job, and another worker can still win it in the
    token."""
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
    # Held in ETH through the challenge window: nothing is credited yet.
    assert market.pending(ZERO_ADDRESS) == BOND
    assert market.pending(usd) == 0
    assert market.credited(requester, ZERO_ADDRESS) == 0

    finalize(tx)

    assert market.pending(ZERO_ADDRESS) == 0
    assert market.pending(usd) == 0
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
    tx = settle([attest(job_id, honest)])
    assert market.job(job_id).status == STATUS_PAID
    assert market.pending(usd) == escrow
    finalize(tx)
    assert market.pending(usd) == 0
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

    # Claimable once the epoch has ended and both batches are past their challenge window.
    chain.pending_timestamp = max(
        chain.pending_timestamp,
        market.GENESIS() + (epoch + 1) * EPOCH_LENGTH,
        market.epoch_final_at(epoch),
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


# ---------------------------------------------------------------------------
# A challenge window shortened between two batches: the latest final_at stays (M5, M6)
# ---------------------------------------------------------------------------


def test_shorter_window__epoch_and_market_stay_final_at_the_latest_batch(
    chain, market, deployer, workers, create_job, bond, submit, attest, settle
):
    """The owner shortens the challenge window between two batches settled late in one epoch:
    the second batch is final long before the first, but the epoch (`epoch_final_at`) and the
    market (`last_final_at`) stay final at the first batch's `final_at`, so the epoch's work,
    which a dispute of the first batch could still change, is not claimable before it."""
    w1, w2 = workers[:2]
    epoch = market.current_epoch() + 1
    end = market.GENESIS() + (epoch + 1) * EPOCH_LENGTH  # the epoch's end
    jobs = {}
    for w in (w1, w2):
        bond(w)
        jobs[w] = create_job(deadline=end + 3_600)
        submit(w, jobs[w])
    chain.pending_timestamp = max(chain.pending_timestamp, end - 120)
    first = settled_batch(market, settle([attest(jobs[w1], w1)]))
    set_parameters(market, deployer, challenge_window=60)
    second = settled_batch(market, settle([attest(jobs[w2], w2)]))
    assert first.epoch == second.epoch == epoch
    assert second.final_at < first.final_at
    assert end < first.final_at

    assert market.epoch_final_at(epoch) == first.final_at
    assert market.last_final_at() == first.final_at

    # Past the epoch's end and the second batch's window, inside the first's: no claim yet.
    chain.pending_timestamp = max(end, second.final_at)
    assert chain.pending_timestamp < first.final_at
    for w in (w1, w2):
        with ape.reverts("market: epoch in challenge window"):
            market.claim([epoch], sender=w)
    chain.pending_timestamp = first.final_at
    market.claim([epoch], sender=w1)
    market.claim([epoch], sender=w2)
    assert market.epoch_work(epoch, w1) == market.epoch_work(epoch, w2) == 0
