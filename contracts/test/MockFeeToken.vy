# pragma version ~=0.4.3
"""
@title MockFeeToken
@custom:contract-name MockFeeToken
@license GNU Affero General Public License v3.0 only
@notice Test-only fee-on-transfer ERC-20: every transfer burns 1% of the
        amount, so the receiver gets less than was asked. The market must
        refuse it as escrow.
"""


from ethereum.ercs import IERC20
implements: IERC20

FEE_BPS: constant(uint256) = 100
MAX_BPS: constant(uint256) = 10_000

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)


@external
def mint(owner: address, amount: uint256):
    """
    @notice Mints `amount` to `owner`; open to anyone (test only).
    @param owner The receiver.
    @param amount The amount.
    """
    self.balanceOf[owner] += amount
    self.totalSupply += amount
    log IERC20.Transfer(sender=empty(address), receiver=owner, value=amount)


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Sets `spender`'s allowance.
    @param spender The spender.
    @param amount The allowance.
    @return bool Always true.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount`, of which 1% is burnt on the way.
    @param to The receiver.
    @param amount The amount debited.
    @return bool Always true.
    """
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` from `owner`, of which 1% is burnt on the way.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount debited.
    @return bool Always true.
    """
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    fee: uint256 = amount * FEE_BPS // MAX_BPS
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - fee
    self.totalSupply -= fee
    log IERC20.Transfer(sender=owner, receiver=to, value=amount - fee)
