"""Attacks: forged, replayed and malleable signatures, double spends (settle and finalize),
reentrancy, hostile tokens, races, and commitment copying. Every rejected attack leaves no
state or funds moved."""

from dataclasses import replace

import ape
import pytest
from eth_account import Account
from eth_utils import keccak

from oracle.protocol.attestation import SECP256K1_N, recover_signer, sign_settlement
from tests.conftest import commitment_of, settled_batch
from tests.utils.constants import (
    CHALLENGE_WINDOW,
    EPOCH_LENGTH,
    ETHER,
    INVALID,
    MAX_HORIZON,
    MIN_BOND,
    REFUND_GRACE,
    REVEAL_WINDOW,
    SKIP_JOB_NOT_OPEN,
    SKIP_NO_SUCH_SUBMISSION,
    STATUS_OPEN,
    STATUS_PAID,
    STATUS_REFUNDED,
    UNBONDING_DELAY,
    VALID,
    VALID_UNTIL,
    ZERO_ADDRESS,
)
from tests.utils.parameters import set_parameters

AMOUNT = ETHER // 10
UNITS = 2 * 64**3
NOT_ORACLE = "oracles: signer not oracle"
NOT_ASCENDING = "oracles: signers not ascending"
NOT_RECORD = "market: not the batch record"
NO_BATCH = "market: no pending batch"


def skips(tx, market):
    return [(ev.job_id, ev.worker, ev.reason) for ev in tx.decode_logs(market.AttestationSkipped)]


def counts(tx, market):
    [ev] = tx.decode_logs(market.BatchSettled)
    return ev.settled, ev.slashed, ev.skipped


# ---------------------------------------------------------------------------
# Forged and replayed signatures
# ---------------------------------------------------------------------------


def test_replay__attestation_on_another_job__reverts(
    market, worker, create_job, bond, submit, attest, sign, relay, finalize, ledger
):
    job_a, job_b = create_job(), create_job()
    bond(worker, 2 * MIN_BOND)
    submit(worker, job_a)
    submit(worker, job_b)
    a = attest(job_a, worker)
    sigs = sign([a])
    # Same signature, job B's id: another digest, so ecrecover yields some other address.
    state = ledger(jobs=[job_a, job_b])
    with ape.reverts(NOT_ORACLE):
        relay([replace(a, job_id=job_b)], sigs)
    state.assert_unchanged()
    finalize(relay([a], sigs))  # the genuine batch still settles, and pays job A only
    assert market.job(job_a).status == STATUS_PAID
    assert market.job(job_b).status == STATUS_OPEN
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT


@pytest.mark.parametrize(
    "field",
    ["worker", "commitment", "work_units", "verdict", "transcript_hash", "extra_item", "reorder"],
)
def test_tamper__any_change_to_signed_batch__reverts(
    market, workers, create_job, bond, submit, attest, sign, relay, ledger, field
):
    w, other = workers[:2]
    j1, j2 = create_job(), create_job()
    for x in (w, other):
        bond(x)
    submit(w, j1)
    submit(other, j2)
    batch = [attest(j1, w), attest(j2, other)]
    sigs = sign(batch)
    tampered = {
        "worker": [replace(batch[0], worker=other.address), batch[1]],
        "commitment": [replace(batch[0], commitment=keccak(text="x")), batch[1]],
        "work_units": [replace(batch[0], work_units=1), batch[1]],
        "verdict": [replace(batch[0], verdict=INVALID), batch[1]],
        "transcript_hash": [replace(batch[0], transcript_hash=keccak(text="y")), batch[1]],
        "extra_item": [*batch, batch[0]],
        "reorder": batch[::-1],
    }[field]
    state = ledger(jobs=[j1, j2])
    with ape.reverts(NOT_ORACLE):
        relay(tampered, sigs)
    state.assert_unchanged()


def test_replay__signature_for_another_chain_id__reverts(
    chain, market, worker, live_job, attest, sign, relay, ledger
):
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sign([a], chain_id=chain.chain_id + 1))
    state.assert_unchanged()


def test_replay__signature_for_another_deployment__reverts(
    deploy_protocol, market, oracles, deployer, worker, live_job, attest, sign, relay, ledger
):
    _, other = deploy_protocol([o.address for o in oracles])
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sign([a], market_address=other.address))
    state.assert_unchanged()
    # And the other way round: this market's signatures do not settle on the other one.
    with ape.reverts(NOT_ORACLE):
        other.settle(
            [a.as_tuple()], VALID_UNTIL, [s.as_tuple() for s in sign([a])], sender=deployer
        )


