"""Admin: constructor checks, pause, assets, parameters, ownership.

The oracle set, its threshold and the oracle bonds live in OracleSet: tests/contracts/
test_oracle_set.py.
"""

import ape
import pytest
from eth_utils import keccak, to_checksum_address

from oracle.chain.deployments import create_address
from oracle.protocol.emission import schedule_total
from tests.utils.constants import (
    CHALLENGE_WINDOW,
    EPOCH_LENGTH,
    ETHER,
    HALVING_EPOCHS,
    INITIAL_EMISSION,
    MAX_HORIZON,
    MIN_BOND,
    ORACLE_BOND,
    REFUND_GRACE,
    REVEAL_WINDOW,
    UNBONDING_DELAY,
    ZERO_ADDRESS,
)
from tests.utils.parameters import PARAMETERS, as_struct, current_parameters

NOT_OWNER = "ownable: caller is not the owner"
YEAR = 365 * 86_400
MAX_CHALLENGE_WINDOW = 30 * 86_400
#: The suite's parameters (tests/utils/constants.py), as the fixture market has them.
DEFAULTS = {
    "min_bond": MIN_BOND,
    "unbonding_delay": UNBONDING_DELAY,
    "reveal_window": REVEAL_WINDOW,
    "refund_grace": REFUND_GRACE,
    "max_horizon": MAX_HORIZON,
    "challenge_window": CHALLENGE_WINDOW,
}


def address(n):
    return to_checksum_address(keccak(text=f"address {n}")[-20:])


@pytest.fixture
def make_set(chain, project, deployer, oracles):
    """Deploy an OracleSet of the suite's oracles for `market`; by default for the address the
    deployer's transaction after next creates (the Disputes contract comes between), as
    oracle/chain/ape_deploy.py does."""

    def make(market: str | None = None):
        # Ape's contract cache outlives the per-test chain snapshots: the address this
        # deployment gets may still carry the type of a contract an earlier test deployed
        # there. On anvil, Ape decodes a reverted deployment's trace against that stale type
        # and fails (eth_abi InvalidPointer) instead of raising the revert; forget it first.
        del chain.contracts[deployer.get_deployment_address()]
        return project.OracleSet.deploy(
            market or create_address(deployer.address, deployer.nonce + 2),
            [o.address for o in oracles],
            1,
            ORACLE_BOND,
            sender=deployer,
        )

    return make


@pytest.fixture
def make_disputes(chain, project, deployer):
    """Deploy a Disputes contract for `market`, by default for the address the deployer's
    next transaction creates."""

    def make(market: str | None = None):
        del chain.contracts[deployer.get_deployment_address()]
        return project.Disputes.deploy(
            market or create_address(deployer.address, deployer.nonce + 1), sender=deployer
        )

    return make


@pytest.fixture
def deploy_market(chain, project, deployer, token, make_set, make_disputes):
    """Deploy a JobMarket with the suite's parameters, any of them overridden, for a new
    OracleSet (`make_set()`) and Disputes contract (`make_disputes()`) unless `oracle_set=` or
    `disputes=` is given. `dry_run=True` runs the deployment as an eth_call instead (see
    `deploy_reverts`)."""

    def deploy(dry_run: bool = False, **kw):
        oracle_set = kw.pop("oracle_set", None) or make_set()
        disputes = kw.pop("disputes", None) or make_disputes()
        del chain.contracts[deployer.get_deployment_address()]
        args = {
            "token": token,
            "epoch_length": EPOCH_LENGTH,
            "initial_emission": INITIAL_EMISSION,
            "halving_epochs": HALVING_EPOCHS,
            "oracle_set": oracle_set,
            "disputes": disputes,
            **DEFAULTS,
        }
        args.update(kw)
        if dry_run:
            txn = project.JobMarket.constructor.serialize_transaction(*args.values())
            txn.sender = deployer.address
            return chain.provider.send_call(txn)
        return project.JobMarket.deploy(*args.values(), sender=deployer)

    return deploy


@pytest.fixture
def deploy_reverts(chain, deployer, deploy_market, make_set, make_disputes):
    """deploy_reverts(reason, **kw): the market's deployment with these arguments reverts
    with `reason`, and sending it creates nothing.

    The reason is read from an eth_call of the deployment at the deployer's nonce. Ape's test
    provider mines a failed deployment and then replays it for its reason at the next nonce,
    that is for another CREATE address, which the OracleSet check rejects first: the reason
    it reports for a sent deployment is not the one that stopped it."""

    def check(reason: str, **kw):
        oracle_set = kw.pop("oracle_set", None) or make_set()
        disputes = kw.pop("disputes", None) or make_disputes()
        target = deployer.get_deployment_address()
        with ape.reverts(reason):
            deploy_market(dry_run=True, oracle_set=oracle_set, disputes=disputes, **kw)
        with ape.reverts():
            deploy_market(oracle_set=oracle_set, disputes=disputes, **kw)
        assert not chain.provider.get_code(target)

    return check


# ---------------------------------------------------------------------------
# Constructor
# ---------------------------------------------------------------------------


def test_constructor__sets_parameters_and_wires_oracle_set(
    chain, project, deploy_market, deployer, oracles
):
    m = deploy_market()
    s = project.OracleSet.at(m.ORACLES())
    assert s.MARKET() == m.address
    assert project.Disputes.at(m.DISPUTES()).MARKET() == m.address
    assert s.oracles() == [o.address for o in oracles]
    assert s.threshold() == 1
    assert m.owner() == deployer.address
    assert m.pending_owner() == ZERO_ADDRESS
    assert not m.paused()
    assert current_parameters(m) == DEFAULTS
    [ev] = m.creation_metadata.receipt.decode_logs(m.UpdateParameters)
    assert {f: getattr(ev, f) for f in PARAMETERS} == DEFAULTS
    assert (m.next_job_id(), m.asset_count(), m.assets(0)) == (1, 1, ZERO_ADDRESS)
    assert (m.next_batch_id(), m.last_final_at()) == (1, 0)
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
        ({"min_bond": 0}, "market: bad min bond"),
        ({"min_bond": 10**24 + 1}, "market: bad min bond"),
        ({"unbonding_delay": 59}, "market: bad unbonding delay"),
        ({"unbonding_delay": YEAR + 1}, "market: bad unbonding delay"),
        ({"reveal_window": 59}, "market: bad reveal window"),
        ({"reveal_window": YEAR + 1}, "market: bad reveal window"),
        ({"refund_grace": 0}, "market: bad refund grace"),
        ({"refund_grace": YEAR + 1}, "market: bad refund grace"),
        ({"max_horizon": 59}, "market: bad max horizon"),
        ({"max_horizon": YEAR + 1}, "market: bad max horizon"),
        ({"challenge_window": 59}, "market: bad challenge window"),
        ({"challenge_window": MAX_CHALLENGE_WINDOW + 1}, "market: bad challenge window"),
        ({"reveal_window": REFUND_GRACE + 1}, "market: refund grace below reveal window"),
        (
            {"unbonding_delay": REVEAL_WINDOW + REFUND_GRACE + CHALLENGE_WINDOW - 1},
            "market: unbonding delay too short",
        ),
    ],
)
def test_constructor__bad_parameter__reverts(deploy_reverts, kw, reason):
    deploy_reverts(reason, **kw)


