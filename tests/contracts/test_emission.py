"""Emission: epochs, the halving schedule, what a worker has to claim, and claim."""

import ape
import pytest

from oracle.protocol import emission
from tests.utils.constants import (
    CHALLENGE_WINDOW,
    EPOCH_LENGTH,
    HALVING_EPOCHS,
    INITIAL_EMISSION,
    ZERO_ADDRESS,
)

LAST_EPOCH = 128 * HALVING_EPOCHS - 1  # the last epoch that emits anything


def expected_reward(epoch, work, total):
    return emission.reward(INITIAL_EMISSION, HALVING_EPOCHS, epoch, work, total)


@pytest.fixture
def goto_epoch(chain, market):
    """Make the next transaction land at the start of `epoch` (or now, if already past it)."""

    def goto(epoch: int, offset: int = 0):
        start = market.GENESIS() + epoch * EPOCH_LENGTH + offset
        chain.pending_timestamp = max(start, chain.pending_timestamp)

    return goto


@pytest.fixture
def goto_claimable(chain, market, goto_epoch):
    """Make the next transaction land once every listed epoch has ended and every verdict
    settled in it is final (`epoch_final_at`), so that they can be claimed."""

    def goto(*epochs: int):
        goto_epoch(max(epochs) + 1)
        final = max(market.epoch_final_at(e) for e in epochs)
        chain.pending_timestamp = max(final, chain.pending_timestamp)

    return goto


@pytest.fixture
def verified_work(market, create_job, bond, submit, attest, settle, goto_epoch):
    """Create, submit and settle one job per (worker, units) pair in `epoch`; bonds as needed."""

    def work(pairs, epoch: int | None = None):
        jobs = []
        for w, units in pairs:
            if market.bonds(w) == 0:
                bond(w)
            job_id = create_job(units=units)
            submit(w, job_id)
            jobs.append((job_id, w))
        if epoch is not None:
            goto_epoch(epoch)
        tx = settle([attest(j, w) for j, w in jobs])
        return tx.decode_logs(market.BatchSettled)[0].epoch

    return work


# ---------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------


def test_immutables__match_deployment(market, token):
    assert market.TOKEN() == token.address
    assert market.EPOCH_LENGTH() == EPOCH_LENGTH
    assert market.INITIAL_EMISSION() == INITIAL_EMISSION
    assert market.HALVING_EPOCHS() == HALVING_EPOCHS


def test_current_epoch__advances_at_boundaries(chain, market, goto_epoch):
    e = market.current_epoch() + 2
    goto_epoch(e, offset=-1)
    chain.mine()
    assert market.current_epoch() == e - 1
    goto_epoch(e)
    chain.mine()
    assert market.current_epoch() == e
    goto_epoch(e, offset=EPOCH_LENGTH - 1)
    chain.mine()
    assert market.current_epoch() == e


@pytest.mark.parametrize(
    "epoch",
    [
        0,
        1,
        HALVING_EPOCHS - 1,
        HALVING_EPOCHS,
        2 * HALVING_EPOCHS + 1,
        LAST_EPOCH,
        LAST_EPOCH + 1,
        2**64,
        2**256 - 1,
    ],
)
def test_epoch_emission__halves_every_period(market, epoch):
    assert market.epoch_emission(epoch) == emission.epoch_emission(
        INITIAL_EMISSION, HALVING_EPOCHS, epoch
    )


def test_epoch_emission__known_values(market):
    assert market.epoch_emission(0) == INITIAL_EMISSION
    assert market.epoch_emission(HALVING_EPOCHS) == INITIAL_EMISSION // 2
    assert market.epoch_emission(3 * HALVING_EPOCHS) == INITIAL_EMISSION // 8
    assert market.epoch_emission(LAST_EPOCH) == INITIAL_EMISSION >> 127
    assert market.epoch_emission(LAST_EPOCH + 1) == 0


def test_emission_schedule_total__equals_token_cap(market, token):
    total = emission.schedule_total(INITIAL_EMISSION, HALVING_EPOCHS)
    assert total == token.cap()
    halvings = (LAST_EPOCH + 1) // HALVING_EPOCHS
    assert total == sum(
        HALVING_EPOCHS * market.epoch_emission(h * HALVING_EPOCHS) for h in range(halvings)
    )
    # Sum of every epoch's emission: the schedule cannot mint more than the cap.
    assert total == sum(
        HALVING_EPOCHS * (INITIAL_EMISSION >> h) for h in range(emission.MAX_HALVINGS)
    )


def pending_reward(market, worker, epoch) -> int:
    """What `pouw status` shows a worker has to claim (oracle.client.status.pending_reward),
    from the market's public state."""
    total = market.epoch_total_work(epoch)
    if total == 0:
        return 0
    return market.epoch_emission(epoch) * market.epoch_work(epoch, worker) // total


def test_pending_reward__tracks_share_and_clears_on_claim(
    market, workers, verified_work, goto_claimable
):
    w1, w2, idle = workers[:3]
    epoch = verified_work([(w1, 1), (w2, 2)])
    assert pending_reward(market, w1, epoch) == expected_reward(epoch, 1, 3)
    assert pending_reward(market, w2, epoch) == expected_reward(epoch, 2, 3)
    assert pending_reward(market, idle, epoch) == 0
    assert pending_reward(market, w1, epoch + 1) == 0  # no work at all in that epoch
    goto_claimable(epoch)
    tx = market.claim([epoch], sender=w1)
    assert tx.decode_logs(market.RewardClaimed)[0].amount == expected_reward(epoch, 1, 3)
    assert pending_reward(market, w1, epoch) == 0
    assert pending_reward(market, w2, epoch) == expected_reward(epoch, 2, 3)


# ---------------------------------------------------------------------------
# claim
# ---------------------------------------------------------------------------


def test_claim__sole_worker__mints_whole_emission(
    market, token, worker, verified_work, goto_claimable
):
    epoch = verified_work([(worker, 1_000)])
    goto_claimable(epoch)
    tx = market.claim([epoch], sender=worker)
    [ev] = tx.decode_logs(market.RewardClaimed)
    amount = market.epoch_emission(epoch)
    assert (ev.worker, ev.epoch, ev.work_units, ev.amount) == (worker.address, epoch, 1_000, amount)
    [mint] = tx.decode_logs(token.Transfer)
    assert (mint.sender, mint.receiver, mint.value) == (ZERO_ADDRESS, worker.address, amount)
    assert token.balanceOf(worker) == amount
    assert token.totalSupply() == amount
    assert market.epoch_work(epoch, worker) == 0
    assert market.epoch_total_work(epoch) == 1_000  # the total stays for the others' shares


def test_claim__shares_are_exact_to_the_wei(market, token, workers, verified_work, goto_claimable):
    units = [1, 2, 4]
    epoch = verified_work(list(zip(workers[:3], units, strict=True)))
    goto_claimable(epoch)
    minted = 0
    for w, u in zip(workers[:3], units, strict=True):
        market.claim([epoch], sender=w)
        share = market.epoch_emission(epoch) * u // 7
        assert share == expected_reward(epoch, u, 7)
        assert token.balanceOf(w) == share
        minted += share
    # Rounding down leaves dust unminted, never more than the epoch's emission.
    assert token.totalSupply() == minted
    assert 0 < market.epoch_emission(epoch) - minted < 3


def test_claim__several_epochs_in_one_call(market, token, workers, verified_work, goto_claimable):
    w, other = workers[:2]
    e0 = verified_work([(w, 5), (other, 5)])
    e1 = verified_work([(w, 7)], epoch=e0 + 1)
    e2 = verified_work([(w, 1), (other, 3)], epoch=e1 + 2)
    goto_claimable(e0, e1, e2)

    tx = market.claim([e0, e1, e2], sender=w)

    expected = [
        expected_reward(e0, 5, 10),
        expected_reward(e1, 7, 7),
        expected_reward(e2, 1, 4),
    ]
    logs = tx.decode_logs(market.RewardClaimed)
    assert [(ev.epoch, ev.work_units, ev.amount) for ev in logs] == list(
        zip([e0, e1, e2], [5, 7, 1], expected, strict=True)
    )
    [mint] = tx.decode_logs(token.Transfer)  # one mint for the sum
    assert mint.value == sum(expected)
    assert token.balanceOf(w) == sum(expected)


def test_claim__halving_visible_across_boundary(
    market, token, worker, verified_work, goto_claimable
):
    start = market.current_epoch()
    boundary = (start // HALVING_EPOCHS + 1) * HALVING_EPOCHS
    before = verified_work([(worker, 10)], epoch=boundary - 1)
    after = verified_work([(worker, 10)], epoch=boundary)
    assert (before, after) == (boundary - 1, boundary)
    goto_claimable(before, after)
    tx = market.claim([before, after], sender=worker)
    amounts = [ev.amount for ev in tx.decode_logs(market.RewardClaimed)]
    halvings = boundary // HALVING_EPOCHS
    assert amounts == [INITIAL_EMISSION >> (halvings - 1), INITIAL_EMISSION >> halvings]
    assert amounts[1] * 2 == amounts[0]


def test_claim__after_schedule_end__mints_nothing(
    market, token, worker, verified_work, goto_claimable
):
    epoch = verified_work([(worker, 10)], epoch=LAST_EPOCH + 1)
    assert epoch == LAST_EPOCH + 1
    assert pending_reward(market, worker, epoch) == 0
    goto_claimable(epoch)
    tx = market.claim([epoch], sender=worker)
    [ev] = tx.decode_logs(market.RewardClaimed)
    assert (ev.work_units, ev.amount) == (10, 0)
    assert not tx.decode_logs(token.Transfer)
    assert token.totalSupply() == 0
    assert market.epoch_work(epoch, worker) == 0


def test_claim__epoch_without_own_work__reverts(market, workers, verified_work, goto_epoch, ledger):
    w, idle = workers[:2]
    epoch = verified_work([(w, 10)])
    goto_epoch(epoch + 2)
    state = ledger()
    for who, e in ((idle, epoch), (w, epoch + 1)):
        with ape.reverts("market: nothing to claim"):
            market.claim([e], sender=who)
    state.assert_unchanged()
    assert market.epoch_work(epoch, w) == 10


def test_claim__current_epoch__reverts(market, worker, verified_work, ledger):
    epoch = verified_work([(worker, 10)])
    state = ledger()
    with ape.reverts("market: epoch not ended"):
        market.claim([epoch], sender=worker)
    with ape.reverts("market: epoch not ended"):
        market.claim([epoch + 5], sender=worker)
    state.assert_unchanged()
    assert market.epoch_work(epoch, worker) == 10


def test_claim__empty__reverts(market, worker, ledger):
    state = ledger()
    with ape.reverts("market: empty batch"):
        market.claim([], sender=worker)
    state.assert_unchanged()


def test_claim__while_paused__works(market, deployer, token, worker, verified_work, goto_claimable):
    epoch = verified_work([(worker, 10)])
    market.pause(sender=deployer)
    goto_claimable(epoch)
    market.claim([epoch], sender=worker)
    assert token.balanceOf(worker) == market.epoch_emission(epoch)


def test_claim__work_recorded_at_settlement_epoch(
    market, worker, create_job, bond, submit, attest, settle, goto_epoch
):
    # Work counts in the epoch the batch is settled in, not the one it was submitted in.
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    submitted = market.current_epoch()
    goto_epoch(submitted + 3)
    tx = settle([attest(job_id, worker)])
    assert tx.decode_logs(market.WorkRecorded)[0].epoch == submitted + 3
    assert market.epoch_work(submitted, worker) == 0
    assert market.epoch_work(submitted + 3, worker) == market.job(job_id).work_units


# ---------------------------------------------------------------------------
# The challenge window: an epoch can be claimed once all its verdicts are final
# ---------------------------------------------------------------------------


def test_claim__epoch_in_challenge_window__reverts_until_final(
    chain, market, token, workers, verified_work, goto_epoch, ledger
):
    """A batch settled late in an epoch is still disputable after the epoch ends: the epoch
    cannot be claimed until `epoch_final_at`, the latest `final_at` of its batches (a later
    batch pushes it out), and then can without anyone finalizing the batches."""
    w1, w2 = workers[:2]
    epoch = market.current_epoch() + 1
    first = verified_work([(w1, 1)], epoch=epoch)
    goto_epoch(epoch, offset=EPOCH_LENGTH - 60)
    second = verified_work([(w2, 3)])
    assert first == second == epoch
    final_at = market.epoch_final_at(epoch)
    assert market.last_final_at() == final_at
    assert final_at == chain.blocks.head.timestamp + CHALLENGE_WINDOW
    assert final_at > market.GENESIS() + (epoch + 1) * EPOCH_LENGTH  # into the next epoch

    goto_epoch(epoch + 1)
    state = ledger()
    # A reverted claim is mined too (one second per block): the last one lands at final_at - 1.
    for at in (chain.pending_timestamp, final_at - 2):
        for i, w in enumerate((w1, w2)):
            chain.pending_timestamp = at + i
            with ape.reverts("market: epoch in challenge window"):
                market.claim([epoch], sender=w)
    assert chain.blocks.head.timestamp == final_at - 1
    state.assert_unchanged()
    assert pending_reward(market, w1, epoch) == expected_reward(epoch, 1, 4)

    chain.pending_timestamp = final_at  # inclusive bound
    market.claim([epoch], sender=w1)
    market.claim([epoch], sender=w2)
    assert token.balanceOf(w1) == expected_reward(epoch, 1, 4)
    assert token.balanceOf(w2) == expected_reward(epoch, 3, 4)
    assert market.next_batch_id() == 3
    assert market.batch_record(1) != bytes(32)  # claimed, though nobody finalized the batches
    assert market.batch_record(2) != bytes(32)
