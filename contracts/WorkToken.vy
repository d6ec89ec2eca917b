# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title pouw WorkToken
@custom:contract-name WorkToken
@license GNU Affero General Public License v3.0 only
@notice The reward token of pouw: an ERC-20 (snekmate `erc20`) whose supply
        can only grow through verified useful work. The deployer hands the
        minter role to the JobMarket and renounces ownership, after which the
        market is the only minter and no one can add another. Every mint is
        checked against `cap`, the total of the market's halving emission
        schedule, so the supply can never exceed the schedule even if the
        market had a bug.
@custom:security While the deployer still owns the token it can mint and add
                 minters; `scripts/deploy.py` renounces ownership in the same
                 run that wires the market, and `is_minter`/`owner` are public
                 so anyone can check that it did.
"""


from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed

from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]


# @dev Everything of the ERC-20 except its uncapped `mint`,
# which this contract replaces with a capped one.
exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.burn,
    erc20.burn_from,
    erc20.is_minter,
    erc20.set_minter,
    erc20.nonces,
    erc20.permit,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    erc20.owner,
    erc20.transfer_ownership,
    erc20.renounce_ownership,
)


# @dev The most tokens that can ever exist, in the token's
# smallest unit: the sum of the emission schedule.
cap: public(immutable(uint256))


# @dev Emitted when the cap is fixed at deployment.
event CapSet:
    cap: uint256


@deploy
def __init__(name_: String[25], symbol_: String[5], cap_: uint256):
    """
    @notice Deploys the token with 18 decimals; the deployer is the first
            owner and minter.
    @param name_ The token name, at most 25 characters.
    @param symbol_ The token symbol, at most 5 characters.
    @param cap_ The maximum total supply in the smallest unit; must be
           non-zero.
    """
    assert cap_ != 0, "token: zero cap"
    ownable.__init__()
    erc20.__init__(name_, symbol_, 18, name_, "1")
    cap = cap_
    log CapSet(cap=cap_)


@external
def mint(owner: address, amount: uint256):
    """
    @notice Mints `amount` new tokens to `owner`. Only a minter may call it
            and the total supply never exceeds `cap`.
    @param owner The receiver of the new tokens; not the zero address.
    @param amount The number of tokens in the smallest unit.
    """
    assert erc20.is_minter[msg.sender], "erc20: access is denied"
    assert erc20.totalSupply + amount <= cap, "token: cap exceeded"
    erc20._mint(owner, amount)