def test_constructor__extreme_valid_bounds__accepted(project, deployer, deploy_market):
    m = deploy_market(
        epoch_length=60,
        min_bond=10**24,
        unbonding_delay=YEAR,
        reveal_window=60,
        refund_grace=YEAR - 120,
        max_horizon=60,
        challenge_window=60,
    )
    assert (m.EPOCH_LENGTH(), m.min_bond(), m.refund_grace()) == (60, 10**24, YEAR - 120)
    m = deploy_market(
        min_bond=1,
        unbonding_delay=REVEAL_WINDOW + REFUND_GRACE + MAX_CHALLENGE_WINDOW,
        challenge_window=MAX_CHALLENGE_WINDOW,
        max_horizon=YEAR,
    )
    assert (m.min_bond(), m.challenge_window(), m.max_horizon()) == (
        1,
        MAX_CHALLENGE_WINDOW,
        YEAR,
    )
    top = 2**128 - 1
    capped = project.WorkToken.deploy("W", "W", schedule_total(top, 2**32), sender=deployer)
    m = deploy_market(token=capped, initial_emission=top, halving_epochs=2**32, epoch_length=YEAR)
    assert m.epoch_emission(0) == top and m.HALVING_EPOCHS() == 2**32  # accepted: cap == schedule


@pytest.mark.parametrize(
    "params",
    [
        (INITIAL_EMISSION, HALVING_EPOCHS, 1),  # cap one too high
        (INITIAL_EMISSION, HALVING_EPOCHS, -1),  # cap one too low
        (INITIAL_EMISSION, HALVING_EPOCHS + 1, 0),  # a cap for another schedule
    ],
)
def test_constructor__token_cap_not_schedule__reverts(project, deployer, deploy_reverts, params):
    initial, halving, delta = params
    cap = schedule_total(initial, halving) + delta
    t = project.WorkToken.deploy("W", "W", cap, sender=deployer)
    deploy_reverts("market: token cap is not the schedule", token=t)


@pytest.mark.parametrize("made_for", ["elsewhere", "next_nonce", "deployer"])
def test_constructor__oracle_set_for_another_market__reverts(
    deployer, make_set, deploy_reverts, made_for
):
    market_at = {
        "elsewhere": address("another market"),
        # Made for the market's address, but a transaction slipped in between: the market
        # lands one nonce later.
        "next_nonce": create_address(deployer.address, deployer.nonce + 2),
        "deployer": deployer.address,
    }[made_for]
    s = make_set(market_at)
    if made_for == "next_nonce":
        deployer.transfer(deployer, 0)
    deploy_reverts("market: oracle set is for another market", oracle_set=s)


@pytest.mark.parametrize("made_for", ["elsewhere", "next_nonce", "deployer"])
def test_constructor__disputes_for_another_market__reverts(
    deployer, make_set, make_disputes, deploy_reverts, made_for
):
    # The set is made for the right address; the dispute contract is not.
    s = make_set(create_address(deployer.address, deployer.nonce + 2 + (made_for == "next_nonce")))
    market_at = {
        "elsewhere": address("another market"),
        # made for where the market would land next, but a transaction slips in between
        "next_nonce": create_address(deployer.address, deployer.nonce + 1),
        "deployer": deployer.address,
    }[made_for]
    d = make_disputes(market_at)
    if made_for == "next_nonce":
        deployer.transfer(deployer, 0)
    deploy_reverts("market: disputes are for another market", oracle_set=s, disputes=d)


def test_constructor__oracle_set_for_this_market__accepted(make_set, make_disputes, deploy_market):
    # The same path without the mistake: set and disputes are made for the market's address.
    s = make_set()
    d = make_disputes()
    assert deploy_market(dry_run=True, oracle_set=s, disputes=d)  # the dry run returns code
    m = deploy_market(oracle_set=s, disputes=d)
    assert (m.ORACLES(), s.MARKET()) == (s.address, m.address)
    assert (m.DISPUTES(), d.MARKET()) == (d.address, m.address)


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
    finalize,
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

    # Exits, settlement and finalization are never blocked.
    finalize(settle([attest(settled, w)]))
    market.cancel(to_cancel, sender=requester)
    chain.pending_timestamp = max(
        chain.pending_timestamp, deadline + 1, market.GENESIS() + (epoch + 1) * 3_600
    )
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
    market, deployer, usd, requester, worker, create_job, bond, submit, attest, settle_final
):
    job_id = create_job(asset=usd, amount=ETHER)
    bond(worker)
    submit(worker, job_id)
    market.set_asset_allowed(usd, False, sender=deployer)
    assert market.job(job_id).asset == usd.address
    settle_final([attest(job_id, worker)])
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