def test_malleability__high_s_twin__reverts(
    chain, market, oracles, worker, live_job, attest, relay, ledger
):
    a = attest(live_job, worker)
    sig = sign_settlement(oracles[0], chain.chain_id, market.address, [a], VALID_UNTIL)
    s = sig.vs & ((1 << 255) - 1)
    v = 27 + (sig.vs >> 255)
    # The twin (r, n - s, v ^ 1) is the same ECDSA signature for ecrecover. Written honestly
    # in compact form, vs' = ((v' - 27) << 255) | s'. But s' = n - s >= n / 2 almost surely
    # has its top bit set already, so vs' cannot carry v' separately: the contract masks
    # s' - 2**255 (a low-s value) and reads v = 28 from the top bit. That is another
    # signature, which recovers an unrelated address: "signer not oracle". If s' happened to
    # be below 2**255, the masked value would be s' itself and snekmate's low-s check would
    # reject it ("ecdsa: invalid signature `s` value"); either way the twin never verifies.
    s_twin = SECP256K1_N - s
    v_twin = 55 - v  # 27 <-> 28
    vs_twin = ((v_twin - 27) << 255) | s_twin
    assert s_twin >> 255 == 1  # the case this signature falls into
    assert vs_twin != sig.vs
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], [(sig.r, vs_twin)])
    state.assert_unchanged()
    relay([a], [sig])  # the canonical form settles
    assert market.job(live_job).status == STATUS_PAID


def test_malleability__high_s_below_top_bit__rejected_by_low_s_check(
    chain, market, oracles, worker, live_job, attest, relay, ledger
):
    # The other branch of the argument above: a vs whose masked s is in the upper half order
    # is refused before ecrecover. (Such an s is only representable below 2**255.)
    a = attest(live_job, worker)
    sig = sign_settlement(oracles[0], chain.chain_id, market.address, [a], VALID_UNTIL)
    high_s = SECP256K1_N // 2 + 1
    state = ledger(jobs=[live_job])
    with ape.reverts("ecdsa: invalid signature `s` value"):
        relay([a], [(sig.r, high_s)])
    state.assert_unchanged()


def test_malleability__flipped_parity_bit__reverts(
    chain, market, oracles, worker, live_job, attest, relay, ledger
):
    a = attest(live_job, worker)
    sig = sign_settlement(oracles[0], chain.chain_id, market.address, [a], VALID_UNTIL)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], [(sig.r, sig.vs ^ (1 << 255))])
    state.assert_unchanged()


def test_forgery__garbage_signature__reverts(worker, live_job, attest, relay, ledger):
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    # r = 0 is not a curve point: ecrecover returns the zero address.
    with ape.reverts("ecdsa: invalid signature"):
        relay([a], [(0, 1)])
    state.assert_unchanged()


def test_quorum__duplicate_signer__reverts(
    oracle_set, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    oracle_set.set_threshold(2, sender=deployer)
    a = attest(live_job, worker)
    [sig] = sign([a], keys=oracles[:1])
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ASCENDING):
        relay([a], [sig, sig])
    state.assert_unchanged()


def test_quorum__signers_out_of_order__reverts(
    market, oracle_set, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    oracle_set.set_threshold(2, sender=deployer)
    a = attest(live_job, worker)
    sigs = sign([a], keys=[oracles[3], oracles[1]], ordered=False)
    assert int(sigs[0].signer, 16) > int(sigs[1].signer, 16)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ASCENDING):
        relay([a], sigs)
    state.assert_unchanged()
    relay([a], sigs[::-1])
    assert market.job(live_job).status == STATUS_PAID


@pytest.mark.parametrize("order", [(0, 2, 1), (1, 3, 3), (2, 4, 0)])
def test_quorum__member_behind_an_earlier_signer__reverts(
    oracle_set, deployer, oracles, worker, live_job, attest, sign, relay, ledger, order
):
    # Out of order or repeated after other signers: still "not ascending", not "not oracle".
    oracle_set.set_threshold(3, sender=deployer)
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ASCENDING):
        relay([a], sign([a], keys=[oracles[i] for i in order], ordered=False))
    state.assert_unchanged()


def test_quorum__outsider_below_an_earlier_signer__reverts_as_outsider(
    oracle_set, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    # A stranger is named as one wherever it stands, even where it also breaks the order.
    stranger = next(
        k
        for k in (Account.from_key(keccak(text=f"stranger {i}")) for i in range(64))
        if int(k.address, 16) < int(oracles[-1].address, 16)
    )
    oracle_set.set_threshold(2, sender=deployer)
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sign([a], keys=[oracles[-1], stranger], ordered=False))
    state.assert_unchanged()


def test_quorum__outsider_signature__reverts(
    chain, market, outsider_key, worker, live_job, attest, sign, relay, ledger
):
    a = attest(live_job, worker)
    sigs = sign([a], keys=[outsider_key])
    assert (
        recover_signer(chain.chain_id, market.address, [a], VALID_UNTIL, sigs[0])
        == outsider_key.address
    )
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sigs)
    state.assert_unchanged()


def test_quorum__outsider_beside_a_full_quorum__reverts(
    market, oracles, outsider_key, worker, live_job, attest, sign, relay, ledger
):
    # Every signature passed must be an oracle's, even beyond the threshold.
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sign([a], keys=[*oracles[:2], outsider_key]))
    state.assert_unchanged()


def test_quorum__removed_oracle__reverts(
    oracle_set, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    a = attest(live_job, worker)
    sigs = sign([a], keys=[oracles[2]])  # signed while still an oracle
    oracle_set.remove_oracle(oracles[2].address, sender=deployer)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sigs)
    state.assert_unchanged()


def test_quorum__below_threshold__reverts(
    oracle_set, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    oracle_set.set_threshold(2, sender=deployer)
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    for keys in ([], oracles[:1]):
        with ape.reverts("oracles: below threshold"):
            relay([a], sign([a], keys=keys))
    state.assert_unchanged()


@pytest.mark.parametrize("how", ["added_not_bonded", "bond_raised"])
def test_quorum__oracle_without_bond__reverts(
    market,
    oracle_set,
    deployer,
    oracles,
    outsider_key,
    worker,
    live_job,
    attest,
    sign,
    relay,
    ledger,
    how,
):
    # A signature counts only while its oracle's bond can answer for it: a member just added
    # and not yet bonded, or one whose bond the owner's new `oracle_bond` leaves short, signs
    # nothing that settles until it is bonded (again).
    bond = oracle_set.oracle_bond()
    if how == "added_not_bonded":
        key = outsider_key
        oracle_set.add_oracle(key.address, sender=deployer)
        top_up = bond
    else:
        key = oracles[1]
        oracle_set.set_oracle_bond(bond + 1, sender=deployer)
        top_up = 1
    a = attest(live_job, worker)
    sigs = sign([a], keys=[key])
    state = ledger(jobs=[live_job])
    with ape.reverts("oracles: signer not bonded"):
        relay([a], sigs)
    state.assert_unchanged()
    oracle_set.bond(key.address, value=top_up, sender=deployer)
    tx = relay([a], sigs)
    assert [str(s) for s in tx.decode_logs(market.BatchSettled)[0].signers] == [key.address]
    assert market.job(live_job).status == STATUS_PAID


# ---------------------------------------------------------------------------
# Settling what was never submitted, or twice
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("verdict", [VALID, INVALID])
def test_settle__job_never_submitted_to__skipped(
    market, requester, worker, create_job, bond, attest, settle, ledger, verdict
):
    job_id = create_job()
    bond(worker)  # bonded, so an INVALID would have something to slash
    a = attest(job_id, worker, verdict, commitment=commitment_of(worker.address, b"r" * 32))
    state = ledger(jobs=[job_id])
    tx = settle([a])
    assert skips(tx, market) == [(job_id, worker.address, SKIP_NO_SUCH_SUBMISSION)]
    assert counts(tx, market) == (0, 0, 1)
    state.assert_unchanged()


@pytest.mark.parametrize("verdict", [VALID, INVALID])
def test_settle__worker_did_not_submit_that_commitment__skipped(
    market, workers, create_job, bond, submit, attest, settle, ledger, verdict
):
    submitter, bystander = workers[:2]
    job_id = create_job()
    bond(submitter)
    bond(bystander)
    c = submit(submitter, job_id)
    # The bystander is named with the submitter's commitment: not its submission.
    state = ledger(jobs=[job_id])
    tx = settle([attest(job_id, bystander, verdict, commitment=c)])
    assert skips(tx, market) == [(job_id, bystander.address, SKIP_NO_SUCH_SUBMISSION)]
    state.assert_unchanged()


def test_settle__same_batch_twice__pays_once(
    market, requester, workers, create_job, bond, submit, attest, settle, finalize, ledger
):
    w1, w2 = workers[:2]
    j1, j2 = create_job(), create_job()
    for w, j in ((w1, j1), (w2, j2)):
        bond(w)
        submit(w, j)
    batch = [attest(j1, w1), attest(j2, w2, INVALID)]
    first = settle(batch)
    assert counts(first, market) == (1, 1, 0)
    state = ledger(jobs=[j1, j2])
    tx = settle(batch)  # a second relayer, same signed batch
    assert counts(tx, market) == (0, 0, 2)
    assert skips(tx, market) == [
        (j1, w1.address, SKIP_JOB_NOT_OPEN),
        (j2, w2.address, SKIP_NO_SUCH_SUBMISSION),
    ]
    state.assert_unchanged()
    assert tx.decode_logs(market.BatchSettled)[0].batch_id == 0  # nothing recorded
    finalize(first)
    assert market.credited(w1, ZERO_ADDRESS) == AMOUNT
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    # ... and the one batch is paid once.
    state = ledger(jobs=[j1, j2])
    with ape.reverts(NO_BATCH):
        finalize(first)
    state.assert_unchanged()


def test_settle__same_item_twice_in_batch__pays_once(
    market, worker, live_job, attest, settle, finalize
):
    a = attest(live_job, worker)
    epoch = market.current_epoch()
    tx = settle([a, a])
    assert counts(tx, market) == (1, 0, 1)
    assert skips(tx, market) == [(live_job, worker.address, SKIP_JOB_NOT_OPEN)]
    assert market.epoch_total_work(epoch) == UNITS
    assert len(tx.decode_logs(market.JobSettled)) == 1
    assert len(settled_batch(market, tx).items) == 1
    assert market.pending(ZERO_ADDRESS) == AMOUNT + MIN_BOND
    finalize(tx)
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(worker) == MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0


# ---------------------------------------------------------------------------
# Finalizing what was never settled, too early, twice or altered
# ---------------------------------------------------------------------------


@pytest.fixture
def pending_batch(market, other_requester, workers, create_job, bond, submit, attest, settle):
    """A settled batch in its challenge window: one VALID item for workers[0] (escrow AMOUNT,
    stake MIN_BOND) and one INVALID item for workers[1] (MIN_BOND slashed to
    `other_requester`)."""
    w1, w2 = workers[:2]
    j1, j2 = create_job(), create_job(sender=other_requester)
    for w, j in ((w1, j1), (w2, j2)):
        bond(w)
        submit(w, j)
    tx = settle([attest(j1, w1), attest(j2, w2, INVALID)])
    batch = settled_batch(market, tx)
    assert [i.verdict for i in batch.items] == [VALID, INVALID]
    assert bytes(market.batch_record(batch.batch_id)) == batch.record_hash()
    return batch


def test_finalize__in_challenge_window__reverts(
    chain, market, stranger, workers, pending_batch, ledger
):
    batch = pending_batch
    state = ledger()
    for at in (chain.pending_timestamp, batch.final_at - 1):
        chain.pending_timestamp = at
        with ape.reverts("market: challenge window running"):
            market.finalize(*batch.args(), sender=stranger)
    state.assert_unchanged()
    chain.pending_timestamp = batch.final_at  # inclusive bound
    market.finalize(*batch.args(), sender=stranger)
    assert market.credited(workers[0], ZERO_ADDRESS) == AMOUNT


def _tampered(batch, field, thief):
    valid, invalid = batch.items
    return {
        # Redirect the escrow, the stake or the slashed bond to someone else.
        "valid_worker": replace(batch, items=(replace(valid, worker=thief), invalid)),
        "invalid_job": replace(batch, items=(valid, replace(invalid, job_id=valid.job_id))),
        # Inflate what is paid.
        "amount": replace(batch, items=(replace(valid, amount=10 * AMOUNT), invalid)),
        "stake": replace(batch, items=(replace(valid, stake=10 * MIN_BOND), invalid)),
        "slashed": replace(batch, items=(valid, replace(invalid, amount=10 * MIN_BOND))),
        # Pay in another asset, or flip a verdict.
        "asset": replace(batch, items=(replace(valid, asset=thief), invalid)),
        "verdict": replace(batch, items=(replace(valid, verdict=INVALID), invalid)),
        "refuted": batch.refuted(0),
        # Pay only the convenient half, or one item twice.
        "dropped": replace(batch, items=(valid,)),
        "repeated": replace(batch, items=(valid, valid, invalid)),
        "reordered": replace(batch, items=(invalid, valid)),
        # Claim another context: another id, epoch, an earlier final_at, other signers.
        "batch_id": replace(batch, batch_id=batch.batch_id + 1),
        "epoch": replace(batch, epoch=batch.epoch + 1),
        "final_at": replace(batch, final_at=batch.final_at - CHALLENGE_WINDOW),
        "signers": replace(batch, signers=(thief,)),
    }[field]


@pytest.mark.parametrize(
    "field",
    [
        "valid_worker",
        "invalid_job",
        "amount",
        "stake",
        "slashed",
        "asset",
        "verdict",
        "refuted",
        "dropped",
        "repeated",
        "reordered",
        "batch_id",
        "epoch",
        "final_at",
        "signers",
    ],
)
def test_finalize__altered_batch__reverts(
    chain, market, requester, other_requester, stranger, workers, pending_batch, ledger, field
):
    batch = pending_batch
    chain.pending_timestamp = batch.final_at
    tampered = _tampered(batch, field, stranger.address)
    assert tampered.record_hash() != batch.record_hash()
    state = ledger()
    reason = NO_BATCH if field == "batch_id" else NOT_RECORD
    with ape.reverts(reason):
        market.finalize(*tampered.args(), sender=stranger)
    state.assert_unchanged()
    # The batch as recorded still pays, and only that.
    market.finalize(*batch.args(), sender=stranger)
    assert market.credited(workers[0], ZERO_ADDRESS) == AMOUNT
    assert market.credited(other_requester, ZERO_ADDRESS) == MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == 0
    assert market.credited(stranger, ZERO_ADDRESS) == 0


def test_finalize__twice_or_never_settled__reverts(
    market, requester, other_requester, workers, pending_batch, finalize, ledger
):
    batch = pending_batch
    state = ledger()
    # A batch id never given out, and the "every item skipped" id 0, have no record.
    for ghost in (replace(batch, batch_id=0), replace(batch, batch_id=2**256 - 1)):
        with ape.reverts(NO_BATCH):
            finalize(ghost, wait=False)
    state.assert_unchanged()
    tx = finalize(batch)
    [ev] = tx.decode_logs(market.BatchFinalized)
    assert (ev.batch_id, ev.paid, ev.slashed) == (batch.batch_id, 1, 1)
    assert bytes(market.batch_record(batch.batch_id)) == bytes(32)
    assert market.credited(workers[0], ZERO_ADDRESS) == AMOUNT
    assert market.credited(other_requester, ZERO_ADDRESS) == MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == 0
    assert market.bonds(workers[0]) == MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0
    state = ledger()
    with ape.reverts(NO_BATCH):
        finalize(batch)
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------


@pytest.fixture
def ended_epoch(chain, market, worker, live_job, attest, settle):
    """An ended epoch in which `worker` has verified work, past its challenge window."""
    epoch = settle([attest(live_job, worker)]).decode_logs(market.BatchSettled)[0].epoch
    chain.pending_timestamp = max(
        chain.pending_timestamp,
        market.GENESIS() + (epoch + 1) * EPOCH_LENGTH,
        market.epoch_final_at(epoch),
    )
    return epoch


def test_claim__twice__reverts(market, token, worker, ended_epoch, ledger):
    market.claim([ended_epoch], sender=worker)
    state = ledger()
    with ape.reverts("market: nothing to claim"):
        market.claim([ended_epoch], sender=worker)
    state.assert_unchanged()
    assert token.balanceOf(worker) == market.epoch_emission(ended_epoch)


def test_claim__same_epoch_twice_in_one_call__reverts(market, token, worker, ended_epoch, ledger):
    state = ledger()
    with ape.reverts("market: nothing to claim"):
        market.claim([ended_epoch, ended_epoch], sender=worker)
    state.assert_unchanged()
    assert market.epoch_work(ended_epoch, worker) == UNITS


def test_claim__someone_elses_work__reverts(market, stranger, ended_epoch, ledger):
    state = ledger()
    with ape.reverts("market: nothing to claim"):
        market.claim([ended_epoch], sender=stranger)
    state.assert_unchanged()


def test_claim__before_epoch_ends__reverts(market, worker, live_job, attest, settle, ledger):
    epoch = settle([attest(live_job, worker)]).decode_logs(market.BatchSettled)[0].epoch
    state = ledger()
    for e in (epoch, 2**256 - 1):
        with ape.reverts("market: epoch not ended"):
            market.claim([e], sender=worker)
    state.assert_unchanged()
    assert market.epoch_work(epoch, worker) == UNITS


# ---------------------------------------------------------------------------
# Reentrancy
# ---------------------------------------------------------------------------


def test_reentrancy__withdraw_callback__nested_call_fails_paid_once(
    chain, market, deployer, reentrant_worker, create_job, attest, settle, settle_final, finalize
):
    rw = reentrant_worker
    job_id = create_job()
    rw.register(sender=deployer, value=MIN_BOND)
    rw.submit(job_id, commitment_of(rw.address, b"\x01" * 32), sender=deployer)
    settle_final([attest(job_id, rw.address)])  # the stake is back: the bond can stake again
    # A second credit the nested call could try to take.
    other = create_job()
    rw.submit(other, commitment_of(rw.address, b"\x02" * 32), sender=deployer)
    tx = settle([attest(other, rw.address)])
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT
    # finalize credits; it sends nothing, so it never hands the worker control.
    market_before = chain.provider.get_balance(market.address)
    finalize(tx)
    assert rw.attempts() == 0
    assert chain.provider.get_balance(market.address) == market_before
    assert chain.provider.get_balance(rw.address) == 0
    assert market.credited(rw, ZERO_ADDRESS) == 2 * AMOUNT

    tx = rw.attack_withdraw(sender=deployer)

    assert rw.attempts() == 1  # the callback ran and tried to re-enter
    assert not rw.reentered()
    [ev] = tx.decode_logs(market.Withdrawn)
    assert ev.amount == 2 * AMOUNT
    assert chain.provider.get_balance(rw.address) == 2 * AMOUNT
    assert chain.provider.get_balance(market.address) == market_before - 2 * AMOUNT
    assert market.credited(rw, ZERO_ADDRESS) == 0
    assert chain.provider.get_balance(market.address) == MIN_BOND  # only the bond is left
    assert market.bonds(rw) == MIN_BOND


def test_reentrancy__withdraw_bond_callback__nested_call_fails_paid_once(
    chain, market, deployer, reentrant_worker, create_job, attest, settle_final
):
    rw = reentrant_worker
    rw.register(sender=deployer, value=2 * MIN_BOND)
    job_id = create_job()
    rw.submit(job_id, commitment_of(rw.address, b"\x01" * 32), sender=deployer)
    settle_final([attest(job_id, rw.address)])  # credit the nested call could try to take
    rw.unbond(sender=deployer)
    chain.pending_timestamp += UNBONDING_DELAY
    market_before = chain.provider.get_balance(market.address)

    tx = rw.attack_withdraw_bond(sender=deployer)

    assert rw.attempts() == 1
    assert not rw.reentered()
    assert tx.decode_logs(market.BondWithdrawn)[0].amount == 2 * MIN_BOND
    assert not tx.decode_logs(market.Withdrawn)
    assert chain.provider.get_balance(rw.address) == 2 * MIN_BOND
    assert chain.provider.get_balance(market.address) == market_before - 2 * MIN_BOND
    assert market.bonds(rw) == 0
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT  # untouched, still withdrawable


#: A hostile worker that, paid ETH, sends the market whatever call it was armed with (here
#: `finalize`, which takes no lock: it moves no money out, so a worker never gets control
#: inside it). Compiled here from source: test-only, it has no place in contracts/.
FINALIZE_REENTRANT_WORKER = """# pragma version ~=0.4.3
interface Market:
    def register(): payable
    def submit_result(job_id: uint256, commitment: bytes32): nonpayable
    def withdraw(asset: address) -> uint256: nonpayable

market: public(Market)
payload: public(Bytes[4096])
attempts: public(uint256)
reentered: public(bool)
revert_data: public(Bytes[256])

@deploy
def __init__(market: Market):
    self.market = market

@external
@payable
def register():
    extcall self.market.register(value=msg.value)

@external
def submit(job_id: uint256, commitment: bytes32):
    extcall self.market.submit_result(job_id, commitment)

@external
def arm(payload: Bytes[4096]):
    self.payload = payload

@external
def withdraw_eth() -> uint256:
    return extcall self.market.withdraw(empty(address))

@external
@payable
def __default__():
    if self.attempts != 0 or len(self.payload) == 0:
        return
    self.attempts += 1
    ok: bool = False
    data: Bytes[256] = b""
    ok, data = raw_call(self.market.address, self.payload, max_outsize=256, revert_on_failure=False)
    self.reentered = ok
    self.revert_data = data
"""


@pytest.fixture(scope="module")
def finalize_reentrant_worker_type(compilers):
    return compilers.compile_source(
        "vyper", FINALIZE_REENTRANT_WORKER, contractName="FinalizeReentrantWorker"
    )


@pytest.mark.parametrize("target", ["same_batch", "other_batch"])
def test_reentrancy__withdraw_callback_calls_finalize__each_batch_paid_once(
    chain,
    market,
    deployer,
    finalize_reentrant_worker_type,
    create_job,
    attest,
    settle,
    finalize,
    target,
):
    """Paid by `withdraw`, the worker re-enters `finalize`, of the batch already finalized or
    of another one past its window: the reentrancy lock refuses both (a bare revert, no
    reason), nothing is credited inside `withdraw`, and the other batch then pays once as
    usual; the market still holds every wei it owes."""
    rw = finalize_reentrant_worker_type.deploy(market, sender=deployer)
    rw.register(sender=deployer, value=2 * MIN_BOND)
    jobs = [create_job(), create_job()]
    batches = []
    for n, job_id in enumerate(jobs):
        rw.submit(job_id, commitment_of(rw.address, bytes([n + 1]) * 32), sender=deployer)
        batches.append(settled_batch(market, settle([attest(job_id, rw.address)])))
    first, second = batches
    finalize(first)
    chain.pending_timestamp = max(chain.pending_timestamp, second.final_at)
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT
    rw.arm(
        market.finalize.encode_input(*(first if target == "same_batch" else second).args()),
        sender=deployer,
    )
    market_before = chain.provider.get_balance(market.address)

    tx = rw.withdraw_eth(sender=deployer)

    assert rw.attempts() == 1
    assert not rw.reentered()
    assert bytes(rw.revert_data()) == b""  # the lock, before any check of the batch
    assert not tx.decode_logs(market.BatchFinalized)
    assert [ev.amount for ev in tx.decode_logs(market.Withdrawn)] == [AMOUNT]
    assert chain.provider.get_balance(rw.address) == AMOUNT
    assert chain.provider.get_balance(market.address) == market_before - AMOUNT
    assert market.credited(rw, ZERO_ADDRESS) == 0
    assert market.bonds(rw) == MIN_BOND
    assert bytes(market.batch_record(second.batch_id)) != bytes(32)
    finalize(second)  # the other batch pays as usual, outside the callback
    # Either way: the second escrow credited once, both stakes back, each batch paid once.
    assert market.credited(rw, ZERO_ADDRESS) == AMOUNT
    assert market.bonds(rw) == 2 * MIN_BOND
    assert market.pending(ZERO_ADDRESS) == 0
    for batch in batches:
        with ape.reverts(NO_BATCH):
            finalize(batch)
    rw.withdraw_eth(sender=deployer)
    assert chain.provider.get_balance(rw.address) == 2 * AMOUNT
    assert chain.provider.get_balance(market.address) == 2 * MIN_BOND  # only the bond is left
    with ape.reverts("market: nothing to withdraw"):
        rw.withdraw_eth(sender=deployer)


# ---------------------------------------------------------------------------
# Hostile tokens and bad job terms
# ---------------------------------------------------------------------------


def test_fee_on_transfer_token__create_job__reverts(
    chain, market, fee_token, requester, spec_hash, ledger
):
    balance = fee_token.balanceOf(requester)
    state = ledger()
    with ape.reverts("market: token delivered less than amount"):
        market.create_job(
            spec_hash(1),
            UNITS,
            fee_token,
            100 * ETHER,
            chain.pending_timestamp + 3_600,
            sender=requester,
        )
    state.assert_unchanged()
    assert fee_token.balanceOf(market) == 0
    assert fee_token.balanceOf(requester) == balance


def test_fee_on_transfer_token__create_jobs__reverts(
    chain, market, fee_token, usd, requester, spec_hash, ledger
):
    deadline = chain.pending_timestamp + 3_600
    reqs = [
        (spec_hash(1), UNITS, usd.address, ETHER, deadline),
        (spec_hash(2), UNITS, fee_token.address, ETHER, deadline),
    ]
    state = ledger()
    with ape.reverts("market: token delivered less than amount"):
        market.create_jobs(reqs, sender=requester)
    state.assert_unchanged()
    assert fee_token.balanceOf(market) == 0


@pytest.mark.parametrize(
    ("amount", "units", "reason"),
    [(0, UNITS, "market: zero amount"), (AMOUNT, 0, "market: zero work units")],
)
def test_bad_terms__zero_amount_or_units__reverts(
    chain, market, requester, spec_hash, ledger, amount, units, reason
):
    deadline = chain.pending_timestamp + 3_600
    state = ledger()
    with ape.reverts(reason):
        market.create_job(
            spec_hash(1), units, ZERO_ADDRESS, amount, deadline, sender=requester, value=amount
        )
    with ape.reverts(reason):
        market.create_jobs(
            [(spec_hash(1), units, ZERO_ADDRESS, amount, deadline)], sender=requester, value=amount
        )
    state.assert_unchanged()


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (None, "market: deadline in past"),  # deadline 0
        (-3_600, "market: deadline in past"),
        (MAX_HORIZON + 3_600, "market: deadline too far"),
        (2**40, "market: deadline too far"),  # would overflow the packed 40-bit field
        ("max", "market: deadline too far"),
    ],
)
def test_bad_terms__deadline_past_or_absurd__reverts(
    chain, market, requester, spec_hash, ledger, offset, reason
):
    now = chain.pending_timestamp
    if offset is None:
        deadline = 0
    elif offset == "max":
        deadline = 2**256 - 1
    else:
        deadline = now + offset
    state = ledger()
    with ape.reverts(reason):
        market.create_job(
            spec_hash(1), UNITS, ZERO_ADDRESS, AMOUNT, deadline, sender=requester, value=AMOUNT
        )
    state.assert_unchanged()


def test_unbonded_worker__submit__reverts(market, stranger, create_job, ledger):
    job_id = create_job()
    state = ledger(jobs=[job_id])
    with ape.reverts("market: not bonded"):
        market.submit_result(job_id, commitment_of(stranger.address, b"r" * 32), sender=stranger)
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# Races
# ---------------------------------------------------------------------------


def test_race__settle_then_refund__refund_reverts(
    chain, market, requester, worker, create_job, bond, submit, attest, settle, finalize, ledger
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    chain.pending_timestamp = deadline + REFUND_GRACE + 1
    tx = settle([attest(job_id, worker)])
    # The job is paid at settle, so the escrow held for the worker cannot be refunded during
    # the challenge window nor after it.
    for wait in (False, True):
        if wait:
            chain.pending_timestamp = settled_batch(market, tx).final_at
        state = ledger(jobs=[job_id])
        with ape.reverts("market: job not open"):
            market.refund(job_id, sender=requester)
        state.assert_unchanged()
    finalize(tx)
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT
    assert market.credited(requester, ZERO_ADDRESS) == 0


def test_race__refund_then_settle__skipped_worker_unpaid(
    chain, market, requester, worker, create_job, bond, submit, attest, settle, ledger
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    chain.pending_timestamp = deadline + REFUND_GRACE + 1
    market.refund(job_id, sender=requester)
    state = ledger(jobs=[job_id])
    tx = settle([attest(job_id, worker)])
    assert skips(tx, market) == [(job_id, worker.address, SKIP_JOB_NOT_OPEN)]
    state.assert_unchanged()
    assert market.job(job_id).status == STATUS_REFUNDED
    assert market.credited(worker, ZERO_ADDRESS) == 0
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT  # refunded once
    assert market.submissions(job_id, worker).stake == MIN_BOND  # untouched, released later
    market.release([job_id], sender=worker)
    assert market.bonds(worker) == MIN_BOND


# ---------------------------------------------------------------------------
# Copied commitments
# ---------------------------------------------------------------------------


@pytest.fixture
def copied(market, workers, create_job, bond, submit):
    """`original` commits keccak(original ‖ root); `copier` submits the very same bytes."""
    original, copier = workers[:2]
    job_id = create_job()
    bond(original)
    bond(copier)
    c = submit(original, job_id, root=b"\x07" * 32)
    market.submit_result(job_id, c, sender=copier)
    return job_id, original, copier, c


def test_copy__stored_under_the_copier(market, copied):
    job_id, original, copier, c = copied
    assert market.submissions(job_id, copier).commitment == c
    assert market.submissions(job_id, original).commitment == c
    assert market.job(job_id).submissions == 2


def test_copy__attestation_naming_original__pays_only_original(
    market, copied, attest, settle_final
):
    job_id, original, copier, c = copied
    settle_final([attest(job_id, original, commitment=c)])
    assert market.credited(original, ZERO_ADDRESS) == AMOUNT
    assert market.credited(copier, ZERO_ADDRESS) == 0
    assert market.submissions(job_id, copier).stake == MIN_BOND


def test_copy__original_never_submitted__attestation_pays_no_one(
    market, workers, create_job, bond, attest, settle, ledger
):
    # The copier front-runs or replays the original's commitment; the original's own
    # submission is not on chain. An attestation naming the original matches nothing.
    original, copier = workers[:2]
    job_id = create_job()
    bond(copier)
    c = commitment_of(original.address, b"\x07" * 32)
    market.submit_result(job_id, c, sender=copier)
    state = ledger(jobs=[job_id])
    tx = settle([attest(job_id, original, commitment=c)])
    assert skips(tx, market) == [(job_id, original.address, SKIP_NO_SUCH_SUBMISSION)]
    state.assert_unchanged()


def test_copy__attestation_naming_copier__never_pays_original(
    market, requester, copied, attest, settle_final
):
    # Honest oracles see that c != keccak(copier ‖ root) and attest INVALID for the copier:
    # the copier is slashed, the original's submission and bond are untouched.
    job_id, original, copier, c = copied
    tx = settle_final([attest(job_id, copier, INVALID, commitment=c)])
    assert counts(tx, market) == (0, 1, 0)
    assert market.bonds(copier) == 0
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.credited(original, ZERO_ADDRESS) == 0
    assert market.submissions(job_id, original).commitment == c
    assert market.submissions(job_id, original).stake == MIN_BOND
    # The original can still be paid for its own work.
    settle_final([attest(job_id, original, commitment=c)])
    assert market.credited(original, ZERO_ADDRESS) == AMOUNT


def test_copy__valid_for_copier_pays_copier_not_original(market, copied, attest, settle_final):
    # The contract cannot check that a commitment binds its submitter (the root is off
    # chain); it trusts the quorum's verdict. A VALID naming the copier credits the copier,
    # never the original whose bytes were copied.
    job_id, original, copier, c = copied
    settle_final([attest(job_id, copier, VALID, commitment=c)])
    assert market.credited(copier, ZERO_ADDRESS) == AMOUNT
    assert market.credited(original, ZERO_ADDRESS) == 0
    assert market.job(job_id).status == STATUS_PAID


# ---------------------------------------------------------------------------
# Known risks (documented behaviour, not bugs): what a bond does and does not back
# ---------------------------------------------------------------------------


def test_risk__one_bond_backs_one_live_submission(
    market, requester, other_requester, worker, create_job, bond, attest, settle_final, ledger
):
    # A single min bond once let a worker hold live submissions on many jobs (blocking their
    # cancel, delaying refunds by the grace) while INVALID verdicts on all of them slashed one
    # bond once. Now each live submission holds a bond of its own: three submissions need
    # three bonds, and each requester harmed gets one.
    jobs = [create_job(), create_job(sender=other_requester), create_job()]
    commits = [(j, commitment_of(worker.address, bytes([j]) * 32)) for j in jobs]
    bond(worker)
    state = ledger(jobs=jobs)
    with ape.reverts("market: not bonded"):
        market.submit_results(commits, sender=worker)
    state.assert_unchanged()
    bond(worker, 2 * MIN_BOND)
    market.submit_results(commits, sender=worker)
    with ape.reverts("market: job has submissions"):
        market.cancel(jobs[1], sender=other_requester)
    tx = settle_final([attest(j, worker, INVALID) for j in jobs])
    assert [ev.amount for ev in tx.decode_logs(market.WorkerSlashed)] == [MIN_BOND] * 3
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND
    assert market.credited(other_requester, ZERO_ADDRESS) == MIN_BOND


def test_unbond__commit_then_unbond__stays_slashable_until_verdict(
    chain,
    market,
    deployer,
    requester,
    worker,
    create_job,
    bond,
    submit,
    attest,
    settle,
    finalize,
):
    # The unbonding delay can never be set below reveal window + settlement grace +
    # challenge window, so a worker who commits and unbonds at once is still bonded when the
    # INVALID verdict lands (and a VALID one is past its challenge window before the bond
    # can leave).
    floor = REVEAL_WINDOW + REFUND_GRACE + CHALLENGE_WINDOW
    for delay in (60, floor - 1):
        with ape.reverts("market: unbonding delay too short"):
            set_parameters(market, deployer, unbonding_delay=delay)
    set_parameters(market, deployer, unbonding_delay=floor)
    job_id = create_job()
    bond(worker, 2 * MIN_BOND)
    submit(worker, job_id)  # one bond at stake, one free
    market.request_unbond(sender=worker)
    chain.pending_timestamp += REVEAL_WINDOW + REFUND_GRACE
    with ape.reverts("market: bond still locked"):
        market.withdraw_bond(sender=worker)
    tx = settle([attest(job_id, worker, INVALID)])
    assert tx.decode_logs(market.WorkerSlashed)[0].amount == 2 * MIN_BOND
    assert market.bonds(worker) == 0  # taken at settle, not at finalize
    chain.pending_timestamp = market.unbonding_at(worker)
    with ape.reverts("market: no bond"):
        market.withdraw_bond(sender=worker)
    finalize(tx)
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND
