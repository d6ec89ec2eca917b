# pragma version ~=0.4.3
# pragma nonreentrancy off
"""
@title pouw OracleSet
@custom:contract-name OracleSet
@license GNU Affero General Public License v3.0 only
@notice The oracles that settle the JobMarket's batches: who they are, how
        many must sign, the bond each one holds, and the check that enough of
        them signed a digest.

        Every oracle is bonded (`bond`, by anyone on its behalf). A signature
        counts only while its oracle is in the set, holds at least
        `oracle_bond` and has not asked to unbond. When a dispute proves a
        verdict wrong, the market slashes the bonds of the oracles whose
        signatures settled it (`slash`): the whole bond of each goes to the
        market, which shares it between the party who proved the fault and
        the party it harmed. An oracle that unbonds stops counting at once and
        can withdraw when every batch settled so far is final.

        The set lives apart from the JobMarket only because one contract
        holding both would exceed the 24,576-byte code limit (EIP-170).
@custom:security The owner can add and remove oracles and set the threshold
                 and the bond; it can never move a bond. Only the market can
                 slash, and the market does so only for a refuted verdict.
"""


from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]

from snekmate.utils import ecdsa


exports: (
    ownable.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    ownable_2step.renounce_ownership,
)


# @dev What the set needs of the market: when its latest batch is final.
interface IMarket:
    def last_final_at() -> uint256: view


# @dev An EIP-2098 compact secp256k1 signature: `vs` carries the parity bit
# of `v` in its top bit and the low-s value below it.
struct Signature:
    r: uint256
    vs: uint256


# @dev Set and signature bounds.
MAX_ORACLES: constant(uint256) = 32
# @dev The largest `oracle_bond`, in wei.
MAX_ORACLE_BOND: constant(uint256) = 10**24
_MASK_255: constant(uint256) = 2**255 - 1
# @dev An oracle's bond word: the bond in wei (low 192 bits) | when it may be
# withdrawn (the 64 bits above; 0 while active). One slot, so the quorum check
# reads one word per signer.
_AMOUNT_BITS: constant(uint256) = 192
_MASK_192: constant(uint256) = 2**192 - 1

# @dev The JobMarket this set settles for: the only caller of `slash`.
MARKET: public(immutable(address))

# @dev The oracle set, sorted ascending.
_oracles: DynArray[address, MAX_ORACLES]
# @dev Distinct oracle signatures a batch needs.
threshold: public(uint256)
# @dev Smallest bond, in wei, an oracle needs for its signature to count.
oracle_bond: public(uint256)
# @dev Each oracle's bond word (see `_AMOUNT_BITS`); read with `bonds` and
# `unbonding_at`.
_bond_words: HashMap[address, uint256]


# @dev An oracle joined the set (at deployment or by `add_oracle`).
event OracleAdded:
    oracle: indexed(address)

# @dev `remove_oracle` took an oracle out of the set.
event OracleRemoved:
    oracle: indexed(address)

# @dev The signature threshold was set (at deployment or by `set_threshold`).
event UpdateThreshold:
    threshold: uint256

# @dev `oracle_bond` was set (at deployment or by `set_oracle_bond`).
event UpdateOracleBond:
    oracle_bond: uint256

# @dev `bond` added `amount` wei, sent by `sender`, to an oracle's bond;
# `bond` is the bond after it.
event OracleBonded:
    oracle: indexed(address)
    sender: indexed(address)
    amount: uint256
    bond: uint256

# @dev `request_unbond` stopped an oracle's signatures from counting; its bond
# can be withdrawn from `available_at` (a Unix time) on.
event OracleUnbondRequested:
    oracle: indexed(address)
    available_at: uint256

# @dev `withdraw_bond` sent an oracle its whole bond (`amount` wei).
event OracleBondWithdrawn:
    oracle: indexed(address)
    amount: uint256

# @dev `slash` took an oracle's whole bond (`amount` wei) for the market.
event OracleSlashed:
    oracle: indexed(address)
    amount: uint256


@deploy
def __init__(market: address, oracles: DynArray[address, MAX_ORACLES], threshold: uint256, oracle_bond: uint256):
    """
    @notice Deploys the set for a market that does not exist yet: `market` is
            the address it will be created at (the market checks it).
    @param market The JobMarket's address.
    @param oracles The initial oracle set: distinct non-zero addresses.
    @param threshold Signatures needed to settle, in [1, len(oracles)].
    @param oracle_bond Smallest oracle bond in wei, in (0, 10**24].
    """
    ownable.__init__()
    ownable_2step.__init__()
    assert market != empty(address), "oracles: zero market"
    MARKET = market
    for oracle: address in oracles:
        self._add_oracle(oracle)
    self._set_threshold(threshold)
    self._set_oracle_bond(oracle_bond)