#: A valid parameter set with every field unlike the suite's (DEFAULTS).
NEW = {
    "min_bond": 2 * MIN_BOND,
    "unbonding_delay": 2 * 86_400,
    "reveal_window": 900,
    "refund_grace": 7_200,
    "max_horizon": 10 * 86_400,
    "challenge_window": 3_600,
}
NEW_WINDOWS = NEW["reveal_window"] + NEW["refund_grace"] + NEW["challenge_window"]

#: Each field out of its own bounds (applied to NEW, so a bad call would change every field).
BAD_BOUNDS = [
    ("min_bond", 0, "market: bad min bond"),
    ("min_bond", 10**24 + 1, "market: bad min bond"),
    *[
        (field, value, f"market: bad {field.replace('_', ' ')}")
        for field in ("unbonding_delay", "reveal_window", "refund_grace", "max_horizon")
        for value in (0, 59, YEAR + 1)
    ],
    ("challenge_window", 0, "market: bad challenge window"),
    ("challenge_window", 59, "market: bad challenge window"),
    ("challenge_window", MAX_CHALLENGE_WINDOW + 1, "market: bad challenge window"),
]

#: The relations between the windows, each broken by one (applied to NEW).
BAD_RELATIONS = [
    (
        {"reveal_window": NEW["refund_grace"] + 1},
        "market: refund grace below reveal window",
    ),
    (
        {"refund_grace": NEW["reveal_window"] - 1},
        "market: refund grace below reveal window",
    ),
    ({"unbonding_delay": NEW_WINDOWS - 1}, "market: unbonding delay too short"),
    (
        {"challenge_window": NEW["unbonding_delay"] - NEW_WINDOWS + NEW["challenge_window"] + 1},
        "market: unbonding delay too short",
    ),
    (
        {"refund_grace": NEW["unbonding_delay"] - NEW_WINDOWS + NEW["refund_grace"] + 1},
        "market: unbonding delay too short",
    ),
    (
        # reveal_window == refund_grace (allowed) but the three windows overrun the delay
        {"reveal_window": 85_000, "refund_grace": 85_000},
        "market: unbonding delay too short",
    ),
]

#: Valid extremes: each bound and each relation met exactly (applied to NEW).
GOOD_EXTREMES = [
    {"min_bond": 1},
    {"min_bond": 10**24},
    {"max_horizon": 60},
    {"max_horizon": YEAR},
    {"reveal_window": 60},
    {"reveal_window": 60, "refund_grace": 60, "challenge_window": 60, "unbonding_delay": 180},
    {"unbonding_delay": YEAR},
    {"unbonding_delay": NEW_WINDOWS},
    {"reveal_window": NEW["refund_grace"]},
    {"refund_grace": NEW["reveal_window"]},
    {"challenge_window": 60},
    {"challenge_window": MAX_CHALLENGE_WINDOW, "unbonding_delay": YEAR},
    {
        "refund_grace": YEAR - 120,
        "reveal_window": 60,
        "challenge_window": 60,
        "unbonding_delay": YEAR,
    },
]


def test_set_parameters__sets_every_field_and_logs(market, deployer):
    assert current_parameters(market) == DEFAULTS
    tx = market.set_parameters(as_struct(NEW), sender=deployer)
    [ev] = tx.decode_logs(market.UpdateParameters)
    assert {f: getattr(ev, f) for f in PARAMETERS} == NEW
    assert current_parameters(market) == NEW


