# pragma version ~=0.4.3
"""
@title MockToken
@custom:contract-name MockToken
@license GNU Affero General Public License v3.0 only
@notice Test-only ERC-20 (snekmate `erc20`) that anyone may mint: an
        allow-listed escrow asset in the test suite and on local demos.
"""


from snekmate.auth import ownable
initializes: ownable

from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]

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
)


@deploy
def __init__(name_: String[25], symbol_: String[5]):
    """
    @notice Deploys the mock with 18 decimals.
    @param name_ The token name.
    @param symbol_ The token symbol.
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, 18, name_, "1")


@external
def mint(owner: address, amount: uint256):
    """
    @notice Mints `amount` to `owner`; open to anyone (test only).
    @param owner The receiver.
    @param amount The amount.
    """
    erc20._mint(owner, amount)
