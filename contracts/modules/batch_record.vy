# pragma version ~=0.4.3
"""
@title The record of a settled batch
@license MIT
@notice `JobMarket.settle` keeps one hash per batch until the batch is final;
        `finalize` and the dispute contract are handed the batch back and
        check it against that hash. This module holds the item type and the
        hash, shared by both contracts, and no state:

        record = keccak256(abi.encode(batch_id, epoch, final_at,
                 keccak256(abi.encode(signers)), h_n)), h_0 = 0,
        h_i = keccak256(abi.encode(h_{i-1}, items[i-1])).
"""


# @dev One verdict of a settled batch as the batch's record holds it until the
# batch is final. VALID: `amount` of `asset` (the escrow) and `stake` go to the
# worker at `finalize`. INVALID: `amount` wei (the worker's bond and stake) go
# to the requester. REFUTED (a disputed VALID) or OVERTURNED (a disputed
# INVALID, its bond already returned): nothing is left to pay.
# `transcript_hash` is the attestation's; for an INVALID matmul verdict it names
# the witness entry: keccak256(abi.encode(i, j, rest)).
struct SettledItem:
    job_id: uint256
    worker: address
    commitment: bytes32
    verdict: uint8
    asset: address
    amount: uint256
    work_units: uint64
    stake: uint256
    transcript_hash: bytes32


# @dev The most items in a batch and signers of one (the market's bounds).
MAX_BATCH: constant(uint256) = 128
MAX_ORACLES: constant(uint256) = 32
# @dev The verdict a refuted VALID item is recorded with.
VERDICT_REFUTED: constant(uint8) = 3
VERDICT_OVERTURNED: constant(uint8) = 4
# @dev `_items_hash` with no item to mark.
NO_ITEM: constant(uint256) = max_value(uint256)


@internal
@pure
def _chain_item(acc: bytes32, item: SettledItem) -> bytes32:
    # One step of the items hash chain.
    return keccak256(abi_encode(acc, item))


@internal
@pure
def _items_hash(items: DynArray[SettledItem, MAX_BATCH], marked: uint256, verdict: uint8) -> bytes32:
    # The items hash chain of a batch, with item `marked` (NO_ITEM: none)
    # given `verdict` (REFUTED or OVERTURNED by a dispute); settle builds the
    # same chain item by item.
    acc: bytes32 = empty(bytes32)
    for k: uint256 in range(len(items), bound=MAX_BATCH):
        item: SettledItem = items[k]
        if k == marked:
            item.verdict = verdict
        acc = self._chain_item(acc, item)
    return acc


@internal
@pure
def _record_hash(
    batch_id: uint256, epoch: uint256, final_at: uint256, signers: DynArray[address, MAX_ORACLES], items: bytes32
) -> bytes32:
    # The record of a batch from its context and items hash.
    return keccak256(abi_encode(batch_id, epoch, final_at, keccak256(abi_encode(signers)), items))