@pytest.mark.parametrize("overrides", GOOD_EXTREMES, ids=lambda o: ",".join(map(str, o.items())))
def test_set_parameters__extreme_valid_values__accepted(market, deployer, overrides):
    values = {**NEW, **overrides}
    tx = market.set_parameters(as_struct(values), sender=deployer)
    [ev] = tx.decode_logs(market.UpdateParameters)
    assert {f: getattr(ev, f) for f in PARAMETERS} == values
    assert current_parameters(market) == values


@pytest.mark.parametrize(
    ("field", "value", "reason"), BAD_BOUNDS, ids=[f"{f}={v}" for f, v, _ in BAD_BOUNDS]
)
def test_set_parameters__out_of_bounds__reverts_and_changes_nothing(
    market, deployer, field, value, reason
):
    with ape.reverts(reason):
        market.set_parameters(as_struct({**NEW, field: value}), sender=deployer)
    assert current_parameters(market) == DEFAULTS


@pytest.mark.parametrize(("overrides", "reason"), BAD_RELATIONS)
def test_set_parameters__windows_inconsistent__reverts_and_changes_nothing(
    market, deployer, overrides, reason
):
    with ape.reverts(reason):
        market.set_parameters(as_struct({**NEW, **overrides}), sender=deployer)
    assert current_parameters(market) == DEFAULTS


def test_set_parameters__non_owner__reverts(market, deployer, stranger, worker):
    market.transfer_ownership(stranger, sender=deployer)  # pending, not yet the owner
    for who in (stranger, worker):
        with ape.reverts(NOT_OWNER):
            market.set_parameters(as_struct(NEW), sender=who)
    assert current_parameters(market) == DEFAULTS
    market.accept_ownership(sender=stranger)
    with ape.reverts(NOT_OWNER):
        market.set_parameters(as_struct(NEW), sender=deployer)
    assert current_parameters(market) == DEFAULTS
    market.set_parameters(as_struct(NEW), sender=stranger)
    assert current_parameters(market) == NEW


def test_set_parameters__unbonding_delay_applies_to_future_requests_only(
    chain, market, deployer, workers, bond
):
    early, late = workers[:2]
    bond(early)
    bond(late)
    first = market.request_unbond(sender=early).decode_logs(market.UnbondRequested)[0]
    assert first.available_at == chain.blocks.head.timestamp + UNBONDING_DELAY
    shorter = REVEAL_WINDOW + REFUND_GRACE + CHALLENGE_WINDOW
    market.set_parameters(as_struct({**DEFAULTS, "unbonding_delay": shorter}), sender=deployer)
    second = market.request_unbond(sender=late).decode_logs(market.UnbondRequested)[0]
    assert market.unbonding_at(early) == first.available_at
    assert second.available_at == chain.blocks.head.timestamp + shorter
    chain.pending_timestamp = second.available_at
    with ape.reverts("market: bond still locked"):
        market.withdraw_bond(sender=early)
    market.withdraw_bond(sender=late)


def test_set_parameters__challenge_window_applies_to_future_batches_only(
    chain, market, deployer, workers, create_job, bond, submit, attest, settle, finalize
):
    txs = []
    for w in workers[:2]:
        job_id = create_job()
        bond(w)
        submit(w, job_id)
        txs.append(job_id)
    first = settle([attest(txs[0], workers[0])])
    [ev] = first.decode_logs(market.BatchSettled)
    assert ev.final_at == chain.blocks[first.block_number].timestamp + CHALLENGE_WINDOW
    market.set_parameters(as_struct({**DEFAULTS, "challenge_window": 60}), sender=deployer)
    second = settle([attest(txs[1], workers[1])])
    [ev2] = second.decode_logs(market.BatchSettled)
    assert ev2.final_at == chain.blocks[second.block_number].timestamp + 60
    assert ev2.final_at < ev.final_at
    chain.pending_timestamp = ev2.final_at
    finalize(second, wait=False)
    with ape.reverts("market: challenge window running"):
        finalize(first, wait=False)
    assert market.credited(workers[0], ZERO_ADDRESS) == 0
    assert market.credited(workers[1], ZERO_ADDRESS) > 0


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
