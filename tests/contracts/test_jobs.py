"""Jobs: create_job, create_jobs, refund, cancel and the job() view."""

import ape
import pytest

from oracle.protocol.dispute_terms import spec_tag
from tests.utils.constants import (
    ETHER,
    MAX_HORIZON,
    REFUND_GRACE,
    STATUS_CANCELLED,
    STATUS_NONE,
    STATUS_OPEN,
    STATUS_REFUNDED,
    ZERO_ADDRESS,
)

UNITS = 2 * 64**3
AMOUNT = ETHER // 10


def request(spec, asset=ZERO_ADDRESS, amount=AMOUNT, units=UNITS, deadline=0):
    """One `JobRequest` tuple for create_jobs."""
    return (spec, units, asset, amount, deadline)


# ---------------------------------------------------------------------------
# create_job
# ---------------------------------------------------------------------------


def test_create_job__eth__escrows_and_logs(chain, market, requester, spec_hash):
    deadline = chain.pending_timestamp + 3_600
    before = chain.provider.get_balance(market.address)
    first = market.next_job_id()

    tx = market.create_job(
        spec_hash(1), UNITS, ZERO_ADDRESS, AMOUNT, deadline, sender=requester, value=AMOUNT
    )

    [ev] = tx.decode_logs(market.JobCreated)
    assert ev.job_id == first
    assert ev.requester == requester.address
    assert ev.spec_hash == spec_hash(1)
    assert ev.asset == ZERO_ADDRESS
    assert ev.amount == AMOUNT
    assert ev.work_units == UNITS
    assert ev.deadline == deadline
    assert market.next_job_id() == first + 1
    assert chain.provider.get_balance(market.address) == before + AMOUNT
    job = market.job(first)
    assert job.requester == requester.address
    assert job.asset == ZERO_ADDRESS
    assert (job.amount, job.work_units, job.deadline) == (AMOUNT, UNITS, deadline)
    assert (job.status, job.submissions) == (STATUS_OPEN, 0)


def test_create_job__erc20__pulls_exact_amount(chain, market, usd, requester, spec_hash):
    deadline = chain.pending_timestamp + 3_600
    amount = 250 * ETHER
    balance = usd.balanceOf(requester)

    tx = market.create_job(spec_hash(1), UNITS, usd, amount, deadline, sender=requester)

    [ev] = tx.decode_logs(market.JobCreated)
    assert (ev.asset, ev.amount) == (usd.address, amount)
    assert usd.balanceOf(market) == amount
    assert usd.balanceOf(requester) == balance - amount
    job = market.job(ev.job_id)
    assert (job.asset, job.amount, job.status) == (usd.address, amount, STATUS_OPEN)


def test_create_job__max_amount__accepted(chain, market, usd, requester, spec_hash):
    usd.mint(requester, 2**96, sender=requester)
    tx = market.create_job(
        spec_hash(1), UNITS, usd, 2**96 - 1, chain.pending_timestamp + 3_600, sender=requester
    )
    [ev] = tx.decode_logs(market.JobCreated)
    assert market.job(ev.job_id).amount == 2**96 - 1


def test_create_job__max_work_units__round_trip(create_job, market):
    job_id = create_job(units=2**64 - 1)
    assert market.job(job_id).work_units == 2**64 - 1


@pytest.mark.parametrize("value", [0, AMOUNT - 1, AMOUNT + 1])
def test_create_job__wrong_eth_value__reverts(chain, market, requester, spec_hash, ledger, value):
    state = ledger()
    with ape.reverts("market: wrong eth amount"):
        market.create_job(
            spec_hash(1),
            UNITS,
            ZERO_ADDRESS,
            AMOUNT,
            chain.pending_timestamp + 3_600,
            sender=requester,
            value=value,
        )
    state.assert_unchanged()


def test_create_job__eth_sent_with_token_job__reverts(
    chain, market, usd, requester, spec_hash, ledger
):
    state = ledger()
    with ape.reverts("market: eth sent with token job"):
        market.create_job(
            spec_hash(1),
            UNITS,
            usd,
            AMOUNT,
            chain.pending_timestamp + 3_600,
            sender=requester,
            value=1,
        )
    state.assert_unchanged()


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("spec", "market: empty spec hash"),
        ("units", "market: zero work units"),
        ("amount", "market: zero amount"),
        ("too_large", "market: amount too large"),
    ],
)
def test_create_job__bad_terms__reverts(
    chain, market, usd, requester, spec_hash, ledger, field, reason
):
    spec, units, amount = spec_hash(1), UNITS, AMOUNT
    if field == "spec":
        spec = b"\x00" * 32
    elif field == "units":
        units = 0
    elif field == "amount":
        amount = 0
    else:
        amount = 2**96
        usd.mint(requester, 2**96, sender=requester)
    state = ledger()
    with ape.reverts(reason):
        market.create_job(
            spec, units, usd, amount, chain.pending_timestamp + 3_600, sender=requester
        )
    state.assert_unchanged()


def test_create_job__zero_amount_eth__reverts(chain, market, requester, spec_hash, ledger):
    state = ledger()
    with ape.reverts("market: zero amount"):
        market.create_job(
            spec_hash(1),
            UNITS,
            ZERO_ADDRESS,
            0,
            chain.pending_timestamp + 3_600,
            sender=requester,
            value=0,
        )
    state.assert_unchanged()


def test_create_job__deadline_bounds(chain, market, requester, spec_hash, ledger):
    def create_at(now, deadline, spec=1):
        chain.pending_timestamp = now  # the next transaction is mined at `now`
        return market.create_job(
            spec_hash(spec), UNITS, ZERO_ADDRESS, AMOUNT, deadline, sender=requester, value=AMOUNT
        )

    state = ledger()
    now = chain.pending_timestamp + 10
    with ape.reverts("market: deadline in past"):
        create_at(now, now - 1)
    with ape.reverts("market: deadline in past"):
        create_at(now + 10, now + 10)
    with ape.reverts("market: deadline too far"):
        create_at(now + 20, now + 20 + MAX_HORIZON + 1)
    state.assert_unchanged()

    # Both ends of the window are accepted: now + 1 and now + max_horizon.
    create_at(now + 30, now + 31)
    tx = create_at(now + 40, now + 40 + MAX_HORIZON, spec=2)
    assert tx.decode_logs(market.JobCreated)[0].deadline == now + 40 + MAX_HORIZON


def test_create_job__asset_not_allowed__reverts(
    chain, project, deployer, market, usd, requester, spec_hash, ledger
):
    other = project.MockToken.deploy("Other", "OTH", sender=deployer)
    other.mint(requester, ETHER, sender=requester)
    other.approve(market, 2**256 - 1, sender=requester)
    market.set_asset_allowed(usd, False, sender=deployer)
    state = ledger()
    for asset in (other, usd):
        with ape.reverts("market: asset not allowed"):
            market.create_job(
                spec_hash(1),
                UNITS,
                asset,
                AMOUNT,
                chain.pending_timestamp + 3_600,
                sender=requester,
            )
    state.assert_unchanged()
    assert other.balanceOf(market) == 0


def test_create_job__paused__reverts(chain, market, deployer, requester, spec_hash, ledger):
    market.pause(sender=deployer)
    state = ledger()
    with ape.reverts("pausable: contract is paused"):
        market.create_job(
            spec_hash(1),
            UNITS,
            ZERO_ADDRESS,
            AMOUNT,
            chain.pending_timestamp + 3_600,
            sender=requester,
            value=AMOUNT,
        )
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# create_jobs
# ---------------------------------------------------------------------------


