"""Admin: constructor checks, pause, the oracle set, assets, parameters, ownership."""

import ape
import pytest
from eth_utils import keccak, to_checksum_address

from oracle.protocol.emission import schedule_total
from tests.utils.constants import (
    EPOCH_LENGTH,
    ETHER,
    HALVING_EPOCHS,
    INITIAL_EMISSION,
    MAX_HORIZON,
    MIN_BOND,
    REFUND_GRACE,
    REVEAL_WINDOW,
    UNBONDING_DELAY,
    ZERO_ADDRESS,
)

NOT_OWNER = "ownable: caller is not the owner"
YEAR = 365 * 86_400


def address(n):
    return to_checksum_address(keccak(text=f"address {n}")[-20:])


@pytest.fixture
def deploy_market(chain, project, deployer, token, oracles):
    """Deploy a JobMarket with the suite's parameters, any of them overridden."""

    def deploy(**kw):
        # Ape's contract cache outlives the per-test chain snapshots: the address this
        # deployment gets may still carry the type of a contract an earlier test deployed
        # there. On anvil, Ape decodes a reverted deployment's trace against that stale type
        # and fails (eth_abi InvalidPointer) instead of raising the revert; forget it first.
        del chain.contracts[deployer.get_deployment_address()]
        args = {
            "token": token,
            "epoch_length": EPOCH_LENGTH,
            "initial_emission": INITIAL_EMISSION,
            "halving_epochs": HALVING_EPOCHS,
            "oracles": [o.address for o in oracles],
            "threshold": 1,
            "min_bond": MIN_BOND,
            "unbonding_delay": UNBONDING_DELAY,
            "reveal_window": REVEAL_WINDOW,
            "refund_grace": REFUND_GRACE,
            "max_horizon": MAX_HORIZON,
        }
        args.update(kw)
        return project.JobMarket.deploy(*args.values(), sender=deployer)

    return deploy


# ---------------------------------------------------------------------------
# Constructor
# ---------------------------------------------------------------------------


def test_constructor__sets_parameters_and_sorts_oracles(chain, deploy_market, deployer, oracles):
    shuffled = [oracles[i].address for i in (3, 0, 4, 1, 2)]
    m = deploy_market(oracles=shuffled, threshold=2)
    assert m.oracles() == [o.address for o in oracles]
    assert m.threshold() == 2
    assert m.owner() == deployer.address
    assert m.pending_owner() == ZERO_ADDRESS
    assert not m.paused()
    assert (
        m.min_bond(),
        m.unbonding_delay(),
        m.reveal_window(),
        m.refund_grace(),
        m.max_horizon(),
    ) == (MIN_BOND, UNBONDING_DELAY, REVEAL_WINDOW, REFUND_GRACE, MAX_HORIZON)
    assert (m.next_job_id(), m.asset_count(), m.assets(0)) == (1, 1, ZERO_ADDRESS)
    assert m.GENESIS() == chain.blocks.head.timestamp
    assert m.current_epoch() == 0
    domain = m.eip712Domain()
    assert (domain[1], domain[2], domain[3], domain[4]) == (
        "pouw JobMarket",
        "1",
        chain.chain_id,
        m.address,
    )


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"epoch_length": 59}, "market: bad epoch length"),
        ({"epoch_length": YEAR + 1}, "market: bad epoch length"),
        ({"initial_emission": 0}, "market: bad emission"),
        ({"initial_emission": 2**128}, "market: bad emission"),
        ({"halving_epochs": 0}, "market: bad halving period"),
        ({"halving_epochs": 2**32 + 1}, "market: bad halving period"),
        ({"threshold": 0}, "market: bad threshold"),
        ({"threshold": 6}, "market: bad threshold"),
        ({"oracles": [], "threshold": 1}, "market: bad threshold"),
        ({"oracles": [ZERO_ADDRESS]}, "market: zero oracle"),
        ({"oracles": [address(1), address(1)]}, "market: already an oracle"),
        ({"min_bond": 0}, "market: bad min bond"),
        ({"min_bond": 10**24 + 1}, "market: bad min bond"),
        ({"unbonding_delay": 59}, "market: bad unbonding delay"),
        ({"reveal_window": YEAR + 1}, "market: bad reveal window"),
        ({"refund_grace": 0}, "market: bad refund grace"),
        ({"max_horizon": YEAR + 1}, "market: bad max horizon"),
    ],
)
def test_constructor__bad_parameter__reverts(deploy_market, kw, reason):
    with ape.reverts(reason):
        deploy_market(**kw)


def test_constructor__extreme_valid_bounds__accepted(project, deployer, deploy_market, oracles):
    m = deploy_market(
        epoch_length=60,
        min_bond=10**24,
        unbonding_delay=YEAR,
        reveal_window=60,
        refund_grace=YEAR - 60,
        max_horizon=60,
        threshold=5,
    )
    assert (m.EPOCH_LENGTH(), m.min_bond(), m.threshold()) == (60, 10**24, 5)
    top = 2**128 - 1
    capped = project.WorkToken.deploy("W", "W", schedule_total(top, 2**32), sender=deployer)
    m = deploy_market(token=capped, initial_emission=top, halving_epochs=2**32, epoch_length=YEAR)
    assert m.emission_schedule_total() == capped.cap()


@pytest.mark.parametrize(
    "params",
    [
        (INITIAL_EMISSION, HALVING_EPOCHS, 1),  # cap one too high
        (INITIAL_EMISSION, HALVING_EPOCHS, -1),  # cap one too low
        (INITIAL_EMISSION, HALVING_EPOCHS + 1, 0),  # a cap for another schedule
    ],
)
def test_constructor__token_cap_not_schedule__reverts(project, deployer, deploy_market, params):
    initial, halving, delta = params
    cap = schedule_total(initial, halving) + delta
    t = project.WorkToken.deploy("W", "W", cap, sender=deployer)
    with ape.reverts("market: token cap is not the schedule"):
        deploy_market(token=t)


# ---------------------------------------------------------------------------
# pause / unpause
# ---------------------------------------------------------------------------


def test_pause__owner__pauses_and_logs(market, deployer):
    tx = market.pause(sender=deployer)
    assert market.paused()
    [ev] = tx.decode_logs(market.Paused)
    assert ev.account == deployer.address
    tx = market.unpause(sender=deployer)
    assert not market.paused()
    assert tx.decode_logs(market.Unpaused)[0].account == deployer.address


def test_pause__non_owner__reverts(market, deployer, stranger):
    with ape.reverts(NOT_OWNER):
        market.pause(sender=stranger)
    market.pause(sender=deployer)
    with ape.reverts(NOT_OWNER):
        market.unpause(sender=stranger)
    assert market.paused()


def test_pause__twice_or_unpause_when_running__reverts(market, deployer):
    with ape.reverts("pausable: contract is not paused"):
        market.unpause(sender=deployer)
    market.pause(sender=deployer)
    with ape.reverts("pausable: contract is paused"):
        market.pause(sender=deployer)


def test_pause__blocks_every_entry_and_nothing_else(
    chain,
    market,
    deployer,
    requester,
    workers,
    spec_hash,
    create_job,
    bond,
    submit,
    attest,
    settle,
    ledger,
):
    w, leaver, late = workers[:3]
    settled, open_job, to_cancel = create_job(), create_job(), create_job()
    bond(w, 2 * MIN_BOND)  # one stake per live submission
    bond(leaver)
    submit(w, settled)
    submit(w, open_job)
    market.request_unbond(sender=leaver)
    epoch = market.current_epoch()
    deadline = chain.pending_timestamp + 60
    to_refund = create_job(deadline=deadline)

    market.pause(sender=deployer)
    state = ledger(jobs=[open_job])
    with ape.reverts("pausable: contract is paused"):
        market.create_job(spec_hash(9), 1, ZERO_ADDRESS, 1, deadline, sender=requester, value=1)
    with ape.reverts("pausable: contract is paused"):
        market.create_jobs(
            [(spec_hash(9), 1, ZERO_ADDRESS, 1, deadline)], sender=requester, value=1
        )
    with ape.reverts("pausable: contract is paused"):
        market.register(sender=late, value=MIN_BOND)
    with ape.reverts("pausable: contract is paused"):
        market.submit_result(open_job, keccak(text="c"), sender=w)
    with ape.reverts("pausable: contract is paused"):
        market.submit_results([(open_job, keccak(text="c"))], sender=w)
    state.assert_unchanged()

    # Exits and settlement are never blocked.
    settle([attest(settled, w)])
    market.cancel(to_cancel, sender=requester)
    chain.pending_timestamp = max(deadline + 1, market.GENESIS() + (epoch + 1) * 3_600)
    market.refund(to_refund, sender=requester)
    market.withdraw(ZERO_ADDRESS, sender=requester)
    market.withdraw(ZERO_ADDRESS, sender=w)
    market.request_unbond(sender=w)
    chain.pending_timestamp += UNBONDING_DELAY
    market.withdraw_bond(sender=leaver)
    market.claim([epoch], sender=w)
    assert market.paused()

    market.unpause(sender=deployer)
    bond(late)
    submit(late, create_job())


# ---------------------------------------------------------------------------
# Oracle set and threshold
# ---------------------------------------------------------------------------


def test_add_oracle__inserts_sorted_and_logs(market, deployer, oracles, outsider_key):
    tx = market.add_oracle(outsider_key.address, sender=deployer)
    assert tx.decode_logs(market.OracleAdded)[0].oracle == outsider_key.address
    expected = sorted(
        [o.address for o in oracles] + [outsider_key.address], key=lambda a: int(a, 16)
    )
    assert market.oracles() == expected
    low = "0x0000000000000000000000000000000000000001"
    market.add_oracle(low, sender=deployer)
    assert market.oracles()[0] == low


def test_add_oracle__new_oracle_can_sign(
    market, deployer, outsider_key, worker, create_job, bond, submit, attest, settle
):
    market.add_oracle(outsider_key.address, sender=deployer)
    job_id = create_job()
    bond(worker)
    submit(worker, job_id)
    settle([attest(job_id, worker)], keys=[outsider_key])
    assert market.credited(worker, ZERO_ADDRESS) > 0


@pytest.mark.parametrize(
    ("who", "reason"),
    [("zero", "market: zero oracle"), ("member", "market: already an oracle")],
)
def test_add_oracle__bad_address__reverts(market, deployer, oracles, who, reason):
    with ape.reverts(reason):
        market.add_oracle(ZERO_ADDRESS if who == "zero" else oracles[2].address, sender=deployer)
    assert market.oracles() == [o.address for o in oracles]


def test_add_oracle__full_set__reverts(market, deployer):
    for i in range(32 - len(market.oracles())):
        market.add_oracle(address(i), sender=deployer)
    assert len(market.oracles()) == 32
    with ape.reverts("market: too many oracles"):
        market.add_oracle(address(99), sender=deployer)


def test_add_oracle__non_owner__reverts(market, stranger, outsider_key, oracles):
    with ape.reverts(NOT_OWNER):
        market.add_oracle(outsider_key.address, sender=stranger)
    assert market.oracles() == [o.address for o in oracles]


def test_remove_oracle__removes_and_logs(market, deployer, oracles):
    tx = market.remove_oracle(oracles[2].address, sender=deployer)
    assert tx.decode_logs(market.OracleRemoved)[0].oracle == oracles[2].address
    assert market.oracles() == [o.address for i, o in enumerate(oracles) if i != 2]


def test_remove_oracle__not_member__reverts(market, deployer, outsider_key, oracles):
    with ape.reverts("market: not an oracle"):
        market.remove_oracle(outsider_key.address, sender=deployer)
    assert len(market.oracles()) == len(oracles)


def test_remove_oracle__below_threshold__reverts(market, deployer, oracles):
    market.set_threshold(len(oracles), sender=deployer)
    with ape.reverts("market: set would fall below threshold"):
        market.remove_oracle(oracles[0].address, sender=deployer)
    assert len(market.oracles()) == len(oracles)


def test_remove_oracle__non_owner__reverts(market, stranger, oracles):
    with ape.reverts(NOT_OWNER):
        market.remove_oracle(oracles[0].address, sender=stranger)


def test_set_threshold__bounds_and_event(market, deployer, oracles):
    for t in (len(oracles), 1):
        tx = market.set_threshold(t, sender=deployer)
        assert tx.decode_logs(market.UpdateThreshold)[0].threshold == t
        assert market.threshold() == t
    for t in (0, len(oracles) + 1):
        with ape.reverts("market: bad threshold"):
            market.set_threshold(t, sender=deployer)
    assert market.threshold() == 1


