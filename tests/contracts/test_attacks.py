"""Attacks: forged, replayed and malleable signatures, double spends, reentrancy, hostile
tokens, races, and commitment copying. Every rejected attack leaves no state or funds moved."""

from dataclasses import replace

import ape
import pytest
from eth_account import Account
from eth_utils import keccak

from oracle.protocol.attestation import SECP256K1_N, recover_signer, sign_settlement
from tests.conftest import commitment_of
from tests.utils.constants import (
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

AMOUNT = ETHER // 10
UNITS = 2 * 64**3
NOT_ORACLE = "market: signer not oracle"
NOT_ASCENDING = "market: signers not ascending"


def skips(tx, market):
    return [(ev.job_id, ev.worker, ev.reason) for ev in tx.decode_logs(market.AttestationSkipped)]


def counts(tx, market):
    [ev] = tx.decode_logs(market.BatchSettled)
    return ev.settled, ev.slashed, ev.skipped


# ---------------------------------------------------------------------------
# Forged and replayed signatures
# ---------------------------------------------------------------------------


def test_replay__attestation_on_another_job__reverts(
    market, worker, create_job, bond, submit, attest, sign, relay, ledger
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
    relay([a], sigs)  # the genuine batch still settles
    assert market.job(job_a).status == STATUS_PAID
    assert market.job(job_b).status == STATUS_OPEN


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
    market, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    market.set_threshold(2, sender=deployer)
    a = attest(live_job, worker)
    [sig] = sign([a], keys=oracles[:1])
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ASCENDING):
        relay([a], [sig, sig])
    state.assert_unchanged()


def test_quorum__signers_out_of_order__reverts(
    market, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    market.set_threshold(2, sender=deployer)
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
    market, deployer, oracles, worker, live_job, attest, sign, relay, ledger, order
):
    # Out of order or repeated after other signers: still "not ascending", not "not oracle".
    market.set_threshold(3, sender=deployer)
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ASCENDING):
        relay([a], sign([a], keys=[oracles[i] for i in order], ordered=False))
    state.assert_unchanged()


def test_quorum__outsider_below_an_earlier_signer__reverts_as_outsider(
    market, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    # A stranger is named as one wherever it stands, even where it also breaks the order.
    stranger = next(
        k
        for k in (Account.from_key(keccak(text=f"stranger {i}")) for i in range(64))
        if int(k.address, 16) < int(oracles[-1].address, 16)
    )
    market.set_threshold(2, sender=deployer)
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
    market, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    a = attest(live_job, worker)
    sigs = sign([a], keys=[oracles[2]])  # signed while still an oracle
    market.remove_oracle(oracles[2].address, sender=deployer)
    state = ledger(jobs=[live_job])
    with ape.reverts(NOT_ORACLE):
        relay([a], sigs)
    state.assert_unchanged()


def test_quorum__below_threshold__reverts(
    market, deployer, oracles, worker, live_job, attest, sign, relay, ledger
):
    market.set_threshold(2, sender=deployer)
    a = attest(live_job, worker)
    state = ledger(jobs=[live_job])
    for keys in ([], oracles[:1]):
        with ape.reverts("market: below threshold"):
            relay([a], sign([a], keys=keys))
    state.assert_unchanged()


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
    market, workers, create_job, bond, submit, attest, settle, ledger
):
    w1, w2 = workers[:2]
    j1, j2 = create_job(), create_job()
    for w, j in ((w1, j1), (w2, j2)):
        bond(w)
        submit(w, j)
    batch = [attest(j1, w1), attest(j2, w2, INVALID)]
    assert counts(settle(batch), market) == (1, 1, 0)
    state = ledger(jobs=[j1, j2])
    tx = settle(batch)  # a second relayer, same signed batch
    assert counts(tx, market) == (0, 0, 2)
    assert skips(tx, market) == [
        (j1, w1.address, SKIP_JOB_NOT_OPEN),
        (j2, w2.address, SKIP_NO_SUCH_SUBMISSION),
    ]
    state.assert_unchanged()
    assert market.credited(w1, ZERO_ADDRESS) == AMOUNT


def test_settle__same_item_twice_in_batch__pays_once(market, worker, live_job, attest, settle):
    a = attest(live_job, worker)
    epoch = market.current_epoch()
    tx = settle([a, a])
    assert counts(tx, market) == (1, 0, 1)
    assert skips(tx, market) == [(live_job, worker.address, SKIP_JOB_NOT_OPEN)]
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT
    assert market.epoch_total_work(epoch) == UNITS
    assert len(tx.decode_logs(market.JobSettled)) == 1


# ---------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------


