"""OracleSet: membership, threshold, oracle bonds, the quorum check and slashing.

The set lives apart from the JobMarket (contracts/OracleSet.vy); the market asks it for a
quorum in `settle` and forwards `oracles()` and `threshold()`. Bond tests run on the EVM and
check every balance to the wei.
"""

import ape
import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from oracle.chain.deployments import create_address
from tests.utils.constants import ETHER, N_ORACLES, ORACLE_BOND, ZERO_ADDRESS

NOT_OWNER = "ownable: caller is not the owner"
NOT_NEW_OWNER = "ownable_2step: caller is not the new owner"
NOT_BONDED = "oracles: signer not bonded"
MAX_ORACLES = 32
MAX_ORACLE_BOND = 10**24
#: A failed transaction may still be mined and charged gas; no test moves less than this.
GAS_SLACK = 10**16
#: The market a standalone set is made for in constructor tests.
MARKET = to_checksum_address(keccak(text="address market")[-20:])


def address(n):
    return to_checksum_address(keccak(text=f"address {n}")[-20:])


def by_value(addresses):
    return sorted(addresses, key=lambda a: int(a, 16))


@pytest.fixture
def balance(chain):
    return lambda who: chain.provider.get_balance(str(getattr(who, "address", who)))


@pytest.fixture
def operator(accounts, deployer, oracle_set):
    """A fresh, funded account that the owner adds to the set, not yet bonded: an oracle
    that can send its own transactions (`request_unbond`, `withdraw_bond`)."""
    acct = accounts.generate_test_account()
    deployer.transfer(acct, 100 * ETHER)
    oracle_set.add_oracle(acct, sender=deployer)
    return acct


@pytest.fixture
def operator_key(operator):
    """The operator's signing key, for settlement signatures."""
    return Account.from_key(operator.private_key)


@pytest.fixture
def item(workers, create_job, bond, submit, attest):
    """item(n) -> a one-item batch: a fresh job with a live submission by workers[n]."""

    def item_(n: int = 0):
        w = workers[n]
        job_id = create_job()
        bond(w)
        submit(w, job_id)
        return [attest(job_id, w)]

    return item_


@pytest.fixture
def set_state(chain, market, oracle_set):
    """Snapshot of the set and of the market's settlement counters, for reverted calls."""

    def snapshot(*who):
        people = [str(getattr(w, "address", w)) for w in who]
        return {
            "set_eth": chain.provider.get_balance(oracle_set.address),
            "market_eth": chain.provider.get_balance(market.address),
            "next_batch_id": market.next_batch_id(),
            "last_final_at": market.last_final_at(),
            "oracles": list(oracle_set.oracles()),
            "threshold": oracle_set.threshold(),
            "oracle_bond": oracle_set.oracle_bond(),
            "bonds": [oracle_set.bonds(p) for p in people],
            "unbonding_at": [oracle_set.unbonding_at(p) for p in people],
        }

    return snapshot


@pytest.fixture
def deploy_set(chain, project, deployer):
    """Deploy a standalone OracleSet (for constructor tests)."""

    def deploy(market=MARKET, oracles=(), threshold=1, oracle_bond=ORACLE_BOND):
        del chain.contracts[deployer.get_deployment_address()]
        return project.OracleSet.deploy(
            market, list(oracles), threshold, oracle_bond, sender=deployer
        )

    return deploy


# ---------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------


def test_constructor__sorts_oracles_sets_threshold_bond_and_market(deploy_set, deployer, oracles):
    shuffled = [oracles[i].address for i in (3, 0, 4, 1, 2)]
    s = deploy_set(market=address(7), oracles=shuffled, threshold=2, oracle_bond=3)
    assert s.oracles() == [o.address for o in oracles]
    assert (s.threshold(), s.oracle_bond(), s.MARKET()) == (2, 3, address(7))
    assert (s.owner(), s.pending_owner()) == (deployer.address, ZERO_ADDRESS)
    tx = s.creation_metadata.receipt
    assert [ev.oracle for ev in tx.decode_logs(s.OracleAdded)] == shuffled
    assert [ev.threshold for ev in tx.decode_logs(s.UpdateThreshold)] == [2]
    assert [ev.oracle_bond for ev in tx.decode_logs(s.UpdateOracleBond)] == [3]
    assert all(s.bonds(o) == 0 for o in shuffled)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"market": ZERO_ADDRESS}, "oracles: zero market"),
        ({"threshold": 0}, "oracles: bad threshold"),
        ({"threshold": N_ORACLES + 1}, "oracles: bad threshold"),
        ({"oracles": [], "threshold": 1}, "oracles: bad threshold"),
        ({"oracles": [ZERO_ADDRESS]}, "oracles: zero oracle"),
        ({"oracles": [address(1), address(1)]}, "oracles: already an oracle"),
        ({"oracle_bond": 0}, "oracles: bad oracle bond"),
        ({"oracle_bond": MAX_ORACLE_BOND + 1}, "oracles: bad oracle bond"),
    ],
)
def test_constructor__bad_argument__reverts(deploy_set, oracles, kw, reason):
    with ape.reverts(reason):
        deploy_set(**{"oracles": [o.address for o in oracles], **kw})