def test_create_jobs__mixed_eth_and_erc20__escrows_each(chain, market, usd, requester, spec_hash):
    deadline = chain.pending_timestamp + 3_600
    reqs = [
        request(spec_hash(1), amount=AMOUNT, deadline=deadline),
        request(spec_hash(2), asset=usd.address, amount=7 * ETHER, deadline=deadline),
        request(spec_hash(3), amount=3 * AMOUNT, units=5, deadline=deadline + 1),
        request(spec_hash(4), asset=usd.address, amount=2 * ETHER, deadline=deadline),
    ]
    first = market.next_job_id()
    eth_before = chain.provider.get_balance(market.address)

    tx = market.create_jobs(reqs, sender=requester, value=4 * AMOUNT)

    logs = tx.decode_logs(market.JobCreated)
    assert [ev.job_id for ev in logs] == [first, first + 1, first + 2, first + 3]
    assert [ev.spec_hash for ev in logs] == [spec_hash(i) for i in (1, 2, 3, 4)]
    assert [ev.asset for ev in logs] == [ZERO_ADDRESS, usd.address, ZERO_ADDRESS, usd.address]
    assert market.next_job_id() == first + 4
    assert chain.provider.get_balance(market.address) == eth_before + 4 * AMOUNT
    assert usd.balanceOf(market) == 9 * ETHER
    # Each ERC-20 is pulled once, for the sum of its jobs.
    [pull] = tx.decode_logs(usd.Transfer)
    assert (pull.sender, pull.receiver, pull.value) == (
        requester.address,
        market.address,
        9 * ETHER,
    )
    third = market.job(first + 2)
    assert (third.amount, third.work_units, third.deadline) == (3 * AMOUNT, 5, deadline + 1)
    for i in range(4):
        assert market.job(first + i).status == STATUS_OPEN
        assert market.job(first + i).requester == requester.address


def test_create_jobs__erc20_only__no_eth(chain, market, usd, requester, spec_hash):
    deadline = chain.pending_timestamp + 3_600
    tx = market.create_jobs(
        [request(spec_hash(1), asset=usd.address, deadline=deadline)], sender=requester
    )
    assert len(tx.decode_logs(market.JobCreated)) == 1
    assert usd.balanceOf(market) == AMOUNT


@pytest.mark.parametrize("value", [0, 2 * AMOUNT - 1, 2 * AMOUNT + 1, 3 * AMOUNT])
def test_create_jobs__msg_value_mismatch__reverts(
    chain, market, usd, requester, spec_hash, ledger, value
):
    deadline = chain.pending_timestamp + 3_600
    reqs = [
        request(spec_hash(1), deadline=deadline),
        request(spec_hash(2), asset=usd.address, deadline=deadline),
        request(spec_hash(3), deadline=deadline),
    ]
    state = ledger()
    with ape.reverts("market: wrong eth amount"):
        market.create_jobs(reqs, sender=requester, value=value)
    state.assert_unchanged()


def test_create_jobs__eth_with_erc20_only_batch__reverts(
    chain, market, usd, requester, spec_hash, ledger
):
    state = ledger()
    with ape.reverts("market: wrong eth amount"):
        market.create_jobs(
            [request(spec_hash(1), asset=usd.address, deadline=chain.pending_timestamp + 3_600)],
            sender=requester,
            value=1,
        )
    state.assert_unchanged()


def test_create_jobs__empty__reverts(market, requester, ledger):
    state = ledger()
    with ape.reverts("market: empty batch"):
        market.create_jobs([], sender=requester)
    state.assert_unchanged()


def test_create_jobs__one_bad_item__reverts_all(chain, market, usd, requester, spec_hash, ledger):
    deadline = chain.pending_timestamp + 3_600
    reqs = [
        request(spec_hash(1), deadline=deadline),
        request(spec_hash(2), asset=usd.address, units=0, deadline=deadline),
    ]
    state = ledger()
    with ape.reverts("market: zero work units"):
        market.create_jobs(reqs, sender=requester, value=AMOUNT)
    state.assert_unchanged()


def test_create_jobs__paused__reverts(chain, market, deployer, requester, spec_hash, ledger):
    market.pause(sender=deployer)
    state = ledger()
    with ape.reverts("pausable: contract is paused"):
        market.create_jobs(
            [request(spec_hash(1), deadline=chain.pending_timestamp + 3_600)],
            sender=requester,
            value=AMOUNT,
        )
    state.assert_unchanged()


# ---------------------------------------------------------------------------
# refund
# ---------------------------------------------------------------------------