@pytest.fixture
def ended_epoch(chain, market, worker, live_job, attest, settle):
    """An ended epoch in which `worker` has verified work."""
    epoch = settle([attest(live_job, worker)]).decode_logs(market.BatchSettled)[0].epoch
    chain.pending_timestamp = max(
        chain.pending_timestamp, market.GENESIS() + (epoch + 1) * EPOCH_LENGTH
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
    chain, market, deployer, reentrant_worker, create_job, attest, settle
):
    rw = reentrant_worker
    job_id = create_job()
    rw.register(sender=deployer, value=MIN_BOND)
    rw.submit(job_id, commitment_of(rw.address, b"\x01" * 32), sender=deployer)
    settle([attest(job_id, rw.address)])
    # A second credit the nested call could try to take.
    other = create_job()
    rw.submit(other, commitment_of(rw.address, b"\x02" * 32), sender=deployer)
    settle([attest(other, rw.address)])
    assert market.credited(rw, ZERO_ADDRESS) == 2 * AMOUNT
    market_before = chain.provider.get_balance(market.address)

    tx = rw.attack_withdraw(sender=deployer)

    assert rw.attempts() == 1  # the callback ran and tried to re-enter
    assert not rw.reentered()
    [ev] = tx.decode_logs(market.Withdrawn)
    assert ev.amount == 2 * AMOUNT
    assert chain.provider.get_balance(rw.address) == 2 * AMOUNT
    assert chain.provider.get_balance(market.address) == market_before - 2 * AMOUNT
    assert market.credited(rw, ZERO_ADDRESS) == 0
    assert chain.provider.get_balance(market.address) == MIN_BOND  # only the bond is left


def test_reentrancy__withdraw_bond_callback__nested_call_fails_paid_once(
    chain, market, deployer, reentrant_worker, create_job, attest, settle
):
    rw = reentrant_worker
    rw.register(sender=deployer, value=2 * MIN_BOND)
    job_id = create_job()
    rw.submit(job_id, commitment_of(rw.address, b"\x01" * 32), sender=deployer)
    settle([attest(job_id, rw.address)])  # credit the nested call could try to take
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
    chain, market, requester, worker, create_job, bond, submit, attest, settle, ledger
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    chain.pending_timestamp = deadline + REFUND_GRACE + 1
    settle([attest(job_id, worker)])
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job not open"):
        market.refund(job_id, sender=requester)
    state.assert_unchanged()
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


def test_copy__attestation_naming_original__pays_only_original(market, copied, attest, settle):
    job_id, original, copier, c = copied
    settle([attest(job_id, original, commitment=c)])
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
    market, requester, copied, attest, settle
):
    # Honest oracles see that c != keccak(copier ‖ root) and attest INVALID for the copier:
    # the copier is slashed, the original's submission and bond are untouched.
    job_id, original, copier, c = copied
    tx = settle([attest(job_id, copier, INVALID, commitment=c)])
    assert counts(tx, market) == (0, 1, 0)
    assert market.bonds(copier) == 0
    assert market.credited(requester, ZERO_ADDRESS) == MIN_BOND
    assert market.credited(original, ZERO_ADDRESS) == 0
    assert market.submissions(job_id, original).commitment == c
    assert market.submissions(job_id, original).stake == MIN_BOND
    # The original can still be paid for its own work.
    settle([attest(job_id, original, commitment=c)])
    assert market.credited(original, ZERO_ADDRESS) == AMOUNT


def test_copy__valid_for_copier_pays_copier_not_original(market, copied, attest, settle):
    # The contract cannot check that a commitment binds its submitter (the root is off
    # chain); it trusts the quorum's verdict. A VALID naming the copier credits the copier,
    # never the original whose bytes were copied.
    job_id, original, copier, c = copied
    settle([attest(job_id, copier, VALID, commitment=c)])
    assert market.credited(copier, ZERO_ADDRESS) == AMOUNT
    assert market.credited(original, ZERO_ADDRESS) == 0
    assert market.job(job_id).status == STATUS_PAID


# ---------------------------------------------------------------------------
# Known risks (documented behaviour, not bugs): what a bond does and does not back
# ---------------------------------------------------------------------------


def test_risk__one_bond_backs_one_live_submission(
    market, requester, other_requester, worker, create_job, bond, attest, settle, ledger
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
    tx = settle([attest(j, worker, INVALID) for j in jobs])
    assert [ev.amount for ev in tx.decode_logs(market.WorkerSlashed)] == [MIN_BOND] * 3
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND
    assert market.credited(other_requester, ZERO_ADDRESS) == MIN_BOND


def test_unbond__commit_then_unbond__stays_slashable_until_verdict(
    chain, market, deployer, requester, worker, create_job, bond, submit, attest, settle
):
    # The unbonding delay can never be set below reveal window + settlement grace, so a
    # worker who commits and unbonds at once is still bonded when the INVALID verdict lands.
    with ape.reverts("market: unbonding delay too short"):
        market.set_unbonding_delay(60, sender=deployer)
    job_id = create_job()
    bond(worker, 2 * MIN_BOND)
    submit(worker, job_id)  # one bond at stake, one free
    market.request_unbond(sender=worker)
    chain.pending_timestamp += REVEAL_WINDOW + REFUND_GRACE
    with ape.reverts("market: bond still locked"):
        market.withdraw_bond(sender=worker)
    tx = settle([attest(job_id, worker, INVALID)])
    assert tx.decode_logs(market.WorkerSlashed)[0].amount == 2 * MIN_BOND
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND
