# pragma version ~=0.4.3
"""
@title ReentrantWorker
@custom:contract-name ReentrantWorker
@license GNU Affero General Public License v3.0 only
@notice Test-only hostile worker: when the market sends it ETH it calls
        back into the market (`withdraw` or `withdraw_bond`) to try to be
        paid twice. It records whether the nested call went through.
"""


interface Market:
    def register(): payable
    def submit_result(job_id: uint256, commitment: bytes32): nonpayable
    def withdraw(asset: address) -> uint256: nonpayable
    def request_unbond(): nonpayable
    def withdraw_bond(): nonpayable

market: public(Market)
# @dev 1 = re-enter `withdraw`, 2 = re-enter `withdraw_bond`.
mode: public(uint256)
reentered: public(bool)
attempts: public(uint256)


@deploy
def __init__(market: Market):
    """
    @notice Points the attacker at the market.
    @param market The JobMarket.
    """
    self.market = market


@external
@payable
def register():
    """
    @notice Bonds the ETH sent with this call.
    """
    extcall self.market.register(value=msg.value)


@external
def submit(job_id: uint256, commitment: bytes32):
    """
    @notice Commits to a result as this contract.
    @param job_id The job.
    @param commitment The commitment.
    """
    extcall self.market.submit_result(job_id, commitment)


@external
def attack_withdraw():
    """
    @notice Withdraws ETH and re-enters `withdraw` on receipt.
    """
    self.mode = 1
    extcall self.market.withdraw(empty(address))


@external
def unbond():
    """
    @notice Starts unbonding.
    """
    extcall self.market.request_unbond()


@external
def attack_withdraw_bond():
    """
    @notice Withdraws the bond and re-enters `withdraw_bond` on receipt.
    """
    self.mode = 2
    extcall self.market.withdraw_bond()


@external
@payable
def __default__():
    """
    @notice On receiving ETH, tries once to call back into the market.
    """
    if self.attempts != 0:
        return
    self.attempts += 1
    target: Bytes[4] = method_id("withdraw(address)")
    payload: Bytes[36] = concat(target, convert(empty(address), bytes32))
    if self.mode == 2:
        payload = concat(method_id("withdraw_bond()"), b"")
    ok: bool = raw_call(self.market.address, payload, revert_on_failure=False)
    self.reentered = ok
