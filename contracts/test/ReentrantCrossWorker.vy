# pragma version ~=0.4.3
"""
@title ReentrantCrossWorker
@custom:contract-name ReentrantCrossWorker
@license GNU Affero General Public License v3.0 only
@notice Test-only hostile worker that re-enters the market across
        functions: paid ETH by `withdraw_bond` it calls `withdraw`, paid ETH
        by `withdraw` it calls `withdraw_bond`. It records whether the nested
        call went through and, if not, the revert data it got.
"""


interface Market:
    def register(): payable
    def submit_result(job_id: uint256, commitment: bytes32): nonpayable
    def withdraw(asset: address) -> uint256: nonpayable
    def request_unbond(): nonpayable
    def withdraw_bond(): nonpayable

market: public(Market)
# @dev 1 = paid by `withdraw_bond`, re-enter `withdraw(ETH)`;
# 2 = paid by `withdraw(ETH)`, re-enter `withdraw_bond`.
mode: public(uint256)
reentered: public(bool)
attempts: public(uint256)
# @dev The nested call's revert data (empty when refused by the lock).
revert_data: public(Bytes[256])


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
def unbond():
    """
    @notice Starts unbonding.
    """
    extcall self.market.request_unbond()


@external
def attack_withdraw_bond_then_withdraw():
    """
    @notice Withdraws the bond and, on receipt, re-enters `withdraw(ETH)`.
    """
    self.mode = 1
    extcall self.market.withdraw_bond()


@external
def attack_withdraw_then_withdraw_bond():
    """
    @notice Withdraws credited ETH and, on receipt, re-enters `withdraw_bond`.
    """
    self.mode = 2
    extcall self.market.withdraw(empty(address))


@external
def withdraw_eth() -> uint256:
    """
    @notice Withdraws credited ETH without any callback (mode 0).
    @return uint256 The amount the market sent.
    """
    self.mode = 0
    return extcall self.market.withdraw(empty(address))


@external
def withdraw_bond():
    """
    @notice Withdraws the bond without any callback (mode 0).
    """
    self.mode = 0
    extcall self.market.withdraw_bond()


@external
@payable
def __default__():
    """
    @notice On receiving ETH in an attack mode, tries once to call the
            other withdrawal function of the market.
    """
    if self.mode == 0 or self.attempts != 0:
        return
    self.attempts += 1
    payload: Bytes[36] = concat(method_id("withdraw(address)"), convert(empty(address), bytes32))
    if self.mode == 2:
        payload = concat(method_id("withdraw_bond()"), b"")
    ok: bool = False
    data: Bytes[256] = b""
    ok, data = raw_call(self.market.address, payload, max_outsize=256, revert_on_failure=False)
    self.reentered = ok
    if not ok:
        self.revert_data = data