def test_refund__after_deadline_without_submissions__credits_requester(
    chain, market, requester, stranger, create_job
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    chain.pending_timestamp = deadline + 1

    tx = market.refund(job_id, sender=stranger)  # anyone may refund

    [ev] = tx.decode_logs(market.JobRefunded)
    assert (ev.job_id, ev.requester, ev.amount) == (job_id, requester.address, AMOUNT)
    assert market.job(job_id).status == STATUS_REFUNDED
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT
    # The escrow stays in the market until the requester withdraws it.
    before = requester.balance
    w = market.withdraw(ZERO_ADDRESS, sender=requester)
    assert requester.balance == before + AMOUNT - w.total_fees_paid
    assert chain.provider.get_balance(market.address) == 0


def test_refund__erc20_job__credits_the_token(chain, market, usd, requester, create_job):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(asset=usd, amount=5 * ETHER, deadline=deadline)
    chain.pending_timestamp = deadline + 1
    market.refund(job_id, sender=requester)
    assert market.credited(requester, usd) == 5 * ETHER
    assert market.credited(requester, ZERO_ADDRESS) == 0


def test_refund__before_or_at_deadline__reverts(chain, market, requester, create_job, ledger):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: deadline not passed"):
        market.refund(job_id, sender=requester)
    chain.pending_timestamp = deadline
    with ape.reverts("market: deadline not passed"):
        market.refund(job_id, sender=requester)
    state.assert_unchanged()


def test_refund__submissions_during_grace__reverts_then_allowed_after(
    chain, market, requester, worker, create_job, bond, submit, ledger
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    bond(worker)
    submit(worker, job_id)
    state = ledger(jobs=[job_id])
    for t in (deadline + 1, deadline + REFUND_GRACE):
        chain.pending_timestamp = t
        with ape.reverts("market: settlement grace running"):
            market.refund(job_id, sender=requester)
    state.assert_unchanged()

    chain.pending_timestamp = deadline + REFUND_GRACE + 1
    tx = market.refund(job_id, sender=requester)
    assert tx.decode_logs(market.JobRefunded)[0].amount == AMOUNT
    assert market.job(job_id).status == STATUS_REFUNDED
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT


def test_refund__twice__reverts(chain, market, requester, create_job, ledger):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    chain.pending_timestamp = deadline + 1
    market.refund(job_id, sender=requester)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job not open"):
        market.refund(job_id, sender=requester)
    state.assert_unchanged()
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT


def test_refund__unknown_job__reverts(market, stranger, ledger):
    state = ledger()
    with ape.reverts("market: job not open"):
        market.refund(12345, sender=stranger)
    state.assert_unchanged()


def test_refund__while_paused__works(chain, market, deployer, requester, create_job):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    market.pause(sender=deployer)
    chain.pending_timestamp = deadline + 1
    market.refund(job_id, sender=requester)
    assert market.job(job_id).status == STATUS_REFUNDED


# ---------------------------------------------------------------------------
# cancel
# ---------------------------------------------------------------------------


def test_cancel__by_requester__credits_escrow(market, requester, create_job):
    job_id = create_job()
    tx = market.cancel(job_id, sender=requester)
    [ev] = tx.decode_logs(market.JobCancelled)
    assert (ev.job_id, ev.requester, ev.amount) == (job_id, requester.address, AMOUNT)
    assert market.job(job_id).status == STATUS_CANCELLED
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT
    assert not tx.decode_logs(market.JobRefunded)


def test_cancel__after_deadline_and_while_paused__works(
    chain, market, deployer, requester, create_job, usd
):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(asset=usd, amount=ETHER, deadline=deadline)
    market.pause(sender=deployer)
    chain.pending_timestamp = deadline + 10 * REFUND_GRACE
    market.cancel(job_id, sender=requester)
    assert market.job(job_id).status == STATUS_CANCELLED
    assert market.credited(requester, usd) == ETHER


@pytest.mark.parametrize("who", ["stranger", "other_requester"])
def test_cancel__by_someone_else__reverts(
    market, create_job, ledger, stranger, other_requester, who
):
    job_id = create_job()
    state = ledger(jobs=[job_id])
    with ape.reverts("market: not requester"):
        market.cancel(job_id, sender=stranger if who == "stranger" else other_requester)
    state.assert_unchanged()


def test_cancel__with_submissions__reverts(
    market, requester, worker, create_job, bond, submit, ledger
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job has submissions"):
        market.cancel(job_id, sender=requester)
    state.assert_unchanged()


def test_cancel__after_settle__reverts(
    market, requester, worker, create_job, bond, submit, attest, settle, ledger
):
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    settle([attest(job_id, worker)])
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job not open"):
        market.cancel(job_id, sender=requester)
    state.assert_unchanged()


def test_cancel__twice_or_unknown__reverts(market, requester, create_job, ledger):
    job_id = create_job()
    market.cancel(job_id, sender=requester)
    state = ledger(jobs=[job_id])
    for j in (job_id, 999):
        with ape.reverts("market: job not open"):
            market.cancel(j, sender=requester)
    state.assert_unchanged()


def test_cancel__then_refund__reverts(chain, market, requester, create_job, ledger):
    deadline = chain.pending_timestamp + 600
    job_id = create_job(deadline=deadline)
    market.cancel(job_id, sender=requester)
    chain.pending_timestamp = deadline + 1
    state = ledger(jobs=[job_id])
    with ape.reverts("market: job not open"):
        market.refund(job_id, sender=requester)
    state.assert_unchanged()
    assert market.credited(requester, ZERO_ADDRESS) == AMOUNT


# ---------------------------------------------------------------------------
# job() view
# ---------------------------------------------------------------------------


def test_job__unknown_id__is_all_zero(market):
    job = market.job(777)
    assert job.requester == ZERO_ADDRESS
    assert job.asset == ZERO_ADDRESS
    assert (job.amount, job.work_units, job.deadline, job.status, job.submissions) == (
        0,
        0,
        0,
        STATUS_NONE,
        0,
    )


def test_job__packed_fields_at_their_maxima_do_not_bleed(
    chain, market, usd, requester, workers, bond, submit
):
    usd.mint(requester, 2**96, sender=requester)
    deadline = chain.pending_timestamp + MAX_HORIZON
    tx = market.create_job(b"\xff" * 32, 2**64 - 1, usd, 2**96 - 1, deadline, sender=requester)
    job_id = tx.decode_logs(market.JobCreated)[0].job_id
    for w in workers:  # the submission counter at its maximum, 8
        bond(w)
        submit(w, job_id)
    job = market.job(job_id)
    assert (job.requester, job.asset) == (requester.address, usd.address)
    assert (job.amount, job.work_units, job.deadline) == (2**96 - 1, 2**64 - 1, deadline)
    assert (job.status, job.submissions) == (STATUS_OPEN, 8)


def test_job__counts_submissions(market, workers, create_job, bond, submit):
    job_id = create_job()
    for i, w in enumerate(workers[:3]):
        bond(w)
        submit(w, job_id)
        assert market.job(job_id).submissions == i + 1
    assert market.job(job_id).status == STATUS_OPEN


def test_job__ids_are_sequential_per_market(market, requester, other_requester, create_job):
    a = create_job()
    b = create_job(sender=other_requester)
    assert b == a + 1
    assert market.job(a).requester == requester.address
    assert market.job(b).requester == other_requester.address


# ---------------------------------------------------------------------------
# spec tag
# ---------------------------------------------------------------------------


def _salt(chain, block_number: int) -> bytes:
    return bytes(chain.provider.web3.eth.get_block(block_number)["parentHash"])


def test_spec_tag__top_half_of_the_salted_spec_hash(chain, market, requester, spec_hash):
    tags = []
    for n in range(3):
        tx = market.create_job(
            spec_hash(n),
            UNITS,
            ZERO_ADDRESS,
            AMOUNT,
            chain.pending_timestamp + 3_600,
            sender=requester,
            value=AMOUNT,
        )
        job_id = tx.decode_logs(market.JobCreated)[0].job_id
        tag = market.spec_tag(job_id)
        assert tag == spec_tag(spec_hash(n), _salt(chain, tx.block_number))
        assert 0 < tag < 2**128
        tags.append(tag)
    assert len(set(tags)) == 3
    assert market.spec_tag(market.next_job_id()) == 0


def test_spec_tag__leaves_every_packed_field_alone(chain, market, requester, spec_hash):
    # the largest work units beside a tag of 128 bits: every field reads back whole
    deadline = chain.pending_timestamp + MAX_HORIZON
    tx = market.create_job(
        spec_hash(9), 2**64 - 1, ZERO_ADDRESS, AMOUNT, deadline, sender=requester, value=AMOUNT
    )
    job_id = tx.decode_logs(market.JobCreated)[0].job_id
    job = market.job(job_id)
    assert job.requester == requester.address
    assert (job.amount, job.work_units, job.deadline) == (AMOUNT, 2**64 - 1, deadline)
    assert (job.status, job.submissions) == (STATUS_OPEN, 0)
    assert market.spec_tag(job_id) == spec_tag(spec_hash(9), _salt(chain, tx.block_number))
