"""The challenge window: `settle` applies verdicts but holds the money in `pending`; `finalize`
pays a batch, once, after its `final_at`, only against the exact record `settle` stored; claims
of an epoch wait until every batch settled in it is final."""

from dataclasses import replace

import ape
import pytest
from eth_utils import keccak, to_checksum_address

from oracle.protocol.settled import SettledBatch, SettledItem
from tests.conftest import settled_batch
from tests.utils.constants import (
    CHALLENGE_WINDOW,
    EPOCH_LENGTH,
    ETHER,
    INVALID,
    MAX_HORIZON,
    MIN_BOND,
    REFUND_GRACE,
    REFUTED,
    REVEAL_WINDOW,
    SKIP_NO_SUCH_SUBMISSION,
    STATUS_OPEN,
    STATUS_PAID,
    UNBONDING_DELAY,
    VALID,
    ZERO_ADDRESS,
)

AMOUNT = ETHER // 10
USD_AMOUNT = 40 * ETHER
EMPTY = b"\x00" * 32

RUNNING = "market: challenge window running"
NO_BATCH = "market: no pending batch"
NOT_RECORD = "market: not the batch record"


def record(market, batch: SettledBatch) -> bytes:
    return bytes(market.batch_record(batch.batch_id))


def travel(chain, timestamp: int) -> None:
    """The next block is mined at `timestamp` exactly."""
    chain.pending_timestamp = timestamp


def assert_books_balance(chain, market, usd, jobs, accounts) -> None:
    """Everything the market holds is accounted for, to the wei: ETH = open ETH escrow + free
    bonds + live stakes + credited + pending; the token likewise (escrow + credited + pending)."""
    eth = market.pending(ZERO_ADDRESS)
    tok = market.pending(usd)
    for j in jobs:
        job = market.job(j)
        if job.status == STATUS_OPEN:
            if job.asset == ZERO_ADDRESS:
                eth += job.amount
            else:
                tok += job.amount
        for a in accounts:
            eth += market.submissions(j, a).stake
    for a in accounts:
        eth += market.bonds(a) + market.credited(a, ZERO_ADDRESS)
        tok += market.credited(a, usd)
    assert chain.provider.get_balance(market.address) == eth
    assert usd.balanceOf(market) == tok


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def valid_batch(market, worker, live_job, attest, settle):
    """One VALID item on `live_job`, settled now: (job id, settle receipt, batch)."""
    tx = settle([attest(live_job, worker)])
    return live_job, tx, settled_batch(market, tx)


@pytest.fixture
def mixed(
    market,
    usd,
    requester,
    other_requester,
    workers,
    create_job,
    bond,
    submit,
    attest,
    settle,
):
    """A settled batch mixing VALID (ETH and ERC-20, one worker) and INVALID (another worker,
    on another requester's job), plus a skipped item. Returns a namespace of its parts."""
    w1, w2 = workers[:2]
    j_eth = create_job(sender=requester)
    j_usd = create_job(sender=requester, asset=usd, amount=USD_AMOUNT)
    j_bad = create_job(sender=other_requester)
    bond(w1, 2 * MIN_BOND)
    bond(w2, 3 * MIN_BOND)  # 2 free + 1 staked: all of it is slashed
    submit(w1, j_eth)
    submit(w1, j_usd)
    submit(w2, j_bad)
    items = [
        attest(j_eth, w1, VALID),
        attest(j_usd, w1, VALID),
        attest(j_eth, w1, VALID),  # skipped: the job was paid by the first item
        attest(j_bad, w2, INVALID),
    ]
    tx = settle(items, sender=workers[5])  # relayed by someone outside the batch

    class Mixed:
        pass

    m = Mixed()
    m.w1, m.w2, m.j_eth, m.j_usd, m.j_bad = w1, w2, j_eth, j_usd, j_bad
    m.tx = tx
    m.batch = settled_batch(market, tx)
    return m


# ---------------------------------------------------------------------------
# The window
# ---------------------------------------------------------------------------


def test_finalize__one_second_early__reverts_and_moves_nothing_then_pays_at_final_at(
    chain, market, worker, stranger, valid_batch, finalize, ledger
):
    job_id, tx, batch = valid_batch
    assert batch.final_at == tx.timestamp + CHALLENGE_WINDOW
    state = ledger(jobs=[job_id])
    # Straight after settle, and at the last second of the window.
    with ape.reverts(RUNNING):
        finalize(tx, wait=False)
    travel(chain, batch.final_at - 1)
    with ape.reverts(RUNNING):
        market.finalize(*batch.args(), sender=stranger)
    assert chain.blocks.head.timestamp == batch.final_at - 1  # it ran at final_at - 1
    state.assert_unchanged()
    assert record(market, batch) == batch.record_hash()

    travel(chain, batch.final_at)
    fin = market.finalize(*batch.args(), sender=stranger)
    assert fin.timestamp == batch.final_at
    [ev] = fin.decode_logs(market.BatchFinalized)
    assert (ev.batch_id, ev.paid, ev.slashed) == (batch.batch_id, 1, 0)
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(worker) == MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0
    assert record(market, batch) == EMPTY


def test_finalize__twice__reverts_and_moves_nothing(market, worker, valid_batch, finalize, ledger):
    job_id, tx, batch = valid_batch
    finalize(tx)
    state = ledger(jobs=[job_id])
    with ape.reverts(NO_BATCH):
        finalize(batch)
    state.assert_unchanged()
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT  # paid once


def test_finalize__unknown_batch__reverts(market, valid_batch, finalize, ledger):
    job_id, _, batch = valid_batch
    state = ledger(jobs=[job_id])
    for batch_id in (0, batch.batch_id + 1):
        with ape.reverts(NO_BATCH):
            finalize(replace(batch, batch_id=batch_id))
    state.assert_unchanged()


def test_finalize__while_paused__works(market, deployer, worker, valid_batch, finalize):
    _, tx, _ = valid_batch
    market.pause(sender=deployer)
    finalize(tx)
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT


def test_finalize__by_anyone__pays_the_batch_parties_not_the_caller(
    chain, market, requester, other_requester, stranger, mixed, finalize
):
    """Finalize is permissionless: a stranger to the batch pays it and gains nothing."""
    m = mixed
    before = chain.provider.get_balance(stranger.address)
    fin = finalize(m.batch, sender=stranger)
    assert fin.sender == stranger.address
    assert chain.provider.get_balance(stranger.address) == before - fin.total_fees_paid
    assert market.credited(stranger, ZERO_ADDRESS) == 0
    assert market.bonds(stranger) == 0
    assert market.credited(m.w1, ZERO_ADDRESS) == AMOUNT
    # The slashed bond goes to the requester of the slashed job, not the other requester.
    assert market.credited(other_requester, ZERO_ADDRESS) == 3 * MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == 0


# ---------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------


def _other_oracle(batch, oracles):
    return next(o.address for o in oracles if o.address not in batch.signers)


def _item(batch, i, **changes):
    items = list(batch.items)
    items[i] = replace(items[i], **changes)
    return replace(batch, items=tuple(items))


TAMPER = {
    "epoch+1": lambda b, m, o, usd: replace(b, epoch=b.epoch + 1),
    "final_at-1": lambda b, m, o, usd: replace(b, final_at=b.final_at - 1),
    "final_at+1": lambda b, m, o, usd: replace(b, final_at=b.final_at + 1),
    "signer_swapped": lambda b, m, o, usd: replace(b, signers=(_other_oracle(b, o),)),
    "signer_added": lambda b, m, o, usd: replace(
        b, signers=tuple(sorted((*b.signers, _other_oracle(b, o)), key=lambda a: int(a, 16)))
    ),
    "signers_dropped": lambda b, m, o, usd: replace(b, signers=()),
    "valid_amount+1": lambda b, m, o, usd: _item(b, 0, amount=b.items[0].amount + 1),
    "slash_amount-1": lambda b, m, o, usd: _item(b, 2, amount=b.items[2].amount - 1),
    "valid_worker": lambda b, m, o, usd: _item(b, 0, worker=str(m.w2.address)),
    "slash_worker": lambda b, m, o, usd: _item(b, 2, worker=str(m.w1.address)),
    "valid_to_refuted": lambda b, m, o, usd: _item(b, 0, verdict=REFUTED),
    "invalid_to_refuted": lambda b, m, o, usd: _item(b, 2, verdict=REFUTED),
    "invalid_to_valid": lambda b, m, o, usd: _item(b, 2, verdict=VALID),
    "valid_to_invalid": lambda b, m, o, usd: _item(b, 0, verdict=INVALID),
    "asset": lambda b, m, o, usd: _item(b, 0, asset=str(usd.address)),
    "stake+1": lambda b, m, o, usd: _item(b, 1, stake=b.items[1].stake + 1),
    "job_id": lambda b, m, o, usd: _item(b, 2, job_id=m.j_eth),
    "commitment": lambda b, m, o, usd: _item(b, 0, commitment=keccak(text="other")),
    "work_units": lambda b, m, o, usd: _item(b, 0, work_units=b.items[0].work_units + 1),
    "first_item_dropped": lambda b, m, o, usd: replace(b, items=b.items[1:]),
    "last_item_dropped": lambda b, m, o, usd: replace(b, items=b.items[:-1]),
    "item_added": lambda b, m, o, usd: replace(b, items=(*b.items, b.items[0])),
    "items_reordered": lambda b, m, o, usd: replace(b, items=b.items[::-1]),
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_finalize__any_field_changed__reverts_and_moves_nothing(
    chain, market, usd, oracles, mixed, finalize, ledger, how
):
    m = mixed
    assert [i.verdict for i in m.batch.items] == [VALID, VALID, INVALID]
    forged = TAMPER[how](m.batch, m, oracles, usd)
    assert forged != m.batch
    travel(chain, max(m.batch.final_at, forged.final_at))  # the window is not the reason
    state = ledger(jobs=[m.j_eth, m.j_usd, m.j_bad])
    with ape.reverts(NOT_RECORD):
        finalize(forged, wait=False)
    state.assert_unchanged()
    assert record(market, m.batch) == m.batch.record_hash()
    finalize(m.batch)  # the true record still pays
    assert market.credited(m.w1, ZERO_ADDRESS) == AMOUNT


def test_finalize__another_pending_batch_id__reverts(
    chain, market, workers, create_job, bond, submit, attest, settle, finalize, ledger
):
    """A batch's items under another pending batch's id are not that batch."""
    w1, w2 = workers[:2]
    j1, j2 = create_job(), create_job()
    for w, j in ((w1, j1), (w2, j2)):
        bond(w)
        submit(w, j)
    a = settled_batch(market, settle([attest(j1, w1)]))
    b = settled_batch(market, settle([attest(j2, w2)]))
    travel(chain, max(a.final_at, b.final_at))
    state = ledger(jobs=[j1, j2])
    with ape.reverts(NOT_RECORD):
        finalize(replace(a, batch_id=b.batch_id))
    with ape.reverts(NOT_RECORD):
        finalize(replace(b, batch_id=a.batch_id))
    # Same epoch and signers, so only the final_at and items tell them apart: swap the items.
    with ape.reverts(NOT_RECORD):
        finalize(replace(a, items=b.items))
    state.assert_unchanged()
    finalize(b)
    finalize(a)
    assert market.credited(w1, ZERO_ADDRESS) == market.credited(w2, ZERO_ADDRESS) == AMOUNT


def test_batch_record_hash__equals_python_for_a_settled_batch(market, disputes, mixed):
    batch = mixed.batch
    assert len(batch.items) == 3
    on_chain = bytes(disputes.batch_record_hash(batch.args()))
    assert on_chain == batch.record_hash() == record(market, batch)
    # A dispute's view of the batch (one item refuted) hashes alike on both sides, differently.
    for i in range(len(batch.items)):
        refuted = batch.refuted(i)
        assert bytes(disputes.batch_record_hash(refuted.args())) == refuted.record_hash()
        assert refuted.record_hash() != on_chain


@pytest.mark.parametrize("n_items, n_signers", [(0, 0), (1, 1), (4, 3), (9, 32)])
def test_batch_record_hash__equals_python_for_any_batch(disputes, n_items, n_signers):
    top = 2**256 - 1
    signers = tuple(
        sorted(
            ("0x" + keccak(text=f"signer {i}")[-20:].hex() for i in range(n_signers)),
            key=lambda a: int(a, 16),
        )
    )
    items = tuple(
        SettledItem(
            job_id=top - i if i % 2 else i,
            worker="0x" + keccak(text=f"worker {i}")[-20:].hex(),
            commitment=keccak(text=f"commitment {i}"),
            verdict=1 + i % 3,
            asset=ZERO_ADDRESS if i % 2 else "0x" + "ff" * 20,
            amount=top - i if i % 3 else i,
            work_units=2**64 - 1 - i,
            stake=top if i % 2 else 0,
        )
        for i in range(n_items)
    )
    signers = tuple(to_checksum_address(s) for s in signers)
    items = tuple(
        replace(it, worker=to_checksum_address(it.worker), asset=to_checksum_address(it.asset))
        for it in items
    )
    for batch in (
        SettledBatch(1, 0, 0, signers, items),
        SettledBatch(top, top, top, signers, items),
    ):
        assert bytes(disputes.batch_record_hash(batch.args())) == batch.record_hash()


def test_settle__every_item_skipped__stores_nothing(
    chain, market, worker, live_job, attest, settle, finalize, ledger
):
    epoch = market.current_epoch()
    next_id = market.next_batch_id()
    last = market.last_final_at()
    state = ledger(jobs=[live_job])
    tx = settle([attest(live_job, worker, commitment=keccak(text="not it"))])
    [ev] = tx.decode_logs(market.BatchSettled)
    assert (ev.batch_id, ev.settled, ev.slashed, ev.skipped) == (0, 0, 0, 1)
    assert [e.reason for e in tx.decode_logs(market.AttestationSkipped)] == [
        SKIP_NO_SUCH_SUBMISSION
    ]
    assert settled_batch(market, tx) is None
    state.assert_unchanged()  # no job, bond, credit, pending, work or batch id moved
    assert market.next_batch_id() == next_id
    assert market.batch_record(0) == EMPTY
    assert market.batch_record(next_id) == EMPTY
    assert market.epoch_final_at(epoch) == 0
    assert market.last_final_at() == last
    # There is no batch 0 to finalize, whatever is passed.
    empty = SettledBatch(0, ev.epoch, ev.final_at, tuple(ev.signers), ())
    travel(chain, ev.final_at)
    with ape.reverts(NO_BATCH):
        finalize(empty)
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# Money: exact amounts and the books
# ---------------------------------------------------------------------------


def test_mixed_batch__held_in_pending_then_finalized_exactly(
    chain, market, usd, requester, other_requester, mixed, finalize
):
    m = mixed
    w1, w2 = m.w1, m.w2
    [head] = m.tx.decode_logs(market.BatchSettled)
    assert (head.settled, head.slashed, head.skipped) == (2, 1, 1)
    assert [(i.job_id, i.verdict, i.asset, i.amount, i.stake) for i in m.batch.items] == [
        (m.j_eth, VALID, ZERO_ADDRESS, AMOUNT, MIN_BOND),
        (m.j_usd, VALID, usd.address, USD_AMOUNT, MIN_BOND),
        (m.j_bad, INVALID, ZERO_ADDRESS, 3 * MIN_BOND, 0),
    ]
    people = (requester, other_requester, w1, w2)
    jobs = (m.j_eth, m.j_usd, m.j_bad)
    eth_held = chain.provider.get_balance(market.address)
    usd_held = usd.balanceOf(market)

    # Settled, not final: verdicts applied, every amount in `pending`, nothing credited.
    assert market.job(m.j_eth).status == market.job(m.j_usd).status == STATUS_PAID
    assert market.job(m.j_bad).status == STATUS_OPEN
    assert market.pending(ZERO_ADDRESS) == AMOUNT + 2 * MIN_BOND + 3 * MIN_BOND
    assert market.pending(usd) == USD_AMOUNT
    assert [market.bonds(w) for w in (w1, w2)] == [0, 0]
    for p in people:
        assert market.credited(p, ZERO_ADDRESS) == market.credited(p, usd) == 0
    assert_books_balance(chain, market, usd, jobs, people)

    fin = finalize(m.batch)

    [ev] = fin.decode_logs(market.BatchFinalized)
    assert (ev.batch_id, ev.paid, ev.slashed) == (m.batch.batch_id, 2, 1)
    assert market.credited(w1, ZERO_ADDRESS) == AMOUNT
    assert market.credited(w1, usd) == USD_AMOUNT
    assert market.bonds(w1) == 2 * MIN_BOND
    assert market.credited(w2, ZERO_ADDRESS) == market.credited(w2, usd) == 0
    assert market.bonds(w2) == 0
    assert market.credited(other_requester, ZERO_ADDRESS) == 3 * MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == market.credited(requester, usd) == 0
    assert market.pending(ZERO_ADDRESS) == market.pending(usd) == 0
    # Finalize moves credit inside the market, never funds out of it.
    assert chain.provider.get_balance(market.address) == eth_held
    assert usd.balanceOf(market) == usd_held
    assert_books_balance(chain, market, usd, jobs, people)


def test_books_balance_and_pending_drains_through_a_settle_finalize_sequence(
    chain,
    market,
    usd,
    requester,
    other_requester,
    workers,
    create_job,
    bond,
    submit,
    attest,
    settle,
    finalize,
):
    w1, w2 = workers[:2]
    people = (requester, other_requester, w1, w2)
    j1 = create_job()
    j2 = create_job(asset=usd, amount=USD_AMOUNT)
    j3 = create_job()
    j4 = create_job(sender=other_requester, amount=3 * AMOUNT)
    j5 = create_job()
    jobs = (j1, j2, j3, j4, j5)

    def check(eth_pending, usd_pending):
        assert (market.pending(ZERO_ADDRESS), market.pending(usd)) == (eth_pending, usd_pending)
        assert_books_balance(chain, market, usd, jobs, people)

    check(0, 0)
    bond(w1, 2 * MIN_BOND)
    bond(w2, 3 * MIN_BOND)
    submit(w1, j1)
    submit(w1, j2)
    submit(w2, j3)
    submit(w2, j4)
    check(0, 0)

    a = settled_batch(market, settle([attest(j1, w1), attest(j3, w2, INVALID)]))
    # w2's free bond (1) and the j3 stake (1) are slashed; its j4 stake stays live.
    check(AMOUNT + MIN_BOND + 2 * MIN_BOND, 0)
    b = settled_batch(market, settle([attest(j2, w1)]))
    check(AMOUNT + 3 * MIN_BOND + MIN_BOND, USD_AMOUNT)
    c = settled_batch(market, settle([attest(j4, w2)]))
    check(AMOUNT + 4 * MIN_BOND + 3 * AMOUNT + MIN_BOND, USD_AMOUNT)
    market.cancel(j5, sender=requester)
    check(4 * AMOUNT + 5 * MIN_BOND, USD_AMOUNT)

    # Finalized out of order; withdrawals in between.
    finalize(b)
    check(4 * AMOUNT + 4 * MIN_BOND, 0)
    market.withdraw(usd, sender=w1)
    assert usd.balanceOf(w1) == USD_AMOUNT
    check(4 * AMOUNT + 4 * MIN_BOND, 0)
    finalize(c)
    check(AMOUNT + 3 * MIN_BOND, 0)
    assert market.bonds(w2) == MIN_BOND  # the j4 stake came back; the slash is still pending
    finalize(a)
    check(0, 0)
    assert [record(market, x) for x in (a, b, c)] == [EMPTY] * 3
    for who, amount in ((w1, AMOUNT), (w2, 3 * AMOUNT), (requester, 2 * MIN_BOND + AMOUNT)):
        assert market.credited(who, ZERO_ADDRESS) == amount
        market.withdraw(ZERO_ADDRESS, sender=who)
        check(0, 0)
    # Left: j3's open escrow and the two free bonds.
    assert chain.provider.get_balance(market.address) == AMOUNT + 2 * MIN_BOND + MIN_BOND


# ---------------------------------------------------------------------------
# Claims wait for the epoch's last final_at
# ---------------------------------------------------------------------------


def test_claim__ended_epoch_in_challenge_window__reverts_until_epoch_final_at(
    chain, market, token, worker, create_job, bond, submit, attest, settle, ledger
):
    genesis = market.GENESIS()
    j1, j2 = create_job(), create_job()
    bond(worker, 2 * MIN_BOND)
    submit(worker, j1)
    submit(worker, j2)
    epoch = market.current_epoch()
    end = genesis + (epoch + 1) * EPOCH_LENGTH
    # Two batches near the end of the epoch: both windows run past it, the second longer.
    travel(chain, end - 200)
    a = settled_batch(market, settle([attest(j1, worker)]))
    travel(chain, end - 100)
    b = settled_batch(market, settle([attest(j2, worker)]))
    assert a.epoch == b.epoch == epoch
    assert a.final_at < b.final_at
    assert market.epoch_final_at(epoch) == b.final_at
    assert market.last_final_at() == b.final_at
    work = 2 * market.job(j1).work_units
    assert market.epoch_work(epoch, worker) == work

    state = ledger(jobs=[j1, j2])
    for t in (end + 1, a.final_at, b.final_at - 1):
        travel(chain, t)
        assert market.current_epoch() > epoch  # the epoch has ended
        with ape.reverts("market: epoch in challenge window"):
            market.claim([epoch], sender=worker)
        assert chain.blocks.head.timestamp == t
    state.assert_unchanged()
    assert token.balanceOf(worker) == 0

    travel(chain, b.final_at)
    market.claim([epoch], sender=worker)  # neither batch needs to be finalized for it
    assert token.balanceOf(worker) == market.epoch_emission(epoch)
    assert market.epoch_work(epoch, worker) == 0
    assert record(market, a) == a.record_hash()


# ---------------------------------------------------------------------------
# A new window applies to new batches only
# ---------------------------------------------------------------------------


def _params(window: int) -> tuple:
    return (MIN_BOND, UNBONDING_DELAY, REVEAL_WINDOW, REFUND_GRACE, MAX_HORIZON, window)


@pytest.mark.parametrize("window", [60, 7_200])
def test_set_parameters__new_window__keeps_final_at_of_settled_batches(
    chain,
    market,
    deployer,
    stranger,
    workers,
    create_job,
    bond,
    submit,
    attest,
    settle,
    window,
):
    w1, w2 = workers[:2]
    j1, j2 = create_job(), create_job()
    for w, j in ((w1, j1), (w2, j2)):
        bond(w)
        submit(w, j)
    # Start the batches early in an epoch, so both fall in the same one.
    genesis = market.GENESIS()
    travel(chain, genesis + (market.current_epoch() + 1) * EPOCH_LENGTH + 10)
    a_tx = settle([attest(j1, w1)])
    a = settled_batch(market, a_tx)
    assert a.final_at == a_tx.timestamp + CHALLENGE_WINDOW

    tx = market.set_parameters(_params(window), sender=deployer)
    assert tx.decode_logs(market.UpdateParameters)[0].challenge_window == window
    assert market.challenge_window() == window
    assert record(market, a) == a.record_hash()  # A's record, final_at included, stays

    b_tx = settle([attest(j2, w2)])
    b = settled_batch(market, b_tx)
    assert b.final_at == b_tx.timestamp + window
    assert a.epoch == b.epoch
    assert market.epoch_final_at(a.epoch) == max(a.final_at, b.final_at)
    assert market.last_final_at() == max(a.final_at, b.final_at)

    # A finalized under the new window is not A's record.
    early_a = replace(a, final_at=a_tx.timestamp + window)
    with ape.reverts(NOT_RECORD):
        market.finalize(*early_a.args(), sender=stranger)

    for batch in sorted((a, b), key=lambda x: x.final_at):
        travel(chain, batch.final_at - 1)
        with ape.reverts(RUNNING):
            market.finalize(*batch.args(), sender=stranger)
        travel(chain, batch.final_at)
        market.finalize(*batch.args(), sender=stranger)
        assert record(market, batch) == EMPTY
    assert market.credited(w1, ZERO_ADDRESS) == market.credited(w2, ZERO_ADDRESS) == AMOUNT
    assert market.pending(ZERO_ADDRESS) == 0
