"""Bonds and submissions: register, request_unbond, withdraw_bond, submit_result(s)."""

import ape
import pytest
from eth_utils import keccak

from tests.conftest import commitment_of
from tests.utils.constants import INVALID, MIN_BOND, STATUS_OPEN, UNBONDING_DELAY, ZERO_ADDRESS
from tests.utils.parameters import set_parameters

EMPTY = b"\x00" * 32


def commit(worker, n=0):
    return commitment_of(worker.address, keccak(text=f"root {n}"))


# ---------------------------------------------------------------------------
# register
# ---------------------------------------------------------------------------


def test_register__min_bond__bonds_and_logs(chain, market, worker):
    before = chain.provider.get_balance(market.address)
    tx = market.register(sender=worker, value=MIN_BOND)
    [ev] = tx.decode_logs(market.Bonded)
    assert (ev.worker, ev.amount, ev.bond) == (worker.address, MIN_BOND, MIN_BOND)
    assert market.bonds(worker) == MIN_BOND
    assert market.unbonding_at(worker) == 0
    assert chain.provider.get_balance(market.address) == before + MIN_BOND


def test_register__top_up__adds_to_bond(market, worker, bond):
    bond(worker)
    tx = market.register(sender=worker, value=1)
    [ev] = tx.decode_logs(market.Bonded)
    assert (ev.amount, ev.bond) == (1, MIN_BOND + 1)
    assert market.bonds(worker) == MIN_BOND + 1


@pytest.mark.parametrize("value", [0, MIN_BOND - 1])
def test_register__below_min__reverts(market, worker, ledger, value):
    state = ledger()
    with ape.reverts("market: bond below minimum"):
        market.register(sender=worker, value=value)
    state.assert_unchanged()


def test_register__top_up_below_raised_min__reverts(market, deployer, worker, bond, ledger):
    bond(worker)
    set_parameters(market, deployer, min_bond=3 * MIN_BOND)
    state = ledger()
    with ape.reverts("market: bond below minimum"):
        market.register(sender=worker, value=MIN_BOND)
    state.assert_unchanged()
    market.register(sender=worker, value=2 * MIN_BOND)
    assert market.bonds(worker) == 3 * MIN_BOND


def test_register__cancels_unbonding(chain, market, worker, bond, create_job, submit, ledger):
    bond(worker)
    market.request_unbond(sender=worker)
    tx = market.register(sender=worker, value=0)  # a zero top-up is enough to re-activate
    assert tx.decode_logs(market.Bonded)[0].bond == MIN_BOND
    assert market.unbonding_at(worker) == 0
    # The whole bond is active again: it can submit, and cannot withdraw.
    submit(worker, create_job())
    chain.pending_timestamp += UNBONDING_DELAY
    state = ledger()
    with ape.reverts("market: not unbonding"):
        market.withdraw_bond(sender=worker)
    state.assert_unchanged()


def test_register__paused__reverts(market, deployer, worker, ledger):
    market.pause(sender=deployer)
    state = ledger()
    with ape.reverts("pausable: contract is paused"):
        market.register(sender=worker, value=MIN_BOND)
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# request_unbond
# ---------------------------------------------------------------------------


def test_request_unbond__starts_delay(chain, market, worker, bond):
    bond(worker)
    tx = market.request_unbond(sender=worker)
    [ev] = tx.decode_logs(market.UnbondRequested)
    assert ev.worker == worker.address
    assert ev.available_at == tx.timestamp + UNBONDING_DELAY
    assert market.unbonding_at(worker) == tx.timestamp + UNBONDING_DELAY
    assert market.bonds(worker) == MIN_BOND  # still slashable until withdrawn


def test_request_unbond__no_bond__reverts(market, worker, ledger):
    state = ledger()
    with ape.reverts("market: no bond"):
        market.request_unbond(sender=worker)
    state.assert_unchanged()


def test_request_unbond__twice__reverts(market, worker, bond, ledger):
    bond(worker)
    market.request_unbond(sender=worker)
    state = ledger()
    with ape.reverts("market: already unbonding"):
        market.request_unbond(sender=worker)
    state.assert_unchanged()