# ============================================================================
# QUORUM
# ============================================================================

@external
@view
def quorum(digest: bytes32, signatures: DynArray[Signature, MAX_ORACLES]) -> DynArray[address, MAX_ORACLES]:
    """
    @notice Reverts unless at least `threshold` distinct current, bonded
            oracles signed `digest`, their signatures ordered by strictly
            ascending signer address; returns those signers.
    @param digest The signed digest.
    @param signatures EIP-2098 compact signatures of it.
    @return DynArray The signers, ascending.
    """
    count: uint256 = len(signatures)
    assert count >= self.threshold, "oracles: below threshold"
    # One forward walk over the set, which ascends strictly: signatures[i]
    # is recovered once signatures[i - 1] has matched a member and can only
    # match a later member, so the signers matched ascend strictly and no
    # separate order check is needed. count >= threshold >= 1, so
    # signatures[0] exists. ecdsa rejects high-s values and the zero address.
    oracles: DynArray[address, MAX_ORACLES] = self._oracles
    min_bond: uint256 = self.oracle_bond
    signers: DynArray[address, MAX_ORACLES] = []
    sig: Signature = signatures[0]
    # EIP-2098: the top bit of vs is v - 27, the rest is s (ecdsa checks low-s).
    signer: address = ecdsa._try_recover_vrs(digest, unsafe_add(sig.vs >> 255, 27), sig.r, sig.vs & _MASK_255)
    for candidate: address in oracles:
        if candidate == signer:
            # A signature counts only while its oracle's bond can answer for it.
            word: uint256 = self._bond_words[signer]
            assert word & _MASK_192 >= min_bond and word >> _AMOUNT_BITS == 0, "oracles: signer not bonded"
            signers.append(signer)
            if len(signers) == count:
                break
            sig = signatures[len(signers)]
            signer = ecdsa._try_recover_vrs(digest, unsafe_add(sig.vs >> 255, 27), sig.r, sig.vs & _MASK_255)
    if len(signers) != count:
        # signatures[len(signers)] found no member after the previous signer's:
        # a member is then at or below it (a duplicate or out of order).
        assert signer not in oracles, "oracles: signers not ascending"
        raise "oracles: signer not oracle"
    return signers


@external
@view
def bonds(oracle: address) -> uint256:
    """
    @notice An oracle's bond.
    @param oracle The oracle.
    @return uint256 Wei.
    """
    return self._bond_words[oracle] & _MASK_192


@external
@view
def unbonding_at(oracle: address) -> uint256:
    """
    @notice When an oracle's bond may be withdrawn; 0 while it is active.
    @param oracle The oracle.
    @return uint256 A Unix time, or 0.
    """
    return self._bond_words[oracle] >> _AMOUNT_BITS


@external
@view
def oracles() -> DynArray[address, MAX_ORACLES]:
    """
    @notice The current oracle set, sorted ascending.
    @return DynArray The oracle addresses.
    """
    return self._oracles


# ============================================================================
# BONDS
# ============================================================================

@external
@payable
def bond(oracle: address):
    """
    @notice Adds `msg.value` wei to an oracle's bond; anyone may fund any
            address (its operator, or the deployer at launch). The bond goes
            back to the oracle itself (`withdraw_bond`).
    @param oracle The oracle's signing address.
    """
    assert oracle != empty(address), "oracles: zero oracle"
    assert msg.value != 0, "oracles: zero bond"
    word: uint256 = self._bond_words[oracle]
    # Below 2**192: all the ether there is (about 2**87 wei) cannot carry into
    # the unbonding bits.
    total: uint256 = (word & _MASK_192) + msg.value
    self._bond_words[oracle] = (word >> _AMOUNT_BITS << _AMOUNT_BITS) | total
    log OracleBonded(oracle=oracle, sender=msg.sender, amount=msg.value, bond=total)


@external
def request_unbond():
    """
    @notice Stops the caller's signatures from counting and starts its bond's
            unbonding: the bond can be withdrawn once every batch the market
            has settled so far is final, and no sooner than the market's
            latest `final_at`.
    """
    word: uint256 = self._bond_words[msg.sender]
    assert word & _MASK_192 != 0, "oracles: no bond"
    assert word >> _AMOUNT_BITS == 0, "oracles: already unbonding"
    # Every batch this oracle could have signed was settled by now, so the
    # latest final_at bounds them all.
    available_at: uint256 = max(block.timestamp, staticcall IMarket(MARKET).last_final_at())
    self._bond_words[msg.sender] = word | (available_at << _AMOUNT_BITS)
    log OracleUnbondRequested(oracle=msg.sender, available_at=available_at)


@external
@nonreentrant
def withdraw_bond():
    """
    @notice Sends the caller its whole bond once its unbonding has ended.
    """
    word: uint256 = self._bond_words[msg.sender]
    available_at: uint256 = word >> _AMOUNT_BITS
    assert available_at != 0, "oracles: not unbonding"
    assert block.timestamp >= available_at, "oracles: bond still locked"
    amount: uint256 = word & _MASK_192
    assert amount != 0, "oracles: no bond"
    self._bond_words[msg.sender] = 0
    log OracleBondWithdrawn(oracle=msg.sender, amount=amount)
    ok: bool = raw_call(msg.sender, b"", value=amount, revert_on_failure=False)
    assert ok, "oracles: eth transfer failed"


@external
@nonreentrant
def slash(signers: DynArray[address, MAX_ORACLES]) -> uint256:
    """
    @notice Takes the whole bond of each signer and sends the sum to the
            market. Market only: it calls this when a dispute refutes a
            verdict these oracles signed.
    @param signers The oracles whose signatures settled the refuted verdict.
    @return uint256 The wei sent to the market.
    """
    assert msg.sender == MARKET, "oracles: not the market"
    total: uint256 = 0
    for oracle: address in signers:
        word: uint256 = self._bond_words[oracle]
        amount: uint256 = word & _MASK_192
        if amount != 0:
            # The unbonding time stays: a slashed oracle that was leaving stays out.
            self._bond_words[oracle] = word >> _AMOUNT_BITS << _AMOUNT_BITS
            total += amount
            log OracleSlashed(oracle=oracle, amount=amount)
    if total != 0:
        ok: bool = raw_call(MARKET, b"", value=total, revert_on_failure=False)
        assert ok, "oracles: eth transfer failed"
    return total


# ============================================================================
# ADMIN
# ============================================================================

@external
def add_oracle(oracle: address):
    """
    @notice Adds an oracle signer; its signatures count once it is bonded.
            Owner only.
    @param oracle A non-zero address not yet in the set.
    """
    ownable._check_owner()
    self._add_oracle(oracle)


@external
def remove_oracle(oracle: address):
    """
    @notice Removes an oracle signer; its signatures stop counting at once,
            including on batches it already signed. Its bond stays, slashable,
            until it unbonds. The set may not shrink below `threshold`.
            Owner only.
    @param oracle A member of the set.
    """
    ownable._check_owner()
    oracles: DynArray[address, MAX_ORACLES] = self._oracles
    assert len(oracles) > self.threshold, "oracles: set would fall below threshold"
    kept: DynArray[address, MAX_ORACLES] = []
    for o: address in oracles:
        if o != oracle:
            kept.append(o)
    assert len(kept) != len(oracles), "oracles: not an oracle"
    self._oracles = kept
    log OracleRemoved(oracle=oracle)


@external
def set_threshold(threshold: uint256):
    """
    @notice Sets how many distinct oracle signatures a batch needs. Owner only.
    @param threshold In [1, number of oracles].
    """
    ownable._check_owner()
    self._set_threshold(threshold)


@external
def set_oracle_bond(oracle_bond: uint256):
    """
    @notice Sets the smallest bond an oracle needs for its signature to
            count. Owner only.
    @param oracle_bond Wei, in (0, 10**24].
    """
    ownable._check_owner()
    self._set_oracle_bond(oracle_bond)


@internal
def _add_oracle(oracle: address):
    # Inserts keeping the set sorted ascending.
    assert oracle != empty(address), "oracles: zero oracle"
    oracles: DynArray[address, MAX_ORACLES] = self._oracles
    assert len(oracles) < MAX_ORACLES, "oracles: too many oracles"
    result: DynArray[address, MAX_ORACLES] = []
    placed: bool = False
    for o: address in oracles:
        assert o != oracle, "oracles: already an oracle"
        if not placed and convert(oracle, uint256) < convert(o, uint256):
            result.append(oracle)
            placed = True
        result.append(o)
    if not placed:
        result.append(oracle)
    self._oracles = result
    log OracleAdded(oracle=oracle)


@internal
def _set_threshold(threshold: uint256):
    assert threshold != 0 and threshold <= len(self._oracles), "oracles: bad threshold"
    self.threshold = threshold
    log UpdateThreshold(threshold=threshold)


@internal
def _set_oracle_bond(oracle_bond: uint256):
    assert oracle_bond != 0 and oracle_bond <= MAX_ORACLE_BOND, "oracles: bad oracle bond"
    self.oracle_bond = oracle_bond
    log UpdateOracleBond(oracle_bond=oracle_bond)