def test_constructor__extreme_valid_bounds__accepted(deploy_set):
    full = [address(i) for i in range(MAX_ORACLES)]
    s = deploy_set(oracles=full, threshold=MAX_ORACLES, oracle_bond=MAX_ORACLE_BOND)
    assert s.oracles() == by_value(full)
    assert (s.threshold(), s.oracle_bond()) == (MAX_ORACLES, MAX_ORACLE_BOND)
    s = deploy_set(oracles=full[:1], threshold=1, oracle_bond=1)
    assert (s.threshold(), s.oracle_bond()) == (1, 1)


def test_deployment__market_set_and_bonds_wired(chain, market, oracle_set, oracles):
    assert market.ORACLES() == oracle_set.address
    assert oracle_set.MARKET() == market.address
    assert market.ORACLES() == oracle_set.address
    assert oracle_set.oracles() == [o.address for o in oracles]
    assert oracle_set.threshold() == 1
    assert oracle_set.oracle_bond() == ORACLE_BOND
    # The deployer bonded every initial oracle with exactly the minimum.
    assert [oracle_set.bonds(o.address) for o in oracles] == [ORACLE_BOND] * N_ORACLES
    assert [oracle_set.unbonding_at(o.address) for o in oracles] == [0] * N_ORACLES
    assert chain.provider.get_balance(oracle_set.address) == N_ORACLES * ORACLE_BOND


def test_constructor__market_address_is_predicted_create_address(deployer, market, oracle_set):
    # The set was made for the address the market's deployment transaction created.
    nonce = market.creation_metadata.receipt.nonce
    assert create_address(deployer.address, nonce) == market.address == oracle_set.MARKET()


# ---------------------------------------------------------------------------
# add_oracle / remove_oracle
# ---------------------------------------------------------------------------


def test_add_oracle__inserts_sorted_and_logs(market, oracle_set, deployer, oracles, outsider_key):
    tx = oracle_set.add_oracle(outsider_key.address, sender=deployer)
    assert [ev.oracle for ev in tx.decode_logs(oracle_set.OracleAdded)] == [outsider_key.address]
    expected = by_value([o.address for o in oracles] + [outsider_key.address])
    assert oracle_set.oracles() == expected
    low = "0x0000000000000000000000000000000000000001"
    high = "0xFFfFfFffFFfffFFfFFfFFFFFffFFFffffFfFFFfF"
    oracle_set.add_oracle(high, sender=deployer)
    oracle_set.add_oracle(low, sender=deployer)
    assert oracle_set.oracles() == [low, *expected, high]


@pytest.mark.parametrize(
    ("who", "reason"),
    [("zero", "oracles: zero oracle"), ("member", "oracles: already an oracle")],
)
def test_add_oracle__bad_address__reverts(oracle_set, deployer, oracles, who, reason):
    with ape.reverts(reason):
        oracle_set.add_oracle(
            ZERO_ADDRESS if who == "zero" else oracles[2].address, sender=deployer
        )
    assert oracle_set.oracles() == [o.address for o in oracles]


def test_add_oracle__full_set__reverts(oracle_set, deployer):
    for i in range(MAX_ORACLES - len(oracle_set.oracles())):
        oracle_set.add_oracle(address(i), sender=deployer)
    assert len(oracle_set.oracles()) == MAX_ORACLES
    with ape.reverts("oracles: too many oracles"):
        oracle_set.add_oracle(address(99), sender=deployer)
    assert len(oracle_set.oracles()) == MAX_ORACLES