def test_request_unbond__while_paused__works(market, deployer, worker, bond):
    bond(worker)
    market.pause(sender=deployer)
    market.request_unbond(sender=worker)
    assert market.unbonding_at(worker) != 0


# ---------------------------------------------------------------------------
# withdraw_bond
# ---------------------------------------------------------------------------


def test_withdraw_bond__after_delay__returns_whole_bond(chain, market, worker, bond):
    bond(worker, 2 * MIN_BOND)
    available_at = (
        market.request_unbond(sender=worker).decode_logs(market.UnbondRequested)[0].available_at
    )
    chain.pending_timestamp = available_at  # inclusive bound
    before = worker.balance
    tx = market.withdraw_bond(sender=worker)
    [ev] = tx.decode_logs(market.BondWithdrawn)
    assert (ev.worker, ev.amount) == (worker.address, 2 * MIN_BOND)
    assert worker.balance == before + 2 * MIN_BOND - tx.total_fees_paid
    assert market.bonds(worker) == 0
    assert market.unbonding_at(worker) == 0
    assert chain.provider.get_balance(market.address) == 0


def test_withdraw_bond__too_early__reverts(chain, market, worker, bond, ledger):
    bond(worker)
    available_at = (
        market.request_unbond(sender=worker).decode_logs(market.UnbondRequested)[0].available_at
    )
    state = ledger()
    with ape.reverts("market: bond still locked"):
        market.withdraw_bond(sender=worker)
    chain.pending_timestamp = available_at - 1
    with ape.reverts("market: bond still locked"):
        market.withdraw_bond(sender=worker)
    state.assert_unchanged()


def test_withdraw_bond__without_request__reverts(market, worker, stranger, bond, ledger):
    bond(worker)
    state = ledger()
    for who in (worker, stranger):
        with ape.reverts("market: not unbonding"):
            market.withdraw_bond(sender=who)
    state.assert_unchanged()


def test_withdraw_bond__twice__reverts(chain, market, worker, bond, ledger):
    bond(worker)
    market.request_unbond(sender=worker)
    chain.pending_timestamp += UNBONDING_DELAY
    market.withdraw_bond(sender=worker)
    state = ledger()
    with ape.reverts("market: not unbonding"):
        market.withdraw_bond(sender=worker)
    state.assert_unchanged()


def test_withdraw_bond__while_paused__works(chain, market, deployer, worker, bond):
    bond(worker)
    market.request_unbond(sender=worker)
    market.pause(sender=deployer)
    chain.pending_timestamp += UNBONDING_DELAY
    tx = market.withdraw_bond(sender=worker)
    assert tx.decode_logs(market.BondWithdrawn)[0].amount == MIN_BOND


def test_withdraw_bond__slashed_while_unbonding__reverts(
    chain, market, requester, worker, bond, create_job, submit, attest, settle, finalize, ledger
):
    job_id = create_job()
    bond(worker, 2 * MIN_BOND)  # one at stake, one free to unbond
    submit(worker, job_id)
    market.request_unbond(sender=worker)
    tx = settle([attest(job_id, worker, INVALID)])
    # The slash takes the bond at once; the requester is paid when the batch is final.
    assert market.bonds(worker) == 0
    assert market.pending(ZERO_ADDRESS) == 2 * MIN_BOND
    chain.pending_timestamp += UNBONDING_DELAY
    state = ledger(jobs=[job_id])
    with ape.reverts("market: no bond"):
        market.withdraw_bond(sender=worker)
    state.assert_unchanged()
    finalize(tx)
    assert market.credited(requester, ZERO_ADDRESS) == 2 * MIN_BOND
    assert market.credited(worker, ZERO_ADDRESS) == 0
    with ape.reverts("market: no bond"):
        market.withdraw_bond(sender=worker)