def test_set_threshold__non_owner__reverts(market, stranger):
    with ape.reverts(NOT_OWNER):
        market.set_threshold(2, sender=stranger)
    assert market.threshold() == 1


# ---------------------------------------------------------------------------
# Assets
# ---------------------------------------------------------------------------


def test_set_asset_allowed__ids_are_stable(project, market, deployer, usd):
    assert (market.asset_id(usd), market.assets(1), market.asset_count()) == (1, usd.address, 2)
    other = project.MockToken.deploy("Other", "OTH", sender=deployer)
    tx = market.set_asset_allowed(other, True, sender=deployer)
    [ev] = tx.decode_logs(market.AssetAllowed)
    assert (ev.asset, ev.asset_id, ev.allowed) == (other.address, 2, True)
    assert (market.asset_id(other), market.assets(2), market.asset_count()) == (2, other.address, 3)
    tx = market.set_asset_allowed(usd, False, sender=deployer)
    [ev] = tx.decode_logs(market.AssetAllowed)
    assert (ev.asset, ev.asset_id, ev.allowed) == (usd.address, 1, False)
    assert not market.asset_allowed(usd)
    market.set_asset_allowed(usd, True, sender=deployer)
    assert (market.asset_id(usd), market.asset_count()) == (1, 3)


def test_set_asset_allowed__disallow_keeps_existing_jobs(
    market, deployer, usd, requester, worker, create_job, bond, submit, attest, settle
):
    job_id = create_job(asset=usd, amount=ETHER)
    bond(worker)
    submit(worker, job_id)
    market.set_asset_allowed(usd, False, sender=deployer)
    assert market.job(job_id).asset == usd.address
    settle([attest(job_id, worker)])
    assert market.credited(worker, usd) == ETHER


def test_set_asset_allowed__eth__reverts(market, deployer):
    with ape.reverts("market: eth is always allowed"):
        market.set_asset_allowed(ZERO_ADDRESS, False, sender=deployer)


def test_set_asset_allowed__non_owner__reverts(market, stranger, usd):
    with ape.reverts(NOT_OWNER):
        market.set_asset_allowed(usd, False, sender=stranger)
    assert market.asset_allowed(usd)


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------

PARAMETERS = [
    # setter, getter (= event field), event, revert reason, good values, bad values
    (
        "set_min_bond",
        "min_bond",
        "UpdateMinBond",
        "market: bad min bond",
        [1, 10**24],
        [0, 10**24 + 1],
    ),
    # The three windows are also bounded by each other (see test_windows__*): the good values
    # here are the extremes the fixture's other two windows allow.
    (
        "set_unbonding_delay",
        "unbonding_delay",
        "UpdateUnbondingDelay",
        "market: bad unbonding delay",
        [REVEAL_WINDOW + REFUND_GRACE, YEAR],
        [0, 59, YEAR + 1],
    ),
    (
        "set_reveal_window",
        "reveal_window",
        "UpdateRevealWindow",
        "market: bad reveal window",
        [60, REFUND_GRACE],
        [0, 59, YEAR + 1],
    ),
    (
        "set_refund_grace",
        "refund_grace",
        "UpdateRefundGrace",
        "market: bad refund grace",
        [REVEAL_WINDOW, UNBONDING_DELAY - REVEAL_WINDOW],
        [0, 59, YEAR + 1],
    ),
    (
        "set_max_horizon",
        "max_horizon",
        "UpdateMaxHorizon",
        "market: bad max horizon",
        [60, YEAR],
        [0, 59, YEAR + 1],
    ),
]


@pytest.mark.parametrize(
    ("setter", "getter", "event", "reason", "good", "bad"),
    PARAMETERS,
    ids=[p[0] for p in PARAMETERS],
)
def test_parameter_setters__bounds_events_owner(
    market, deployer, stranger, setter, getter, event, reason, good, bad
):
    initial = getattr(market, getter)()
    for value in bad:
        with ape.reverts(reason):
            getattr(market, setter)(value, sender=deployer)
    with ape.reverts(NOT_OWNER):
        getattr(market, setter)(good[0], sender=stranger)
    assert getattr(market, getter)() == initial
    for value in good:
        tx = getattr(market, setter)(value, sender=deployer)
        [ev] = tx.decode_logs(getattr(market, event))
        assert getattr(ev, getter) == value
        assert getattr(market, getter)() == value


def test_set_unbonding_delay__applies_to_future_requests_only(
    chain, market, deployer, workers, bond
):
    early, late = workers[:2]
    bond(early)
    bond(late)
    first = market.request_unbond(sender=early).decode_logs(market.UnbondRequested)[0]
    market.set_unbonding_delay(REVEAL_WINDOW + REFUND_GRACE, sender=deployer)
    second = market.request_unbond(sender=late).decode_logs(market.UnbondRequested)[0]
    assert market.unbonding_at(early) == first.available_at
    assert second.available_at - first.available_at < UNBONDING_DELAY


@pytest.mark.parametrize(
    ("setter", "value", "reason"),
    [
        (
            "set_unbonding_delay",
            REVEAL_WINDOW + REFUND_GRACE - 1,
            "market: unbonding delay too short",
        ),
        ("set_reveal_window", REFUND_GRACE + 1, "market: refund grace below reveal window"),
        ("set_refund_grace", REVEAL_WINDOW - 1, "market: refund grace below reveal window"),
        (
            "set_refund_grace",
            UNBONDING_DELAY - REVEAL_WINDOW + 1,
            "market: unbonding delay too short",
        ),
    ],
)
def test_windows__inconsistent__reverts(market, deployer, setter, value, reason):
    before = (market.unbonding_delay(), market.reveal_window(), market.refund_grace())
    with ape.reverts(reason):
        getattr(market, setter)(value, sender=deployer)
    assert (market.unbonding_delay(), market.reveal_window(), market.refund_grace()) == before


def test_constructor__unbonding_shorter_than_windows__reverts(deploy_market):
    with ape.reverts("market: unbonding delay too short"):
        deploy_market(unbonding_delay=REVEAL_WINDOW + REFUND_GRACE - 1)


# ---------------------------------------------------------------------------
# Ownership
# ---------------------------------------------------------------------------


def test_ownership__two_step_transfer(market, deployer, stranger):
    tx = market.transfer_ownership(stranger, sender=deployer)
    [ev] = tx.decode_logs(market.OwnershipTransferStarted)
    assert (ev.previous_owner, ev.new_owner) == (deployer.address, stranger.address)
    assert market.owner() == deployer.address  # nothing changes until accepted
    assert market.pending_owner() == stranger.address
    market.pause(sender=deployer)

    market.accept_ownership(sender=stranger)
    assert market.owner() == stranger.address
    assert market.pending_owner() == ZERO_ADDRESS
    with ape.reverts(NOT_OWNER):
        market.unpause(sender=deployer)
    market.unpause(sender=stranger)


def test_ownership__accept_by_other_than_pending__reverts(market, deployer, stranger, requester):
    market.transfer_ownership(stranger, sender=deployer)
    for who in (requester, deployer):
        with ape.reverts("ownable_2step: caller is not the new owner"):
            market.accept_ownership(sender=who)
    assert market.owner() == deployer.address
    assert market.pending_owner() == stranger.address


def test_ownership__accept_without_transfer__reverts(market, stranger):
    with ape.reverts("ownable_2step: caller is not the new owner"):
        market.accept_ownership(sender=stranger)


def test_ownership__transfer_by_non_owner__reverts(market, stranger):
    with ape.reverts(NOT_OWNER):
        market.transfer_ownership(stranger, sender=stranger)
    assert market.pending_owner() == ZERO_ADDRESS


def test_ownership__transfer_to_zero_cancels_pending(market, deployer, stranger):
    market.transfer_ownership(stranger, sender=deployer)
    market.transfer_ownership(ZERO_ADDRESS, sender=deployer)
    with ape.reverts("ownable_2step: caller is not the new owner"):
        market.accept_ownership(sender=stranger)


def test_ownership__renounce__no_admin_left(market, deployer, stranger):
    market.transfer_ownership(stranger, sender=deployer)
    market.renounce_ownership(sender=deployer)
    assert market.owner() == ZERO_ADDRESS
    assert market.pending_owner() == ZERO_ADDRESS
    with ape.reverts(NOT_OWNER):
        market.pause(sender=deployer)
    with ape.reverts("ownable_2step: caller is not the new owner"):
        market.accept_ownership(sender=stranger)