def test_add_oracle__non_owner__reverts(oracle_set, stranger, outsider_key):
    before = list(oracle_set.oracles())
    with ape.reverts(NOT_OWNER):
        oracle_set.add_oracle(outsider_key.address, sender=stranger)
    assert oracle_set.oracles() == before


def test_add_oracle__new_bonded_oracle_signs_in_order(
    market, oracle_set, deployer, oracles, operator, operator_key, item, settle
):
    # With a threshold of 2, the new oracle's signature counts next to an initial one,
    # wherever its address falls in the ascending order.
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    oracle_set.set_threshold(2, sender=deployer)
    for other in (oracles[0], oracles[-1]):
        tx = settle(item(), keys=[operator_key, other])
        [ev] = tx.decode_logs(market.BatchSettled)
        assert ev.signers == by_value([operator.address, other.address])


def test_remove_oracle__removes_and_logs(market, oracle_set, deployer, oracles):
    tx = oracle_set.remove_oracle(oracles[2].address, sender=deployer)
    assert [ev.oracle for ev in tx.decode_logs(oracle_set.OracleRemoved)] == [oracles[2].address]
    expected = [o.address for i, o in enumerate(oracles) if i != 2]
    assert oracle_set.oracles() == expected


def test_remove_oracle__signatures_stop_counting_bond_stays(
    chain, market, oracle_set, deployer, oracles, item, settle, set_state
):
    settle(item(0), keys=[oracles[2]])  # counts while a member
    oracle_set.remove_oracle(oracles[2].address, sender=deployer)
    batch = item(1)
    state = set_state(oracles[2].address)
    with ape.reverts("oracles: signer not oracle"):
        settle(batch, keys=[oracles[2]])
    assert set_state(oracles[2].address) == state
    # Its bond is untouched (still answerable for what it signed); others still settle.
    assert oracle_set.bonds(oracles[2].address) == ORACLE_BOND
    settle(batch, keys=[oracles[3]])


def test_remove_oracle__not_member__reverts(oracle_set, deployer, outsider_key, oracles):
    with ape.reverts("oracles: not an oracle"):
        oracle_set.remove_oracle(outsider_key.address, sender=deployer)
    assert oracle_set.oracles() == [o.address for o in oracles]


def test_remove_oracle__below_threshold__reverts(oracle_set, deployer, oracles):
    oracle_set.set_threshold(len(oracles), sender=deployer)
    with ape.reverts("oracles: set would fall below threshold"):
        oracle_set.remove_oracle(oracles[0].address, sender=deployer)
    assert oracle_set.oracles() == [o.address for o in oracles]
    # One above the threshold: it may shrink to exactly the threshold.
    oracle_set.set_threshold(len(oracles) - 1, sender=deployer)
    oracle_set.remove_oracle(oracles[0].address, sender=deployer)
    assert len(oracle_set.oracles()) == oracle_set.threshold()


def test_remove_oracle__non_owner__reverts(oracle_set, stranger, oracles):
    with ape.reverts(NOT_OWNER):
        oracle_set.remove_oracle(oracles[0].address, sender=stranger)
    assert oracle_set.oracles() == [o.address for o in oracles]


# ---------------------------------------------------------------------------
# set_threshold
# ---------------------------------------------------------------------------


def test_set_threshold__bounds_and_event(market, oracle_set, deployer, oracles):
    for t in (len(oracles), 1):
        tx = oracle_set.set_threshold(t, sender=deployer)
        assert [ev.threshold for ev in tx.decode_logs(oracle_set.UpdateThreshold)] == [t]
        assert oracle_set.threshold() == t
    for t in (0, len(oracles) + 1):
        with ape.reverts("oracles: bad threshold"):
            oracle_set.set_threshold(t, sender=deployer)
    assert oracle_set.threshold() == 1


def test_set_threshold__applies_to_settle(market, oracle_set, deployer, oracles, item, settle):
    oracle_set.set_threshold(3, sender=deployer)
    batch = item()
    with ape.reverts("oracles: below threshold"):
        settle(batch, keys=oracles[:2])
    assert market.next_batch_id() == 1
    tx = settle(batch, keys=oracles[:3])
    assert tx.decode_logs(market.BatchSettled)[0].signers == [o.address for o in oracles[:3]]