def test_withdraw_bond__valid_stake_back_at_finalize_then_withdrawn(
    chain, market, worker, bond, create_job, submit, attest, settle, finalize
):
    """A worker that unbonds with a submission in flight gets the stake of its VALID verdict
    back in its bond when the batch is final (inside the unbonding delay, which outlasts the
    challenge window), and then withdraws the whole bond."""
    job_id = create_job()
    bond(worker, 2 * MIN_BOND)
    submit(worker, job_id)
    available_at = (
        market.request_unbond(sender=worker).decode_logs(market.UnbondRequested)[0].available_at
    )
    tx = settle([attest(job_id, worker)])
    assert market.bonds(worker) == MIN_BOND  # the stake waits in the batch
    assert market.pending(ZERO_ADDRESS) == MIN_BOND + market.job(job_id).amount
    finalize(tx)
    assert chain.pending_timestamp < available_at
    assert market.bonds(worker) == 2 * MIN_BOND
    assert market.unbonding_at(worker) == available_at  # finalize leaves the unbonding alone
    chain.pending_timestamp = available_at
    tx = market.withdraw_bond(sender=worker)
    assert tx.decode_logs(market.BondWithdrawn)[0].amount == 2 * MIN_BOND
    assert market.bonds(worker) == 0


# ---------------------------------------------------------------------------
# submit_result
# ---------------------------------------------------------------------------


def test_submit_result__bonded__records_commitment(market, worker, bond, create_job):
    job_id = create_job()
    bond(worker)
    c = commit(worker)
    tx = market.submit_result(job_id, c, sender=worker)
    [ev] = tx.decode_logs(market.ResultSubmitted)
    assert (ev.job_id, ev.worker, ev.commitment) == (job_id, worker.address, c)
    assert ev.block_number == tx.block_number
    sub = market.submissions(job_id, worker)
    assert (sub.commitment, sub.block_number) == (c, tx.block_number)
    job = market.job(job_id)
    assert (job.status, job.submissions) == (STATUS_OPEN, 1)


def test_submit_result__at_deadline__accepted(chain, market, worker, bond, create_job):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    chain.pending_timestamp = deadline
    market.submit_result(job_id, commit(worker), sender=worker)
    assert market.job(job_id).submissions == 1


def test_submit_result__unbonded__reverts(market, worker, create_job, ledger):
    job_id = create_job()
    state = ledger(jobs=[job_id])
    with ape.reverts("market: not bonded"):
        market.submit_result(job_id, commit(worker), sender=worker)
    state.assert_unchanged()


def test_submit_result__bond_below_raised_min__reverts(
    market, deployer, worker, bond, create_job, ledger
):
    job_id = create_job()
    bond(worker)
    set_parameters(market, deployer, min_bond=MIN_BOND + 1)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: not bonded"):
        market.submit_result(job_id, commit(worker), sender=worker)
    state.assert_unchanged()


def test_submit_result__unbonding__reverts(market, worker, bond, create_job, ledger):
    job_id = create_job()
    bond(worker)
    market.request_unbond(sender=worker)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: unbonding"):
        market.submit_result(job_id, commit(worker), sender=worker)
    state.assert_unchanged()


def test_submit_result__after_deadline__reverts(chain, market, worker, bond, create_job, ledger):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    chain.pending_timestamp = deadline + 1
    state = ledger(jobs=[job_id])
    with ape.reverts("market: deadline passed"):
        market.submit_result(job_id, commit(worker), sender=worker)
    state.assert_unchanged()


def test_submit_result__twice__reverts(market, worker, bond, create_job, ledger):
    job_id = create_job()
    bond(worker)
    market.submit_result(job_id, commit(worker, 1), sender=worker)
    state = ledger(jobs=[job_id])
    for c in (commit(worker, 1), commit(worker, 2)):
        with ape.reverts("market: already submitted"):
            market.submit_result(job_id, c, sender=worker)
    state.assert_unchanged()


def test_submit_result__empty_commitment__reverts(market, worker, bond, create_job, ledger):
    job_id = create_job()
    bond(worker)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: empty commitment"):
        market.submit_result(job_id, EMPTY, sender=worker)
    state.assert_unchanged()


