"""WorkToken: capped, minter-only supply, and the wiring that leaves the market sole minter."""

import ape
import pytest

from oracle.protocol.emission import schedule_total
from tests.utils.constants import HALVING_EPOCHS, INITIAL_EMISSION, ZERO_ADDRESS

NOT_MINTER = "erc20: access is denied"


@pytest.fixture
def small_token(project, deployer):
    """A token still owned by the deployer (its minter), with a cap of 100 units."""
    return project.WorkToken.deploy("Small", "SML", 100, sender=deployer)


def test_token__after_wiring__market_is_sole_minter_and_no_owner(token, market, deployer):
    assert token.owner() == ZERO_ADDRESS
    assert token.is_minter(market)
    assert not token.is_minter(deployer)
    assert token.cap() == schedule_total(INITIAL_EMISSION, HALVING_EPOCHS)
    assert token.totalSupply() == 0
    assert (token.name(), token.symbol(), token.decimals()) == ("pouw Work", "WORK", 18)


@pytest.mark.parametrize("who", ["deployer", "stranger"])
def test_mint__not_minter__reverts(token, deployer, stranger, who):
    with ape.reverts(NOT_MINTER):
        token.mint(stranger, 1, sender=deployer if who == "deployer" else stranger)
    assert token.totalSupply() == 0


def test_set_minter__after_renounce__reverts(token, deployer, stranger):
    for who in (deployer, stranger):
        with ape.reverts("ownable: caller is not the owner"):
            token.set_minter(who, True, sender=who)
    assert not token.is_minter(stranger)


def test_transfer_ownership__after_renounce__reverts(token, deployer):
    with ape.reverts("ownable: caller is not the owner"):
        token.transfer_ownership(deployer, sender=deployer)


def test_constructor__logs_cap(project, deployer):
    t = project.WorkToken.deploy("Small", "SML", 7, sender=deployer)
    assert t.cap() == 7
    assert t.owner() == deployer.address
    assert t.is_minter(deployer)


def test_constructor__zero_cap__reverts(project, deployer):
    with ape.reverts("token: zero cap"):
        project.WorkToken.deploy("Zero", "Z", 0, sender=deployer)


def test_mint__minter__up_to_cap(small_token, deployer, stranger):
    tx = small_token.mint(stranger, 60, sender=deployer)
    [ev] = tx.decode_logs(small_token.Transfer)
    assert (ev.sender, ev.receiver, ev.value) == (ZERO_ADDRESS, stranger.address, 60)
    small_token.mint(stranger, 40, sender=deployer)
    assert small_token.totalSupply() == 100 == small_token.cap()
    assert small_token.balanceOf(stranger) == 100


@pytest.mark.parametrize(("first", "second"), [(100, 1), (0, 101), (99, 2)])
def test_mint__beyond_cap__reverts(small_token, deployer, stranger, first, second):
    if first:
        small_token.mint(stranger, first, sender=deployer)
    with ape.reverts("token: cap exceeded"):
        small_token.mint(stranger, second, sender=deployer)
    assert small_token.totalSupply() == first


def test_mint__overflowing_amount__reverts(small_token, deployer, stranger):
    small_token.mint(stranger, 1, sender=deployer)
    # totalSupply + amount overflows before the cap comparison, so it cannot wrap around the
    # cap: Vyper's checked arithmetic reverts with no reason, which Ape reports as below.
    with ape.reverts("Transaction failed."):
        small_token.mint(stranger, 2**256 - 1, sender=deployer)
    assert small_token.totalSupply() == 1


def test_mint__to_zero_address__reverts(small_token, deployer):
    with ape.reverts("erc20: mint to the zero address"):
        small_token.mint(ZERO_ADDRESS, 1, sender=deployer)


def test_mint__cap_bounds_supply_not_history(small_token, deployer, stranger):
    # The cap bounds the live supply: burnt tokens can be minted again.
    small_token.mint(stranger, 100, sender=deployer)
    small_token.burn(30, sender=stranger)
    small_token.mint(stranger, 30, sender=deployer)
    assert small_token.totalSupply() == 100
    with ape.reverts("token: cap exceeded"):
        small_token.mint(stranger, 1, sender=deployer)


def test_token__erc20_basics(small_token, deployer, requester, stranger):
    small_token.mint(requester, 50, sender=deployer)
    small_token.transfer(stranger, 20, sender=requester)
    small_token.approve(stranger, 10, sender=requester)
    small_token.transferFrom(requester, stranger, 10, sender=stranger)
    assert (small_token.balanceOf(requester), small_token.balanceOf(stranger)) == (20, 30)
    with ape.reverts("erc20: insufficient allowance"):
        small_token.transferFrom(requester, stranger, 1, sender=stranger)