def test_set_threshold__non_owner__reverts(oracle_set, stranger):
    with ape.reverts(NOT_OWNER):
        oracle_set.set_threshold(2, sender=stranger)
    assert oracle_set.threshold() == 1


# ---------------------------------------------------------------------------
# set_oracle_bond
# ---------------------------------------------------------------------------


def test_set_oracle_bond__bounds_event_owner(oracle_set, deployer, stranger):
    for value in (0, MAX_ORACLE_BOND + 1):
        with ape.reverts("oracles: bad oracle bond"):
            oracle_set.set_oracle_bond(value, sender=deployer)
    with ape.reverts(NOT_OWNER):
        oracle_set.set_oracle_bond(1, sender=stranger)
    assert oracle_set.oracle_bond() == ORACLE_BOND
    for value in (1, MAX_ORACLE_BOND):
        tx = oracle_set.set_oracle_bond(value, sender=deployer)
        assert [ev.oracle_bond for ev in tx.decode_logs(oracle_set.UpdateOracleBond)] == [value]
        assert oracle_set.oracle_bond() == value


def test_set_oracle_bond__raised__bonds_below_it_stop_counting(
    oracle_set, deployer, stranger, oracles, item, settle
):
    oracle_set.set_oracle_bond(ORACLE_BOND + 1, sender=deployer)
    batch = item()
    with ape.reverts(NOT_BONDED):
        settle(batch, keys=[oracles[0]])
    oracle_set.bond(oracles[0].address, sender=stranger, value=1)  # top up by one wei
    settle(batch, keys=[oracles[0]])


# ---------------------------------------------------------------------------
# bond
# ---------------------------------------------------------------------------


def test_bond__third_party_funds_an_oracle(oracle_set, stranger, operator, balance):
    set_before, stranger_before, operator_before = (
        balance(oracle_set),
        balance(stranger),
        balance(operator),
    )
    tx = oracle_set.bond(operator, sender=stranger, value=ORACLE_BOND)
    [ev] = tx.decode_logs(oracle_set.OracleBonded)
    assert (ev.oracle, ev.sender, ev.amount, ev.bond) == (
        operator.address,
        stranger.address,
        ORACLE_BOND,
        ORACLE_BOND,
    )
    assert oracle_set.bonds(operator) == ORACLE_BOND
    assert oracle_set.bonds(stranger) == 0  # the bond is the oracle's, not the payer's
    assert balance(oracle_set) == set_before + ORACLE_BOND
    assert balance(stranger) == stranger_before - ORACLE_BOND - tx.total_fees_paid
    assert balance(operator) == operator_before
    # A second payment adds up.
    tx = oracle_set.bond(operator, sender=stranger, value=3)
    [ev] = tx.decode_logs(oracle_set.OracleBonded)
    assert (ev.amount, ev.bond) == (3, ORACLE_BOND + 3)
    assert oracle_set.bonds(operator) == ORACLE_BOND + 3
    assert balance(oracle_set) == set_before + ORACLE_BOND + 3


def test_bond__any_address_even_not_a_member(oracle_set, stranger, outsider_key, balance):
    before = balance(oracle_set)
    oracle_set.bond(outsider_key.address, sender=stranger, value=7)
    assert oracle_set.bonds(outsider_key.address) == 7
    assert balance(oracle_set) == before + 7
    assert outsider_key.address not in oracle_set.oracles()


@pytest.mark.parametrize(
    ("target", "value", "reason"),
    [("operator", 0, "oracles: zero bond"), ("zero", ORACLE_BOND, "oracles: zero oracle")],
)
def test_bond__zero_value_or_zero_address__reverts(
    oracle_set, stranger, operator, balance, set_state, target, value, reason
):
    who = operator.address if target == "operator" else ZERO_ADDRESS
    state = set_state(operator, ZERO_ADDRESS)
    stranger_before = balance(stranger)
    with ape.reverts(reason):
        oracle_set.bond(who, sender=stranger, value=value)
    assert set_state(operator, ZERO_ADDRESS) == state
    assert 0 <= stranger_before - balance(stranger) < GAS_SLACK