def test_submit_result__ninth_submission__reverts(
    market, workers, stranger, bond, create_job, submit, ledger
):
    job_id = create_job()
    for w in workers:  # eight distinct workers fill every slot
        bond(w)
        submit(w, job_id)
    assert market.job(job_id).submissions == 8
    bond(stranger)
    state = ledger(jobs=[job_id], accounts=[stranger])
    with ape.reverts("market: too many submissions"):
        market.submit_result(job_id, commit(stranger), sender=stranger)
    state.assert_unchanged()


@pytest.mark.parametrize("how", ["unknown", "cancelled", "refunded", "paid"])
def test_submit_result__job_not_open__reverts(
    chain, market, requester, workers, bond, create_job, submit, attest, settle, ledger, how
):
    worker, first = workers[0], workers[1]
    deadline = chain.pending_timestamp + 3_600
    job_id = 999 if how == "unknown" else create_job(deadline=deadline)
    bond(worker)
    if how == "cancelled":
        market.cancel(job_id, sender=requester)
    elif how == "refunded":
        chain.pending_timestamp = deadline + 1
        market.refund(job_id, sender=requester)
    elif how == "paid":
        bond(first)
        submit(first, job_id)
        settle([attest(job_id, first)])
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job not open"):
        market.submit_result(job_id, commit(worker), sender=worker)
    state.assert_unchanged()


def test_submit_result__paused__reverts(market, deployer, worker, bond, create_job, ledger):
    job_id = create_job()
    bond(worker)
    market.pause(sender=deployer)
    state = ledger(jobs=[job_id])
    with ape.reverts("pausable: contract is paused"):
        market.submit_result(job_id, commit(worker), sender=worker)
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# submit_results
# ---------------------------------------------------------------------------


def test_submit_results__many_jobs__records_each(market, worker, bond, create_job):
    jobs = [create_job() for _ in range(3)]
    bond(worker, 3 * MIN_BOND)
    commits = [(j, commit(worker, j)) for j in jobs]
    tx = market.submit_results(commits, sender=worker)
    logs = tx.decode_logs(market.ResultSubmitted)
    assert [(ev.job_id, ev.commitment) for ev in logs] == commits
    for j, c in commits:
        assert market.submissions(j, worker).commitment == c
        assert market.job(j).submissions == 1


def test_submit_results__empty__reverts(market, worker, bond, ledger):
    bond(worker)
    state = ledger()
    with ape.reverts("market: empty batch"):
        market.submit_results([], sender=worker)
    state.assert_unchanged()


def test_submit_results__unbonded__reverts(market, worker, create_job, ledger):
    job_id = create_job()
    state = ledger(jobs=[job_id])
    with ape.reverts("market: not bonded"):
        market.submit_results([(job_id, commit(worker))], sender=worker)
    state.assert_unchanged()


def test_submit_results__same_job_twice__reverts(market, worker, bond, create_job, ledger):
    job_id = create_job()
    bond(worker)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: already submitted"):
        market.submit_results(
            [(job_id, commit(worker, 1)), (job_id, commit(worker, 2))], sender=worker
        )
    state.assert_unchanged()


def test_submit_results__one_bad_item__reverts_all(
    market, requester, worker, bond, create_job, ledger
):
    good, closed = create_job(), create_job()
    market.cancel(closed, sender=requester)
    bond(worker)
    state = ledger(jobs=[good, closed])
    with ape.reverts("market: job not open"):
        market.submit_results(
            [(good, commit(worker, 1)), (closed, commit(worker, 2))], sender=worker
        )
    state.assert_unchanged()


def test_submit_results__paused__reverts(market, deployer, worker, bond, create_job, ledger):
    job_id = create_job()
    bond(worker)
    market.pause(sender=deployer)
    state = ledger(jobs=[job_id])
    with ape.reverts("pausable: contract is paused"):
        market.submit_results([(job_id, commit(worker))], sender=worker)
    state.assert_unchanged()
