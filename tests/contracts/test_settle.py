"""Settlement: settle (VALID, INVALID, skips), its digest, the oracle set view, withdraw."""

import ape
import pytest
from eth_account import Account
from eth_utils import keccak

from oracle.protocol.attestation import (
    Attestation,
    recover_signer,
    settlement_digest,
    sign_settlement,
)
from tests.conftest import settled_batch
from tests.utils.constants import (
    CHALLENGE_WINDOW,
    ETHER,
    INVALID,
    MIN_BOND,
    REFUND_GRACE,
    SKIP_JOB_NOT_OPEN,
    SKIP_NO_SUCH_SUBMISSION,
    SKIP_WORK_UNITS_MISMATCH,
    STATUS_CANCELLED,
    STATUS_OPEN,
    STATUS_PAID,
    VALID,
    VALID_UNTIL,
    ZERO_ADDRESS,
)

AMOUNT = ETHER // 10
UNITS = 2 * 64**3
EMPTY = b"\x00" * 32


def skips(tx, market):
    return [(ev.job_id, ev.worker, ev.reason) for ev in tx.decode_logs(market.AttestationSkipped)]


def counts(tx, market):
    [ev] = tx.decode_logs(market.BatchSettled)
    return ev.settled, ev.slashed, ev.skipped


# ---------------------------------------------------------------------------
# VALID
# ---------------------------------------------------------------------------


def test_settle__valid__pays_worker_and_records_work(
    chain, market, worker, stranger, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    a = attest(job_id, worker, VALID)
    escrow = chain.provider.get_balance(market.address)
    assert escrow == AMOUNT + MIN_BOND
    assert market.bonds(worker) == 0  # the whole bond is the submission's stake
    epoch = market.current_epoch()
    batch_id = market.next_batch_id()

    tx = settle([a], sender=stranger)

    [settled] = tx.decode_logs(market.JobSettled)
    assert (settled.job_id, settled.worker, settled.transcript_hash, settled.stake) == (
        job_id,
        worker.address,
        a.transcript_hash,
        MIN_BOND,
    )
    [work] = tx.decode_logs(market.WorkRecorded)
    assert (work.epoch, work.worker, work.work_units) == (epoch, worker.address, UNITS)
    [batch] = tx.decode_logs(market.BatchSettled)
    assert batch.digest == settlement_digest(chain.chain_id, market.address, [a], VALID_UNTIL)
    assert (batch.batch_id, batch.epoch, batch.settled, batch.slashed, batch.skipped) == (
        batch_id,
        epoch,
        1,
        0,
        0,
    )
    assert batch.final_at == tx.timestamp + CHALLENGE_WINDOW
    assert not tx.decode_logs(market.AttestationSkipped)
    assert not tx.decode_logs(market.WorkerSlashed)

    # Settled: the job is paid and the work recorded at once...
    assert market.job(job_id).status == STATUS_PAID
    assert market.submissions(job_id, worker).commitment == EMPTY
    assert market.epoch_work(epoch, worker) == UNITS
    assert market.epoch_total_work(epoch) == UNITS
    # ...but no money moved: the escrow and the stake wait in `pending` for the window.
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert market.bonds(worker) == 0
    assert market.pending(ZERO_ADDRESS) == AMOUNT + MIN_BOND
    assert market.next_batch_id() == batch_id + 1
    assert market.batch_record(batch_id) != EMPTY
    assert market.epoch_final_at(epoch) == batch.final_at
    assert market.last_final_at() == batch.final_at
    assert chain.provider.get_balance(market.address) == escrow

    fin = finalize(tx)

    [ev] = fin.decode_logs(market.BatchFinalized)
    assert (ev.batch_id, ev.paid, ev.slashed) == (batch_id, 1, 0)
    assert fin.timestamp == batch.final_at
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(worker) == MIN_BOND  # the stake is back in the free bond
    assert market.pending(ZERO_ADDRESS) == 0
    assert market.batch_record(batch_id) == EMPTY
    # Pull payment: nothing leaves the market until the worker withdraws.
    assert chain.provider.get_balance(market.address) == escrow
    before = worker.balance
    w = market.withdraw(ZERO_ADDRESS, sender=worker)
    assert worker.balance == before + AMOUNT - w.total_fees_paid
    assert chain.provider.get_balance(market.address) == escrow - AMOUNT


def test_settle__valid_erc20_job__credits_the_token(
    market, usd, worker, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job(asset=usd, amount=40 * ETHER)
    bond(worker)
    submit(worker, job_id)
    tx = settle([attest(job_id, worker)])
    assert market.credited(worker, usd) == 0
    assert market.pending(usd) == 40 * ETHER
    assert market.pending(ZERO_ADDRESS) == MIN_BOND  # the stake, in ETH
    finalize(tx)
    assert market.credited(worker, usd) == 40 * ETHER
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert market.bonds(worker) == MIN_BOND
    assert (market.pending(usd), market.pending(ZERO_ADDRESS)) == (0, 0)
    assert usd.balanceOf(market) == 40 * ETHER


def test_settle__one_worker_many_jobs__sums_credit_and_work(
    market, usd, worker, create_job, bond, submit, attest, settle_final
):
    jobs = [create_job(units=10), create_job(units=20), create_job(asset=usd, units=30)]
    bond(worker, 3 * MIN_BOND)
    for j in jobs:
        submit(worker, j)
    epoch = market.current_epoch()
    tx = settle_final([attest(j, worker) for j in jobs])

    assert counts(tx, market) == (3, 0, 0)
    assert market.credited(worker, ZERO_ADDRESS) == 2 * AMOUNT
    assert market.credited(worker, usd) == AMOUNT
    assert market.bonds(worker) == 3 * MIN_BOND
    assert market.epoch_work(epoch, worker) == 60
    assert market.epoch_total_work(epoch) == 60
    # WorkRecorded is logged once per worker, summed over its items whatever their asset.
    recorded = tx.decode_logs(market.WorkRecorded)
    assert [(ev.worker, ev.work_units) for ev in recorded] == [(worker.address, 60)]


def test_settle__several_workers__one_epoch_total(
    market, workers, create_job, bond, submit, attest, settle
):
    w1, w2 = workers[:2]
    j1, j2 = create_job(units=3), create_job(units=4)
    for w, j in ((w1, j1), (w2, j2)):
        bond(w)
        submit(w, j)
    epoch = market.current_epoch()
    settle([attest(j1, w1), attest(j2, w2)])
    assert market.epoch_work(epoch, w1) == 3
    assert market.epoch_work(epoch, w2) == 4
    assert market.epoch_total_work(epoch) == 7


def test_settle__while_paused__works(
    market, deployer, worker, create_job, bond, submit, attest, settle
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    market.pause(sender=deployer)
    settle([attest(job_id, worker)])
    assert market.job(job_id).status == STATUS_PAID


def test_settle__after_deadline_and_grace__still_settles_open_job(
    chain, market, worker, create_job, bond, submit, attest, settle
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    chain.pending_timestamp = deadline + REFUND_GRACE + 100
    settle([attest(job_id, worker)])  # until someone refunds, the job is open
    assert market.job(job_id).status == STATUS_PAID


def test_settle__empty_batch__reverts(market, sign, relay, ledger):
    state = ledger()
    with ape.reverts("market: empty batch"):
        relay([], sign([]))
    state.assert_unchanged()


@pytest.mark.parametrize("verdict", [0, 3, 255])
def test_settle__unknown_verdict__reverts(
    market, worker, create_job, bond, submit, attest, settle, ledger, verdict
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: unknown verdict"):
        settle([attest(job_id, worker, verdict)])
    state.assert_unchanged()


def test_settle__unknown_verdict_in_skipped_item__reverts_whole_batch(
    market, worker, create_job, bond, submit, attest, settle, ledger
):
    good = create_job()
    bond(worker)
    submit(worker, good)
    junk = attest(999, worker, 7, commitment=keccak(text="x"), units=1)
    state = ledger(jobs=[good])
    with ape.reverts("market: unknown verdict"):
        settle([attest(good, worker), junk])
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# INVALID
# ---------------------------------------------------------------------------


def test_settle__invalid__slashes_bond_to_requester(
    chain, market, requester, worker, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job()
    bond(worker, 3 * MIN_BOND)
    submit(worker, job_id)
    a = attest(job_id, worker, INVALID)
    epoch = market.current_epoch()
    held = chain.provider.get_balance(market.address)
    assert held == AMOUNT + 3 * MIN_BOND
    batch_id = market.next_batch_id()

    tx = settle([a])

    [ev] = tx.decode_logs(market.WorkerSlashed)
    assert (ev.job_id, ev.worker, ev.requester, ev.amount, ev.transcript_hash) == (
        job_id,
        worker.address,
        requester.address,
        3 * MIN_BOND,
        a.transcript_hash,
    )
    assert counts(tx, market) == (0, 1, 0)
    [batch] = tx.decode_logs(market.BatchSettled)
    assert (batch.batch_id, batch.final_at) == (batch_id, tx.timestamp + CHALLENGE_WINDOW)
    assert not tx.decode_logs(market.JobSettled)
    assert not tx.decode_logs(market.WorkRecorded)
    # Settled: the bond is taken from the worker and the submission cleared at once...
    assert market.bonds(worker) == 0
    assert market.submissions(job_id, worker).commitment == EMPTY
    job = market.job(job_id)
    assert (job.status, job.submissions, job.amount) == (STATUS_OPEN, 0, AMOUNT)
    assert market.epoch_total_work(epoch) == 0
    # ...but the requester gets nothing until the batch is final: it waits in `pending`.
    assert market.credited(requester, ZERO_ADDRESS) == 0
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert market.pending(ZERO_ADDRESS) == 3 * MIN_BOND
    assert market.batch_record(batch_id) != EMPTY
    assert chain.provider.get_balance(market.address) == held

    fin = finalize(tx)

    [done] = fin.decode_logs(market.BatchFinalized)
    assert (done.batch_id, done.paid, done.slashed) == (batch_id, 0, 1)
    assert market.credited(requester, ZERO_ADDRESS) == 3 * MIN_BOND
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert market.bonds(worker) == 0
    assert market.pending(ZERO_ADDRESS) == 0
    assert market.batch_record(batch_id) == EMPTY
    assert chain.provider.get_balance(market.address) == held
    before = requester.balance
    w = market.withdraw(ZERO_ADDRESS, sender=requester)
    assert requester.balance == before + 3 * MIN_BOND - w.total_fees_paid
    assert chain.provider.get_balance(market.address) == AMOUNT  # only the open escrow


def test_settle__invalid__job_can_then_be_won_by_another_worker(
    market, workers, create_job, bond, submit, attest, settle_final
):
    cheat, honest = workers[:2]
    job_id = create_job()
    for w in (cheat, honest):
        bond(w)
    submit(cheat, job_id)
    settle_final([attest(job_id, cheat, INVALID)])

    submit(honest, job_id)
    assert market.job(job_id).submissions == 1
    tx = settle_final([attest(job_id, honest, VALID)])
    assert counts(tx, market) == (1, 0, 0)
    assert market.credited(honest, ZERO_ADDRESS) == AMOUNT
    assert market.credited(cheat, ZERO_ADDRESS) == 0


def test_settle__invalid__frees_a_submission_slot(
    market, workers, stranger, create_job, bond, submit, attest, settle
):
    job_id = create_job()
    for w in workers:
        bond(w)
        submit(w, job_id)
    bond(stranger)
    settle([attest(job_id, workers[3], INVALID)])
    assert market.job(job_id).submissions == 7
    submit(stranger, job_id)
    assert market.job(job_id).submissions == 8


def test_settle__invalid__slashed_worker_must_rebond(
    market, worker, create_job, bond, submit, attest, settle, ledger
):
    j1, j2 = create_job(), create_job()
    bond(worker)
    submit(worker, j1)
    settle([attest(j1, worker, INVALID)])
    state = ledger(jobs=[j2])
    with ape.reverts("market: not bonded"):
        market.submit_result(j2, keccak(text="c"), sender=worker)
    with ape.reverts("market: bond below minimum"):
        market.register(sender=worker, value=MIN_BOND - 1)
    state.assert_unchanged()
    bond(worker)
    # Its old submission was cleared, so it may commit to the same job again.
    submit(worker, j1)
    assert market.job(j1).submissions == 1


def test_settle__invalid_only_submission__job_refundable_or_cancellable_at_once(
    chain, market, requester, worker, create_job, bond, submit, attest, settle, finalize
):
    deadline = chain.pending_timestamp + 600
    j1, j2 = create_job(deadline=deadline), create_job(deadline=deadline)
    bond(worker, 2 * MIN_BOND)
    submit(worker, j1)
    submit(worker, j2)
    tx = settle([attest(j1, worker, INVALID), attest(j2, worker, INVALID)])
    market.cancel(j1, sender=requester)
    assert market.job(j1).status == STATUS_CANCELLED
    chain.pending_timestamp = deadline + 1  # no grace: no live submission is left
    assert chain.pending_timestamp < settled_batch(market, tx).final_at  # still in the window
    market.refund(j2, sender=requester)
    assert market.credited(requester, ZERO_ADDRESS) == 2 * AMOUNT
    finalize(tx)
    # Second INVALID slashed what was left of the bond (nothing) and its own stake.
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND + 2 * AMOUNT


def test_settle__invalid_twice_in_one_batch__second_skipped(
    market, requester, worker, create_job, bond, submit, attest, settle_final
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    a = attest(job_id, worker, INVALID)
    tx = settle_final([a, a])
    assert counts(tx, market) == (0, 1, 1)
    assert skips(tx, market) == [(job_id, worker.address, SKIP_NO_SUCH_SUBMISSION)]
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.job(job_id).submissions == 0


def test_settle__slash_on_one_job__other_valid_job_still_pays(
    market, requester, worker, create_job, bond, submit, attest, settle_final
):
    bad, good = create_job(), create_job()
    bond(worker, 2 * MIN_BOND)
    submit(worker, bad)
    submit(worker, good)
    tx = settle_final([attest(bad, worker, INVALID), attest(good, worker, VALID)])
    assert counts(tx, market) == (1, 1, 0)
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT
    # The INVALID item took the free bond (0) and its stake; the VALID one's stake came back.
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.bonds(worker) == MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0


# ---------------------------------------------------------------------------
# Mixed batches and skips
# ---------------------------------------------------------------------------


def test_settle__mixed_batch__settles_slashes_and_skips(
    market, requester, workers, create_job, bond, submit, attest, settle, finalize
):
    w1, w2, w3 = workers[:3]
    j1, j2, j3 = create_job(), create_job(), create_job()
    for w, j in ((w1, j1), (w2, j2), (w3, j3)):
        bond(w)
        submit(w, j)
    batch = [
        attest(j1, w1, VALID),
        attest(j2, w2, INVALID),
        attest(j3, w3, VALID, units=1),  # wrong work units
        attest(j1, w1, VALID),  # already paid earlier in this batch
    ]
    tx = settle(batch)
    assert counts(tx, market) == (1, 1, 2)
    assert skips(tx, market) == [
        (j3, w3.address, SKIP_WORK_UNITS_MISMATCH),
        (j1, w1.address, SKIP_JOB_NOT_OPEN),
    ]
    # The record holds the two items applied, not the skipped ones.
    recorded = settled_batch(market, tx)
    assert [(i.job_id, i.verdict) for i in recorded.items] == [(j1, VALID), (j2, INVALID)]
    assert bytes(market.batch_record(recorded.batch_id)) == recorded.record_hash()
    finalize(recorded)
    assert market.credited(w1, ZERO_ADDRESS) == AMOUNT
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.job(j3).status == STATUS_OPEN
    assert market.credited(w3, ZERO_ADDRESS) == 0


@pytest.mark.parametrize("how", ["paid", "cancelled", "refunded", "unknown"])
def test_settle__job_not_open__skipped(
    chain, market, requester, workers, create_job, bond, submit, attest, settle, how
):
    worker, winner = workers[:2]
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    commitment = keccak(text="anything")
    if how == "paid":
        bond(winner)
        submit(winner, job_id)
        settle([attest(job_id, winner)])
    elif how == "cancelled":
        market.cancel(job_id, sender=requester)
    elif how == "refunded":
        chain.pending_timestamp = deadline + 1
        market.refund(job_id, sender=requester)
    else:
        job_id = 999
    credited = market.credited(worker, ZERO_ADDRESS)
    tx = settle([attest(job_id, worker, VALID, commitment=commitment, units=UNITS)])
    assert skips(tx, market) == [(job_id, worker.address, SKIP_JOB_NOT_OPEN)]
    assert counts(tx, market) == (0, 0, 1)
    assert market.credited(worker, ZERO_ADDRESS) == credited
    assert not tx.decode_logs(market.WorkRecorded)


@pytest.mark.parametrize("verdict", [VALID, INVALID])
def test_settle__wrong_commitment__skipped(
    market, worker, create_job, bond, submit, attest, settle, verdict
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    tx = settle([attest(job_id, worker, verdict, commitment=keccak(text="other"))])
    assert skips(tx, market) == [(job_id, worker.address, SKIP_NO_SUCH_SUBMISSION)]
    assert market.job(job_id).status == STATUS_OPEN
    assert market.submissions(job_id, worker).stake == MIN_BOND
    assert market.credited(worker, ZERO_ADDRESS) == 0


def test_settle__empty_commitment_for_non_submitter__skipped(
    market, workers, create_job, bond, submit, attest, settle
):
    # A worker who never submitted has an empty stored commitment; an attestation
    # carrying the empty commitment must not match it.
    submitter, idle = workers[:2]
    job_id = create_job()
    bond(submitter)
    submit(submitter, job_id)
    tx = settle([attest(job_id, idle, VALID, commitment=EMPTY, units=UNITS)])
    assert skips(tx, market) == [(job_id, idle.address, SKIP_NO_SUCH_SUBMISSION)]
    assert market.credited(idle, ZERO_ADDRESS) == 0
    assert market.job(job_id).status == STATUS_OPEN


@pytest.mark.parametrize("delta", [-1, 1])
def test_settle__work_units_mismatch__skipped(
    market, worker, create_job, bond, submit, attest, settle, delta
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    epoch = market.current_epoch()
    tx = settle([attest(job_id, worker, VALID, units=UNITS + delta)])
    assert skips(tx, market) == [(job_id, worker.address, SKIP_WORK_UNITS_MISMATCH)]
    assert market.job(job_id).status == STATUS_OPEN
    assert market.epoch_total_work(epoch) == 0


def test_settle__work_units_mismatch_on_invalid__not_slashed(
    market, worker, create_job, bond, submit, attest, settle
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    tx = settle([attest(job_id, worker, INVALID, units=UNITS + 1)])
    assert skips(tx, market) == [(job_id, worker.address, SKIP_WORK_UNITS_MISMATCH)]
    assert market.submissions(job_id, worker).stake == MIN_BOND


def test_settle__valid_before_invalid_on_same_job__cheater_still_slashed(
    market, requester, workers, create_job, bond, submit, attest, settle_final
):
    # Order does not matter: an INVALID verdict on a live submission slashes even after the
    # job was paid earlier in the same batch.
    honest, cheat = workers[:2]
    job_id = create_job()
    for w in (honest, cheat):
        bond(w)
        submit(w, job_id)
    tx = settle_final([attest(job_id, honest, VALID), attest(job_id, cheat, INVALID)])
    assert counts(tx, market) == (1, 1, 0)
    assert market.bonds(cheat) == 0
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.credited(honest, ZERO_ADDRESS) == AMOUNT
    assert market.submissions(job_id, cheat).commitment == bytes(32)


def test_settle__invalid_after_refund__still_slashes(
    chain, market, requester, worker, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    chain.pending_timestamp += 3_600 + REFUND_GRACE + 1
    market.refund(job_id, sender=requester)
    tx = settle([attest(job_id, worker, INVALID)])
    assert tx.decode_logs(market.WorkerSlashed)[0].amount == MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT  # the refund only, so far
    finalize(tx)
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND + AMOUNT


def test_settle__invalid_before_valid_on_same_job__both_applied(
    market, requester, workers, create_job, bond, submit, attest, settle_final
):
    honest, cheat = workers[:2]
    job_id = create_job()
    for w in (honest, cheat):
        bond(w)
        submit(w, job_id)
    tx = settle_final([attest(job_id, cheat, INVALID), attest(job_id, honest, VALID)])
    assert counts(tx, market) == (1, 1, 0)
    assert market.bonds(cheat) == 0
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.credited(honest, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(honest) == MIN_BOND


# ---------------------------------------------------------------------------
# Signatures, threshold, digest
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7])
def test_settlement_digest__equals_python_eip712(chain, market, worker, settle, n):
    batch = [
        Attestation(
            job_id=2**256 - 1 - i if i % 2 else i,
            worker=worker.address,
            commitment=keccak(text=f"c{i}"),
            submission_block=2**256 - 1 - i if i % 2 else i,
            work_units=2**64 - 1 - i,
            verdict=VALID if i % 2 else INVALID,
            transcript_hash=keccak(text=f"t{i}"),
        )
        for i in range(n)
    ]
    # The market signs off on what it hashed: settle recovers the oracle's signature of the
    # Python digest (every item is then skipped: no such jobs) and logs the digest it hashed.
    tx = settle(batch)
    [ev] = tx.decode_logs(market.BatchSettled)
    python = settlement_digest(chain.chain_id, market.address, batch, VALID_UNTIL)
    assert bytes(ev.digest) == python
    assert (ev.settled, ev.slashed, ev.skipped) == (0, 0, n)
    # Order matters: the same items reversed are another message; so does the expiry.
    if n > 1:
        reverse = settlement_digest(chain.chain_id, market.address, batch[::-1], VALID_UNTIL)
        assert reverse != python
    assert settlement_digest(chain.chain_id, market.address, batch, VALID_UNTIL + 1) != python


def test_settlement_digest__binds_chain_and_market(
    chain, market, deploy_protocol, oracles, worker, sign, stranger
):
    a = Attestation(1, worker.address, keccak(text="c"), 9, 5, VALID, keccak(text="t"))
    _, other = deploy_protocol([o.address for o in oracles])
    mine = settlement_digest(chain.chain_id, market.address, [a], VALID_UNTIL)
    theirs = settlement_digest(chain.chain_id, other.address, [a], VALID_UNTIL)
    assert theirs != mine
    assert settlement_digest(chain.chain_id + 1, market.address, [a], VALID_UNTIL) != mine
    # Each market hashes under its own domain: a signature for one is no quorum on the other.
    sigs = [s.as_tuple() for s in sign([a])]
    tx = market.settle([a.as_tuple()], VALID_UNTIL, sigs, sender=stranger)
    assert bytes(tx.decode_logs(market.BatchSettled)[0].digest) == mine
    with ape.reverts("oracles: signer not oracle"):
        other.settle([a.as_tuple()], VALID_UNTIL, sigs, sender=stranger)


def test_settle__each_oracle_typed_data_signature_verifies(
    chain, market, oracles, workers, create_job, bond, submit, attest, settle_final
):
    # encode_typed_data signatures from every oracle key verify on-chain, one batch each.
    for i, key in enumerate(oracles):
        w = workers[i]
        job_id = create_job()
        bond(w)
        submit(w, job_id)
        batch = [attest(job_id, w)]
        sig = sign_settlement(key, chain.chain_id, market.address, batch, VALID_UNTIL)
        assert (
            recover_signer(chain.chain_id, market.address, batch, VALID_UNTIL, sig) == key.address
        )
        tx = settle_final(batch, keys=[key])
        assert tx.decode_logs(market.BatchSettled)[0].signers == [key.address]
        assert market.credited(w, ZERO_ADDRESS) == AMOUNT


def test_settle__multi_item_batch_signed_by_quorum(
    market, oracle_set, deployer, oracles, workers, create_job, bond, submit, attest, settle
):
    oracle_set.set_threshold(3, sender=deployer)
    jobs = []
    for w in workers[:5]:
        job_id = create_job()
        bond(w)
        submit(w, job_id)
        jobs.append((job_id, w))
    tx = settle([attest(j, w) for j, w in jobs], keys=oracles[:3])
    assert counts(tx, market) == (5, 0, 0)
    [batch] = tx.decode_logs(market.BatchSettled)
    assert batch.signers == [o.address for o in oracles[:3]]


@pytest.mark.parametrize("signers", [3, 4, 5])
def test_settle__threshold_met_or_exceeded__settles(
    market, oracle_set, deployer, oracles, worker, create_job, bond, submit, attest, settle, signers
):
    oracle_set.set_threshold(3, sender=deployer)
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    settle([attest(job_id, worker)], keys=oracles[:signers])
    assert market.job(job_id).status == STATUS_PAID


@pytest.mark.parametrize("picks", [(0, 2, 4), (1, 3, 4), (0, 1, 4), (2, 3, 4)])
def test_settle__signers_with_gaps_in_the_set__settles(
    market, oracle_set, deployer, oracles, worker, create_job, bond, submit, attest, settle, picks
):
    # The contract walks the sorted set once: members who did not sign are stepped over.
    oracle_set.set_threshold(3, sender=deployer)
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    tx = settle([attest(job_id, worker)], keys=[oracles[i] for i in picks])
    assert market.job(job_id).status == STATUS_PAID
    # The batch records exactly who signed it.
    assert tx.decode_logs(market.BatchSettled)[0].signers == [oracles[i].address for i in picks]


@pytest.mark.parametrize("signers", [0, 2])
def test_settle__below_threshold__reverts(
    market,
    oracle_set,
    deployer,
    oracles,
    worker,
    create_job,
    bond,
    submit,
    attest,
    settle,
    ledger,
    signers,
):
    oracle_set.set_threshold(3, sender=deployer)
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    state = ledger(jobs=[job_id])
    with ape.reverts("oracles: below threshold"):
        settle([attest(job_id, worker)], keys=oracles[:signers])
    state.assert_unchanged()


def test_oracles__sorted_initial_set(market, oracle_set, oracles):
    # The market reads its set from the OracleSet, which readers ask directly.
    assert market.ORACLES() == oracle_set.address
    assert oracle_set.oracles() == [o.address for o in oracles]
    assert oracle_set.threshold() == 1


# ---------------------------------------------------------------------------
# withdraw
# ---------------------------------------------------------------------------


def test_withdraw__eth__sends_credit_and_logs(
    chain, market, worker, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    tx = settle([attest(job_id, worker)])
    with ape.reverts("market: nothing to withdraw"):  # nothing is credited before finalize
        market.withdraw(ZERO_ADDRESS, sender=worker)
    finalize(tx)
    market_before = chain.provider.get_balance(market.address)
    before = worker.balance

    tx = market.withdraw(ZERO_ADDRESS, sender=worker)

    [ev] = tx.decode_logs(market.Withdrawn)
    assert (ev.account, ev.asset, ev.amount) == (worker.address, ZERO_ADDRESS, AMOUNT)
    assert worker.balance == before + AMOUNT - tx.total_fees_paid
    assert chain.provider.get_balance(market.address) == market_before - AMOUNT
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert chain.provider.get_balance(market.address) == MIN_BOND  # only the bond is left


def test_withdraw__erc20__sends_token(
    market, usd, worker, create_job, bond, submit, attest, settle_final
):
    job_id = create_job(asset=usd, amount=12 * ETHER)
    bond(worker)
    submit(worker, job_id)
    settle_final([attest(job_id, worker)])
    tx = market.withdraw(usd, sender=worker)
    [ev] = tx.decode_logs(market.Withdrawn)
    assert (ev.account, ev.asset, ev.amount) == (worker.address, usd.address, 12 * ETHER)
    assert usd.balanceOf(worker) == 12 * ETHER
    assert usd.balanceOf(market) == 0
    assert market.credited(worker, usd) == 0


def test_withdraw__disallowed_asset__still_withdrawable(
    market, deployer, usd, worker, create_job, bond, submit, attest, settle, finalize
):
    job_id = create_job(asset=usd, amount=ETHER)
    bond(worker)
    submit(worker, job_id)
    market.set_asset_allowed(usd, False, sender=deployer)
    tx = settle([attest(job_id, worker)])
    assert market.pending(usd) == ETHER
    finalize(tx)
    market.withdraw(usd, sender=worker)
    assert usd.balanceOf(worker) == ETHER


def test_withdraw__nothing__reverts(market, usd, worker, ledger):
    state = ledger()
    for asset in (ZERO_ADDRESS, usd.address):
        with ape.reverts("market: nothing to withdraw"):
            market.withdraw(asset, sender=worker)
    state.assert_unchanged()


def test_withdraw__twice__reverts(market, requester, create_job, ledger):
    job_id = create_job()
    market.cancel(job_id, sender=requester)
    market.withdraw(ZERO_ADDRESS, sender=requester)
    state = ledger()
    with ape.reverts("market: nothing to withdraw"):
        market.withdraw(ZERO_ADDRESS, sender=requester)
    state.assert_unchanged()


def test_withdraw__while_paused__works(market, deployer, requester, create_job):
    job_id = create_job()
    market.cancel(job_id, sender=requester)
    market.pause(sender=deployer)
    tx = market.withdraw(ZERO_ADDRESS, sender=requester)
    assert tx.decode_logs(market.Withdrawn)[0].amount == AMOUNT


def test_settle__full_oracle_set_of_32__every_position_verifies(
    market,
    oracle_set,
    deployer,
    stranger,
    oracles,
    workers,
    create_job,
    bond,
    submit,
    attest,
    settle,
    finalize,
    ledger,
):
    extra = [Account.from_key(keccak(text=f"extra oracle {i}")) for i in range(32 - len(oracles))]
    for k in extra:
        oracle_set.add_oracle(k.address, sender=deployer)
    keys = sorted([*oracles, *extra], key=lambda k: int(k.address, 16))
    assert oracle_set.oracles() == [k.address for k in keys]
    j1, j2 = create_job(), create_job()
    bond(workers[0], 2 * MIN_BOND)
    submit(workers[0], j1)
    submit(workers[0], j2)
    # A member added but not yet bonded does not count.
    state = ledger(jobs=[j1])
    with ape.reverts("oracles: signer not bonded"):
        settle([attest(j1, workers[0])], keys=extra[:1])
    state.assert_unchanged()
    for k in extra:  # anyone may bond an oracle
        oracle_set.bond(k.address, value=oracle_set.oracle_bond(), sender=stranger)
    # The highest signer alone (the signer walk goes to the last slot), then all 32 at once.
    first = settle([attest(j1, workers[0])], keys=keys[-1:])
    oracle_set.set_threshold(32, sender=deployer)
    tx = settle([attest(j2, workers[0])], keys=keys)
    assert counts(tx, market) == (1, 0, 0)
    assert tx.decode_logs(market.BatchSettled)[0].signers == [k.address for k in keys]
    finalize(first)
    finalize(tx)
    assert market.credited(workers[0], ZERO_ADDRESS) == 2 * AMOUNT