def test_quorum__unbonded_member__does_not_count_until_bonded(
    market, oracle_set, deployer, stranger, outsider_key, item, settle, set_state
):
    oracle_set.add_oracle(outsider_key.address, sender=deployer)
    assert oracle_set.bonds(outsider_key.address) == 0
    batch = item()
    state = set_state(outsider_key.address)
    with ape.reverts(NOT_BONDED):
        settle(batch, keys=[outsider_key])
    assert set_state(outsider_key.address) == state
    # One wei short of the minimum still does not count.
    oracle_set.bond(outsider_key.address, sender=stranger, value=ORACLE_BOND - 1)
    with ape.reverts(NOT_BONDED):
        settle(batch, keys=[outsider_key])
    assert market.next_batch_id() == 1
    # Exactly the minimum counts.
    oracle_set.bond(outsider_key.address, sender=stranger, value=1)
    assert oracle_set.bonds(outsider_key.address) == oracle_set.oracle_bond()
    tx = settle(batch, keys=[outsider_key])
    [ev] = tx.decode_logs(market.BatchSettled)
    assert (ev.batch_id, ev.signers) == (1, [outsider_key.address])


def test_quorum__bond_below_minimum__does_not_count(
    market, oracle_set, deployer, operator, operator_key, item, settle
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND // 2)
    with ape.reverts(NOT_BONDED):
        settle(item(), keys=[operator_key])
    assert market.next_batch_id() == 1


def test_quorum__unbonded_signer_among_bonded__reverts(
    market, oracle_set, deployer, oracles, outsider_key, item, settle
):
    # Enough bonded signatures do not carry an unbonded one along.
    oracle_set.add_oracle(outsider_key.address, sender=deployer)
    with ape.reverts(NOT_BONDED):
        settle(item(), keys=[oracles[0], oracles[1], outsider_key])
    assert market.next_batch_id() == 1


def test_quorum__non_member_with_bond__does_not_count(
    market, oracle_set, stranger, outsider_key, item, settle
):
    oracle_set.bond(outsider_key.address, sender=stranger, value=ORACLE_BOND)
    with ape.reverts("oracles: signer not oracle"):
        settle(item(), keys=[outsider_key])
    assert market.next_batch_id() == 1


# ---------------------------------------------------------------------------
# request_unbond / withdraw_bond
# ---------------------------------------------------------------------------


def test_request_unbond__signatures_stop_counting(
    chain, market, oracle_set, deployer, operator, operator_key, item, settle, set_state
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    settle(item(0), keys=[operator_key])  # counts while bonded
    tx = oracle_set.request_unbond(sender=operator)
    [ev] = tx.decode_logs(oracle_set.OracleUnbondRequested)
    assert ev.oracle == operator.address
    assert oracle_set.unbonding_at(operator) == ev.available_at
    assert oracle_set.bonds(operator) == ORACLE_BOND  # still held
    batch = item(1)
    state = set_state(operator)
    with ape.reverts(NOT_BONDED):
        settle(batch, keys=[operator_key])
    assert set_state(operator) == state
    # Topping the bond up does not re-activate an unbonding oracle.
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    assert oracle_set.unbonding_at(operator) == ev.available_at
    with ape.reverts(NOT_BONDED):
        settle(batch, keys=[operator_key])
    # It stays a member: only its bond stopped it.
    assert operator.address in oracle_set.oracles()


def test_request_unbond__no_batch_pending__available_now(
    chain, market, oracle_set, deployer, operator, balance
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    assert market.last_final_at() == 0
    tx = oracle_set.request_unbond(sender=operator)
    now = chain.blocks[tx.block_number].timestamp
    [ev] = tx.decode_logs(oracle_set.OracleUnbondRequested)
    assert ev.available_at == oracle_set.unbonding_at(operator) == now
    set_before, operator_before = balance(oracle_set), balance(operator)
    tx = oracle_set.withdraw_bond(sender=operator)
    assert balance(oracle_set) == set_before - ORACLE_BOND
    assert balance(operator) == operator_before + ORACLE_BOND - tx.total_fees_paid


def test_request_unbond__batches_all_final__available_now(
    chain, market, oracle_set, deployer, operator, operator_key, item, settle_final
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    settle_final(item(), keys=[operator_key])
    last = market.last_final_at()
    assert last != 0
    chain.pending_timestamp = last + 100
    tx = oracle_set.request_unbond(sender=operator)
    assert chain.blocks[tx.block_number].timestamp == last + 100
    assert oracle_set.unbonding_at(operator) == last + 100


def test_request_unbond__pending_batch__locked_until_last_final_at(
    chain,
    market,
    oracle_set,
    deployer,
    operator,
    operator_key,
    item,
    settle,
    balance,
    set_state,
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    settled = settle(item(), keys=[operator_key])
    final_at = settled.decode_logs(market.BatchSettled)[0].final_at
    assert market.last_final_at() == final_at
    tx = oracle_set.request_unbond(sender=operator)
    assert chain.blocks[tx.block_number].timestamp < final_at
    [ev] = tx.decode_logs(oracle_set.OracleUnbondRequested)
    assert ev.available_at == oracle_set.unbonding_at(operator) == final_at

    # Locked before available_at (the last second included): nothing moves.
    for when in (None, final_at - 1):
        if when is not None:
            chain.pending_timestamp = when
        state = set_state(operator)
        operator_before = balance(operator)
        with ape.reverts("oracles: bond still locked"):
            oracle_set.withdraw_bond(sender=operator)
        assert set_state(operator) == state
        assert 0 <= operator_before - balance(operator) < GAS_SLACK

    chain.pending_timestamp = final_at
    set_before, operator_before = balance(oracle_set), balance(operator)
    tx = oracle_set.withdraw_bond(sender=operator)
    assert chain.blocks[tx.block_number].timestamp == final_at
    [ev] = tx.decode_logs(oracle_set.OracleBondWithdrawn)
    assert (ev.oracle, ev.amount) == (operator.address, ORACLE_BOND)
    assert balance(oracle_set) == set_before - ORACLE_BOND
    assert balance(operator) == operator_before + ORACLE_BOND - tx.total_fees_paid
    assert (oracle_set.bonds(operator), oracle_set.unbonding_at(operator)) == (0, 0)
    # Withdrawn: nothing left to withdraw or unbond.
    with ape.reverts("oracles: not unbonding"):
        oracle_set.withdraw_bond(sender=operator)
    with ape.reverts("oracles: no bond"):
        oracle_set.request_unbond(sender=operator)


def test_request_unbond__lock_fixed_when_requested(
    chain, market, oracle_set, deployer, oracles, operator, item, settle
):
    # The lock is fixed when asked: a batch settled afterwards (which the unbonding
    # oracle cannot have signed) does not push it back.
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    first = settle(item(0), keys=[oracles[0]]).decode_logs(market.BatchSettled)[0].final_at
    oracle_set.request_unbond(sender=operator)
    chain.pending_timestamp = first - 60
    later = settle(item(1), keys=[oracles[0]]).decode_logs(market.BatchSettled)[0].final_at
    assert later > first == oracle_set.unbonding_at(operator)
    chain.pending_timestamp = first
    oracle_set.withdraw_bond(sender=operator)
    assert oracle_set.bonds(operator) == 0


def test_withdraw_bond__top_up_while_unbonding__pays_whole_bond(
    chain, oracle_set, deployer, stranger, operator, balance
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    available_at = (
        oracle_set.request_unbond(sender=operator)
        .decode_logs(oracle_set.OracleUnbondRequested)[0]
        .available_at
    )
    tx = oracle_set.bond(operator, sender=stranger, value=12345)
    assert tx.decode_logs(oracle_set.OracleBonded)[0].bond == ORACLE_BOND + 12345
    assert oracle_set.unbonding_at(operator) == available_at  # the top-up keeps the lock
    set_before, operator_before = balance(oracle_set), balance(operator)
    tx = oracle_set.withdraw_bond(sender=operator)
    assert tx.decode_logs(oracle_set.OracleBondWithdrawn)[0].amount == ORACLE_BOND + 12345
    assert balance(oracle_set) == set_before - ORACLE_BOND - 12345
    assert balance(operator) == operator_before + ORACLE_BOND + 12345 - tx.total_fees_paid


def test_request_unbond__twice__reverts(oracle_set, deployer, operator, set_state):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    oracle_set.request_unbond(sender=operator)
    state = set_state(operator)
    with ape.reverts("oracles: already unbonding"):
        oracle_set.request_unbond(sender=operator)
    assert set_state(operator) == state


def test_request_unbond__without_bond__reverts(oracle_set, operator, stranger, set_state):
    state = set_state(operator, stranger)
    for who in (operator, stranger):  # a member without bond, and a non-member
        with ape.reverts("oracles: no bond"):
            oracle_set.request_unbond(sender=who)
    assert set_state(operator, stranger) == state


def test_withdraw_bond__not_unbonding__reverts(
    chain, oracle_set, deployer, operator, stranger, set_state
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    chain.pending_timestamp += 365 * 86_400  # time alone unlocks nothing
    state = set_state(operator, stranger)
    for who in (operator, stranger):
        with ape.reverts("oracles: not unbonding"):
            oracle_set.withdraw_bond(sender=who)
    assert set_state(operator, stranger) == state


def test_withdraw_bond__removed_oracle_can_still_leave(
    chain, oracle_set, deployer, operator, balance
):
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    oracle_set.remove_oracle(operator, sender=deployer)
    oracle_set.request_unbond(sender=operator)
    set_before, operator_before = balance(oracle_set), balance(operator)
    tx = oracle_set.withdraw_bond(sender=operator)
    assert balance(oracle_set) == set_before - ORACLE_BOND
    assert balance(operator) == operator_before + ORACLE_BOND - tx.total_fees_paid


# ---------------------------------------------------------------------------
# slash
# ---------------------------------------------------------------------------


def test_slash__not_the_market__reverts_and_moves_nothing(
    oracle_set, deployer, stranger, oracles, operator, set_state
):
    signers = [o.address for o in oracles]
    oracle_set.bond(operator, sender=deployer, value=ORACLE_BOND)
    state = set_state(*signers, operator)
    # Not a stranger, not the set's owner, not an oracle slashing itself.
    for who in (stranger, deployer, operator):
        with ape.reverts("oracles: not the market"):
            oracle_set.slash([*signers, operator.address], sender=who)
    assert set_state(*signers, operator) == state


# ---------------------------------------------------------------------------
# Ownership (two-step, separate from the market's)
# ---------------------------------------------------------------------------


def test_ownership__two_step_transfer(market, oracle_set, deployer, stranger, outsider_key):
    tx = oracle_set.transfer_ownership(stranger, sender=deployer)
    [ev] = tx.decode_logs(oracle_set.OwnershipTransferStarted)
    assert (ev.previous_owner, ev.new_owner) == (deployer.address, stranger.address)
    assert oracle_set.owner() == deployer.address  # nothing changes until accepted
    assert oracle_set.pending_owner() == stranger.address
    oracle_set.set_threshold(2, sender=deployer)

    oracle_set.accept_ownership(sender=stranger)
    assert (oracle_set.owner(), oracle_set.pending_owner()) == (stranger.address, ZERO_ADDRESS)
    with ape.reverts(NOT_OWNER):
        oracle_set.add_oracle(outsider_key.address, sender=deployer)
    oracle_set.add_oracle(outsider_key.address, sender=stranger)
    # The market's ownership is its own: it did not move.
    assert market.owner() == deployer.address


def test_ownership__market_owner_is_not_set_owner(market, oracle_set, deployer, stranger):
    market.transfer_ownership(stranger, sender=deployer)
    market.accept_ownership(sender=stranger)
    with ape.reverts(NOT_OWNER):
        oracle_set.set_threshold(2, sender=stranger)
    oracle_set.set_threshold(2, sender=deployer)
    assert oracle_set.owner() == deployer.address


def test_ownership__accept_by_other_than_pending__reverts(
    oracle_set, deployer, stranger, requester
):
    oracle_set.transfer_ownership(stranger, sender=deployer)
    for who in (requester, deployer):
        with ape.reverts(NOT_NEW_OWNER):
            oracle_set.accept_ownership(sender=who)
    assert (oracle_set.owner(), oracle_set.pending_owner()) == (deployer.address, stranger.address)


def test_ownership__transfer_by_non_owner__reverts(oracle_set, stranger):
    with ape.reverts(NOT_OWNER):
        oracle_set.transfer_ownership(stranger, sender=stranger)
    assert oracle_set.pending_owner() == ZERO_ADDRESS


def test_ownership__renounce__no_admin_left(oracle_set, deployer, stranger, oracles):
    oracle_set.transfer_ownership(stranger, sender=deployer)
    oracle_set.renounce_ownership(sender=deployer)
    assert (oracle_set.owner(), oracle_set.pending_owner()) == (ZERO_ADDRESS, ZERO_ADDRESS)
    with ape.reverts(NOT_OWNER):
        oracle_set.remove_oracle(oracles[0].address, sender=deployer)
    with ape.reverts(NOT_NEW_OWNER):
        oracle_set.accept_ownership(sender=stranger)
