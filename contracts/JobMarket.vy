# pragma version ~=0.4.3
# pragma nonreentrancy off
# pragma optimize codesize
"""
@title pouw JobMarket
@custom:contract-name JobMarket
@license GNU Affero General Public License v3.0 only
@notice Escrow and settlement for useful-work jobs, and the emission that
        rewards verified work.

        Requesters escrow ETH or an allow-listed ERC-20 for a job whose spec
        (canonical JSON, hashed with keccak256) is published in `JobCreated`.
        Bonded workers commit to results with `submit_result`; a commitment
        is keccak256(worker address ++ Merkle root of the result), so a copied
        commitment is worth nothing to the copier. Off-chain oracles verify the
        result (the challenge seed comes from a block hash after the
        submission block) and sign one EIP-712 `Settlement` over a batch of
        `Attestation`s. Anyone may relay a batch to `settle`.

        What an attestation proves: that at least `threshold` distinct members
        of the current oracle set agreed, before the signed `valid_until`, on
        the verdict for one submission (job, worker, commitment, submission
        block), its work units and transcript. VALID marks the job paid,
        records the work units in the current epoch and clears the
        submission; INVALID takes the worker's free bond and the submission's
        stake for the requester and leaves the job open (it slashes a live
        submission even after the job was paid to another worker or
        refunded). Each live submission holds `min_bond` of its worker's bond
        at stake, so occupying `s` submission slots puts `s` bonds at risk;
        a stake on a job that no longer takes submissions goes back with
        `release`. Items already settled, or whose submission no
        longer matches, are skipped with `AttestationSkipped`, so racing
        relayers never revert each other's batches and never pay twice.
        A bond stays slashable through the unbonding delay, which is never
        shorter than the reveal window plus the settlement grace plus the
        challenge window.

        Challenge window: `settle` moves no money. It keeps one hash of the
        batch (`batch_record`) and holds the escrow, stakes and slashed bonds
        (`pending`) for `challenge_window` seconds, during which a dispute can
        refute a verdict; then anyone calls `finalize` and the escrow is
        credited to the workers (pull payment), stakes go back to bonds and
        slashed bonds to requesters. An epoch's emission can be claimed once
        its batches are final. The oracle set, its threshold and the oracles'
        bonds live in the OracleSet (`ORACLES`).

        Emission: fixed-length epochs; epoch e emits
        `INITIAL_EMISSION >> (e // HALVING_EPOCHS)` tokens, shared among the
        workers of that epoch strictly in proportion to verified work units,
        rounded down. Bonds and token balances never enter the formula.
@custom:security `threshold` colluding oracles can settle anything: pay any
                 submitted commitment or slash any submitter, except that a
                 VALID verdict on a wrong matmul result the dispute contract
                 can refute (`DISPUTES`, `refute`) is undone, and their bonds
                 taken, if anyone disputes it within the challenge window.
                 Every verdict is re-derivable by anyone from public data
                 (`pouw audit`), which makes collusion visible.
                 The owner can rotate oracles and pause new jobs
                 and submissions; it can never move escrow, bonds or credited
                 balances, and pause never blocks refunds, withdrawals,
                 settlement, finalization or claims.
"""


from ethereum.ercs import IERC20

from interfaces import IWorkToken

from interfaces import IOracleSet

from interfaces import IDisputes

from modules import batch_record as records

from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]

from snekmate.utils import pausable
initializes: pausable

from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator


exports: (
    ownable.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    ownable_2step.renounce_ownership,
    pausable.paused,
    eip712_domain_separator.eip712Domain,
)


# ============================================================================
# STRUCTS
# ============================================================================

# @dev One oracle verdict on one submission, named by its job, worker,
# commitment and the block that recorded it (a worker re-committing the same
# result later is a new submission that needs a new verdict). EIP-712 type:
# Attestation(uint256 jobId,address worker,bytes32 commitment,
#             uint256 submissionBlock,uint64 workUnits,uint8 verdict,
#             bytes32 transcriptHash)
struct Attestation:
    job_id: uint256
    worker: address
    commitment: bytes32
    submission_block: uint256
    work_units: uint64
    verdict: uint8
    transcript_hash: bytes32


# @dev A job as the requester asks for it (one item of `create_jobs`).
struct JobRequest:
    spec_hash: bytes32
    work_units: uint64
    asset: address
    amount: uint256
    deadline: uint256


# @dev A commitment as a worker submits it (one item of `submit_results`).
struct ResultCommit:
    job_id: uint256
    commitment: bytes32


# @dev The owner-set parameters (`set_parameters`), each within its bounds.
struct Parameters:
    min_bond: uint256
    unbonding_delay: uint256
    reveal_window: uint256
    refund_grace: uint256
    max_horizon: uint256
    challenge_window: uint256


# @dev A job's state, unpacked for readers.
struct Job:
    requester: address
    asset: address
    amount: uint256
    work_units: uint64
    deadline: uint256
    status: uint8
    submissions: uint256


# @dev A worker's commitment to a job, the block that recorded it and the
# part of the worker's bond it holds at stake (`min_bond` when committed, back
# in the bond once the submission is settled VALID or released).
struct Submission:
    commitment: bytes32
    block_number: uint256
    stake: uint256


# @dev How a submission is stored: the commitment, and the block number (low
# 64 bits) packed with the stake (the bits above), so it takes two slots.
struct SubmissionSlot:
    commitment: bytes32
    info: uint256


# @dev Escrow owed to a worker in one asset, summed over a settle batch, with
# the stakes its VALID submissions return to its bond.
struct Payout:
    worker: address
    asset: address
    amount: uint256
    work_units: uint256
    stake: uint256


# ============================================================================
# CONSTANTS
# ============================================================================

# @dev Job status values (0 means no such job).
STATUS_OPEN: constant(uint256) = 1
STATUS_PAID: constant(uint256) = 2
STATUS_REFUNDED: constant(uint256) = 3
STATUS_CANCELLED: constant(uint256) = 4

# @dev Verdict values, as signed in an attestation.
VERDICT_VALID: constant(uint8) = 1
VERDICT_INVALID: constant(uint8) = 2
# @dev A VALID verdict a dispute refuted (only in a batch record).
VERDICT_REFUTED: constant(uint8) = records.VERDICT_REFUTED

# @dev Reasons given in `AttestationSkipped`.
SKIP_JOB_NOT_OPEN: constant(uint8) = 1
SKIP_NO_SUCH_SUBMISSION: constant(uint8) = 2
SKIP_WORK_UNITS_MISMATCH: constant(uint8) = 3

# @dev Batch and set bounds (they size memory, so they cap gas too).
MAX_BATCH: constant(uint256) = 128
MAX_ORACLES: constant(uint256) = 32
MAX_SUBMISSIONS: constant(uint256) = 8
MAX_CLAIM_EPOCHS: constant(uint256) = 64
MAX_ASSETS: constant(uint256) = 256

# @dev Escrow fits 96 bits of the packed job word (7.9e28 base units).
MAX_AMOUNT: constant(uint256) = 2**96 - 1

# @dev Bounds on owner-set parameters (seconds, or wei for the bond).
MIN_PERIOD: constant(uint256) = 60
MAX_PERIOD: constant(uint256) = 365 * 86_400
MAX_MIN_BOND: constant(uint256) = 10**24
# @dev The longest challenge window, in seconds.
MAX_CHALLENGE_WINDOW: constant(uint256) = 30 * 86_400

# @dev Emission halves `MAX_HALVINGS` times at most before it is zero:
# `INITIAL_EMISSION` is below 2**128, so the 128th halving emits nothing.
MAX_HALVINGS: constant(uint256) = 128

# @dev Bit layout of the packed job word `_terms[job_id]`, low bits first:
# amount (96) | work_units (64) | deadline (40) | asset id (8) | status (8) |
# open submissions (8) | spec tag, low 32 bits (32). The parties word
# `_parties[job_id]`: requester (160) | spec tag, high 96 bits (96). Read and
# written only in PACKED JOB WORD.
_WORK_SHIFT: constant(uint256) = 96
_DEADLINE_SHIFT: constant(uint256) = 160
_ASSET_SHIFT: constant(uint256) = 200
_STATUS_SHIFT: constant(uint256) = 208
_SUBS_SHIFT: constant(uint256) = 216
_TAG_LO_SHIFT: constant(uint256) = 224
_TAG_HI_SHIFT: constant(uint256) = 160
_MASK_32: constant(uint256) = 2**32 - 1
_MASK_160: constant(uint256) = 2**160 - 1
_MASK_8: constant(uint256) = 2**8 - 1
_MASK_40: constant(uint256) = 2**40 - 1
_MASK_64: constant(uint256) = 2**64 - 1
_MASK_96: constant(uint256) = 2**96 - 1
# @dev A submission's info word, low bits first: block number (64) | stake
# (the rest). Read and written only in PACKED JOB WORD.
_STAKE_SHIFT: constant(uint256) = 64

# @dev EIP-712 type hashes of the attestation and of a signed batch.
ATTESTATION_TYPEHASH: constant(bytes32) = keccak256(
    "Attestation(uint256 jobId,address worker,bytes32 commitment,uint256 submissionBlock,uint64 workUnits,uint8 verdict,bytes32 transcriptHash)"
)
SETTLEMENT_TYPEHASH: constant(bytes32) = keccak256(
    "Settlement(Attestation[] attestations,uint256 validUntil)Attestation(uint256 jobId,address worker,bytes32 commitment,uint256 submissionBlock,uint64 workUnits,uint8 verdict,bytes32 transcriptHash)"
)

# @dev The oracle set: who signs, how many, their bonds.
ORACLES: public(immutable(IOracleSet))
# @dev The dispute contract: the only caller of `refute`.
DISPUTES: public(immutable(address))
# @dev The reward token, minted only here.
TOKEN: public(immutable(IWorkToken))
# @dev Timestamp at which epoch 0 starts.
GENESIS: public(immutable(uint256))
# @dev Length of an epoch in seconds.
EPOCH_LENGTH: public(immutable(uint256))
# @dev Tokens emitted in each epoch before the first halving.
INITIAL_EMISSION: public(immutable(uint256))
# @dev Epochs between halvings.
HALVING_EPOCHS: public(immutable(uint256))


# ============================================================================
# STORAGE
# ============================================================================

# @dev The id the next job gets; ids start at 1.
next_job_id: public(uint256)
# @dev Packed job word (see the bit layout above).
_terms: HashMap[uint256, uint256]
# @dev Who posted each job (and is refunded, or paid a slashed bond), packed
# with the high bits of the job's spec tag (see the bit layout above).
_parties: HashMap[uint256, uint256]
# @dev Each worker's commitment to each job (read with `submissions`).
_submissions: HashMap[uint256, HashMap[address, SubmissionSlot]]

# @dev Allow-listed ERC-20s: address -> id (1..255); ETH is id 0.
asset_id: public(HashMap[address, uint8])
# @dev id -> ERC-20 address; `assets[0]` is the zero address (ETH).
assets: public(address[MAX_ASSETS])
# @dev How many ids are taken, ETH included.
asset_count: public(uint256)
# @dev Whether new jobs may escrow this ERC-20.
asset_allowed: public(HashMap[address, bool])

# @dev Each worker's free bond in wei (stakes of live submissions excluded).
bonds: public(HashMap[address, uint256])
# @dev When a worker's bond may be withdrawn; 0 while it is active.
unbonding_at: public(HashMap[address, uint256])

# @dev Withdrawable balances: account -> asset (zero address = ETH) -> amount.
credited: public(HashMap[address, HashMap[address, uint256]])

# @dev Verified work units per epoch per worker; zeroed when claimed.
epoch_work: public(HashMap[uint256, HashMap[address, uint256]])
# @dev Verified work units per epoch, all workers.
epoch_total_work: public(HashMap[uint256, uint256])


# @dev Smallest bond that lets a worker submit, in wei.
min_bond: public(uint256)
# @dev Seconds between `request_unbond` and `withdraw_bond`.
unbonding_delay: public(uint256)
# @dev Seconds after its submission block within which a worker must serve
# its result; oracles attest INVALID after that.
reveal_window: public(uint256)
# @dev Seconds after the deadline during which a job with submissions can
# still be settled before anyone may refund it.
refund_grace: public(uint256)
# @dev Furthest deadline a job may have, in seconds from now.
max_horizon: public(uint256)
# @dev Seconds after `settle` during which its verdicts can be disputed; the
# batch is final, and `finalize` pays it, after them.
challenge_window: public(uint256)

# @dev The id the next settled batch gets; ids start at 1.
next_batch_id: public(uint256)
# @dev The record of each settled batch not yet final: keccak256 of its
# `SettledItem`s and context (`records._record_hash`); zero once finalized.
batch_record: public(HashMap[uint256, bytes32])
# @dev Escrow, stakes and slashed bonds held by pending batches, per asset (the
# zero address for ETH).
pending: public(HashMap[address, uint256])
# @dev When every verdict settled in an epoch is final: the latest `final_at`
# of its batches. Its emission can be claimed from then on.
epoch_final_at: public(HashMap[uint256, uint256])
# @dev The latest `final_at` of any batch.
last_final_at: public(uint256)


# ============================================================================
# EVENTS
# ============================================================================

# @dev A job was posted (`create_job`, or one item of `create_jobs`) and its
# escrow taken. `spec_hash` is keccak256 of the canonical JSON spec; `asset`
# is the zero address for ETH; `deadline` is a Unix time.
event JobCreated:
    job_id: indexed(uint256)
    requester: indexed(address)
    spec_hash: bytes32
    asset: address
    amount: uint256
    work_units: uint64
    deadline: uint256

# @dev A worker committed to a result (`submit_result`, or one item of
# `submit_results`). `block_number` names the submission in attestations;
# `stake` is the part of the worker's bond it holds (`min_bond` then).
event ResultSubmitted:
    job_id: indexed(uint256)
    worker: indexed(address)
    commitment: bytes32
    block_number: uint256
    stake: uint256

# @dev `settle` accepted a VALID verdict: the job is paid, and when the batch
# is final (`finalize`) its escrow is credited to the worker (then `withdraw`)
# and `stake` goes back to the worker's free bond. `commitment` is the
# settled submission's; `transcript_hash` names the oracles' verification
# transcript.
event JobSettled:
    job_id: indexed(uint256)
    worker: indexed(address)
    commitment: bytes32
    transcript_hash: bytes32
    stake: uint256

# @dev `release` returned a submission's stake (`amount` wei) to the worker's
# free bond; the submission itself stays live.
event StakeReleased:
    job_id: indexed(uint256)
    worker: indexed(address)
    amount: uint256

# @dev An INVALID verdict in `settle` slashed the worker: its free bond plus
# the submission's stake (`amount` wei) go in ETH to `requester` when the
# batch is final.
event WorkerSlashed:
    job_id: indexed(uint256)
    worker: indexed(address)
    commitment: bytes32
    requester: address
    amount: uint256
    transcript_hash: bytes32

# @dev `settle` skipped one attestation without reverting the batch.
# `reason` is a SKIP_* constant: 1 job not open, 2 no such live
# submission, 3 work units differ from the job's.
event AttestationSkipped:
    job_id: indexed(uint256)
    worker: indexed(address)
    reason: uint8

# @dev Once per `settle` call, after its items. `digest` is the signed
# `settlement_digest`; `batch_id` names the batch's record (0 when every item
# was skipped); `epoch` received the batch's work units; the batch is final
# at `final_at`; `signers` are the oracles whose signatures counted; the last
# three count the batch's items by outcome. The record's items are the
# batch's `JobSettled` and `WorkerSlashed` events, in log order.
event BatchSettled:
    digest: indexed(bytes32)
    batch_id: indexed(uint256)
    epoch: uint256
    final_at: uint256
    signers: DynArray[address, MAX_ORACLES]
    settled: uint256
    slashed: uint256
    skipped: uint256

# @dev `finalize` paid a batch whose challenge window had ended: `paid` VALID
# items credited to their workers, `slashed` INVALID items' bonds credited to
# their requesters (refuted and overturned items pay nothing).
event BatchFinalized:
    batch_id: indexed(uint256)
    paid: uint256
    slashed: uint256

# @dev A dispute proved a VALID verdict of batch `batch_id` wrong within its
# challenge window: the job is open again with its escrow, the epoch lost the
# work, and the worker's bond and stake (`worker_slashed`) and the signers'
# oracle bonds (`oracles_slashed`) are credited in ETH, half (rounded down) to
# `disputer`, the rest to `requester`.
event Refuted:
    batch_id: indexed(uint256)
    job_id: indexed(uint256)
    worker: indexed(address)
    disputer: address
    requester: address
    worker_slashed: uint256
    oracles_slashed: uint256

# @dev A dispute proved the witness entry of an INVALID verdict right (item of
# `batch_id`) within its challenge window: the worker's slashed bond and stake
# (`returned`) are back in its bond, the job's escrow (`paid` of `asset`, if the
# job was still open) is credited to it, and the signers' oracle bonds
# (`oracles_slashed`) are credited in ETH, half (rounded down) to `disputer`,
# the rest to the worker.
event Overturned:
    batch_id: indexed(uint256)
    job_id: indexed(uint256)
    worker: indexed(address)
    disputer: address
    returned: uint256
    asset: address
    paid: uint256
    oracles_slashed: uint256

# @dev `settle` added a worker's verified work units to `epoch`, summed over
# the batch's VALID items (one event per worker).
event WorkRecorded:
    epoch: indexed(uint256)
    worker: indexed(address)
    work_units: uint256

# @dev `refund` credited an expired job's escrow (`amount`, in the job's
# asset) back to its requester.
event JobRefunded:
    job_id: indexed(uint256)
    requester: indexed(address)
    amount: uint256

# @dev `cancel` credited the escrow (`amount`, in the job's asset) of a job
# no worker had committed to back to its requester.
event JobCancelled:
    job_id: indexed(uint256)
    requester: indexed(address)
    amount: uint256

# @dev `withdraw` sent an account everything credited to it in `asset`
# (the zero address for ETH).
event Withdrawn:
    account: indexed(address)
    asset: indexed(address)
    amount: uint256

# @dev `register` added `amount` wei to a worker's bond; `bond` is the free
# bond after it.
event Bonded:
    worker: indexed(address)
    amount: uint256
    bond: uint256

# @dev `request_unbond` started a worker's unbonding delay; the bond can be
# withdrawn from `available_at` (a Unix time) on.
event UnbondRequested:
    worker: indexed(address)
    available_at: uint256

# @dev `withdraw_bond` sent a worker its whole bond (`amount` wei).
event BondWithdrawn:
    worker: indexed(address)
    amount: uint256

# @dev `claim` minted a worker's share of `epoch`'s emission: `amount`
# tokens (rounded down) for its `work_units` verified work units.
event RewardClaimed:
    worker: indexed(address)
    epoch: indexed(uint256)
    work_units: uint256
    amount: uint256

# @dev `set_asset_allowed` allowed or stopped new jobs in an ERC-20;
# `asset_id` is its id in the packed job word (kept when it is stopped).
event AssetAllowed:
    asset: indexed(address)
    asset_id: uint8
    allowed: bool

# @dev The parameters were set (at deployment or by `set_parameters`);
# batches settled before keep their `final_at`, unbondings already requested
# keep their time.
event UpdateParameters:
    min_bond: uint256
    unbonding_delay: uint256
    reveal_window: uint256
    refund_grace: uint256
    max_horizon: uint256
    challenge_window: uint256



@deploy
def __init__(
    token: IWorkToken,
    epoch_length: uint256,
    initial_emission: uint256,
    halving_epochs: uint256,
    oracle_set: IOracleSet,
    disputes: address,
    min_bond: uint256,
    unbonding_delay: uint256,
    reveal_window: uint256,
    refund_grace: uint256,
    max_horizon: uint256,
    challenge_window: uint256,
):
    """
    @notice Deploys the market. The token must already exist with
            `cap()` equal to the whole emission schedule for these parameters.
    @param token The WorkToken; the deployer makes this market its minter.
    @param epoch_length Seconds per epoch, within [60, 365 days].
    @param initial_emission Tokens emitted per epoch before any halving,
           non-zero and below 2**128.
    @param halving_epochs Epochs between halvings, in [1, 2**32].
    @param oracle_set The OracleSet, deployed for this market's address.
    @param disputes The dispute contract, deployed for this market's address.
    @param min_bond Smallest worker bond in wei, in (0, 10**24].
    @param unbonding_delay Seconds from `request_unbond` to `withdraw_bond`.
    @param reveal_window Seconds a worker has to serve a committed result.
    @param refund_grace Seconds after a deadline reserved for settlement.
    @param max_horizon Furthest deadline in seconds from job creation.
    @param challenge_window Seconds a settled verdict can be disputed, within
           [60, 30 days].
    """
    ownable.__init__()
    ownable_2step.__init__()
    pausable.__init__()
    eip712_domain_separator.__init__("pouw JobMarket", "1")

    assert epoch_length >= MIN_PERIOD and epoch_length <= MAX_PERIOD, "market: bad epoch length"
    assert initial_emission != 0 and initial_emission < 2**128, "market: bad emission"
    assert halving_epochs != 0 and halving_epochs <= 2**32, "market: bad halving period"
    TOKEN = token
    GENESIS = block.timestamp
    EPOCH_LENGTH = epoch_length
    INITIAL_EMISSION = initial_emission
    HALVING_EPOCHS = halving_epochs
    assert staticcall token.cap() == self._schedule_total(), "market: token cap is not the schedule"

    self.next_job_id = 1
    self.next_batch_id = 1
    self.asset_count = 1
    assert staticcall oracle_set.MARKET() == self, "market: oracle set is for another market"
    ORACLES = oracle_set
    assert staticcall IDisputes(disputes).MARKET() == self, "market: disputes are for another market"
    DISPUTES = disputes
    self._set_parameters(
        Parameters(
            min_bond=min_bond,
            unbonding_delay=unbonding_delay,
            reveal_window=reveal_window,
            refund_grace=refund_grace,
            max_horizon=max_horizon,
            challenge_window=challenge_window,
        )
    )


# ============================================================================
# PACKED JOB WORD
# ============================================================================
# A job's terms and state share one storage word, `_terms[job_id]`, and a
# submission's block and stake share `SubmissionSlot.info` (bit layouts under
# CONSTANTS). Only the functions below pack, read or modify either word.
# Readers return uint256: each field is masked to its width, so a narrower
# type would only add a range check on every call (for the same reason the
# STATUS_* values are uint256 constants).

@internal
@pure
def _pack_job(
    amount: uint256, work_units: uint64, deadline: uint256, asset_id: uint256, tag_lo: uint256
) -> uint256:
    # A new job, status OPEN with no submissions. The caller has checked
    # amount <= MAX_AMOUNT and deadline < 2**40; asset_id < MAX_ASSETS;
    # tag_lo < 2**32.
    return (
        amount
        | (convert(work_units, uint256) << _WORK_SHIFT)
        | (deadline << _DEADLINE_SHIFT)
        | (asset_id << _ASSET_SHIFT)
        | (STATUS_OPEN << _STATUS_SHIFT)
        | (tag_lo << _TAG_LO_SHIFT)
    )


@internal
@pure
def _spec_tag(spec_hash: bytes32, salt: bytes32) -> uint256:
    # The top 128 bits of keccak256(spec_hash ++ salt).
    return convert(keccak256(concat(spec_hash, salt)), uint256) >> 128


@internal
@view
def _job_requester(job_id: uint256) -> address:
    # The requester from the parties word (the zero address for no job).
    return convert(convert(self._parties[job_id] & _MASK_160, uint160), address)


@internal
@view
def _job_tag(job_id: uint256, terms: uint256) -> uint256:
    # The job's 128-bit spec tag, from both words.
    return ((self._parties[job_id] >> _TAG_HI_SHIFT) << 32) | (terms >> _TAG_LO_SHIFT)


@internal
@pure
def _job_amount(terms: uint256) -> uint256:
    # Escrow, in the base unit of the job's asset.
    return terms & _MASK_96


@internal
@pure
def _job_work_units(terms: uint256) -> uint256:
    # Below 2**64: a uint64 when the job was posted.
    return (terms >> _WORK_SHIFT) & _MASK_64


@internal
@pure
def _job_deadline(terms: uint256) -> uint256:
    # Unix time.
    return (terms >> _DEADLINE_SHIFT) & _MASK_40


@internal
@pure
def _job_asset_id(terms: uint256) -> uint256:
    # Index into `assets`; 0 is ETH.
    return (terms >> _ASSET_SHIFT) & _MASK_8


@internal
@pure
def _job_status(terms: uint256) -> uint256:
    # A STATUS_* value; 0 for an unknown job id.
    return (terms >> _STATUS_SHIFT) & _MASK_8


@internal
@pure
def _job_submissions(terms: uint256) -> uint256:
    # Live submissions counted against MAX_SUBMISSIONS.
    return (terms >> _SUBS_SHIFT) & _MASK_8


@internal
@pure
def _with_status(terms: uint256, status: uint256) -> uint256:
    # Clears the status byte, then sets `status` (a STATUS_* value); every
    # other field stays.
    return (terms & ~(_MASK_8 << _STATUS_SHIFT)) | (status << _STATUS_SHIFT)


@internal
@pure
def _with_submission_added(terms: uint256) -> uint256:
    # The caller has checked _job_submissions(terms) < MAX_SUBMISSIONS, so the
    # counter byte cannot carry into the bits above it.
    return unsafe_add(terms, 1 << _SUBS_SHIFT)


@internal
@pure
def _with_submission_removed(terms: uint256) -> uint256:
    # The caller knows _job_submissions(terms) >= 1 (it removes a live,
    # counted submission), so the counter byte cannot borrow.
    return unsafe_sub(terms, 1 << _SUBS_SHIFT)


@internal
@pure
def _pack_sub(block_number: uint256, stake: uint256) -> uint256:
    # A submission's info word; a stake of 0 leaves the block number alone.
    return block_number | (stake << _STAKE_SHIFT)


@internal
@pure
def _sub_block(info: uint256) -> uint256:
    # The block that recorded the submission (kept after a slash or release).
    return info & _MASK_64


@internal
@pure
def _sub_stake(info: uint256) -> uint256:
    # Wei of the worker's bond the submission holds; 0 once returned.
    return info >> _STAKE_SHIFT


# ============================================================================
# JOBS
# ============================================================================

@external
@payable
@nonreentrant
def create_job(
    spec_hash: bytes32, work_units: uint64, asset: address, amount: uint256, deadline: uint256
) -> uint256:
    """
    @notice Posts a job and escrows its payment. For ETH pass the zero
            address as `asset` and send exactly `amount` wei; for an
            allow-listed ERC-20 approve the market first and send no ETH.
            A token that delivers less than `amount` is refused.
    @param spec_hash keccak256 of the job's canonical JSON spec.
    @param work_units The spec's work units (for a matmul 2*m*n*k), non-zero.
    @param asset The zero address for ETH, else an allow-listed ERC-20.
    @param amount Escrow in the asset's base unit, in [1, 2**96 - 1].
    @param deadline Unix time by which results must be submitted, after
           now and at most `max_horizon` seconds from now.
    @return uint256 The new job id.
    """
    pausable._require_not_paused()
    if asset == empty(address):
        assert msg.value == amount, "market: wrong eth amount"
    else:
        assert msg.value == 0, "market: eth sent with token job"
    job_id: uint256 = self._open_job(spec_hash, work_units, asset, amount, deadline)
    if asset != empty(address):
        self._pull_token(asset, amount)
    return job_id


@external
@payable
@nonreentrant
def create_jobs(requests: DynArray[JobRequest, MAX_BATCH]) -> uint256:
    """
    @notice Posts many jobs in one transaction. `msg.value` must equal the
            sum of the ETH jobs' amounts; each ERC-20 is pulled once for the
            sum of its jobs.
    @param requests The jobs, each as for `create_job`.
    @return uint256 The id of the first job; the others follow in order.
    """
    pausable._require_not_paused()
    assert len(requests) != 0, "market: empty batch"
    first: uint256 = self.next_job_id
    eth_total: uint256 = 0
    pulls: DynArray[Payout, MAX_BATCH] = []
    for req: JobRequest in requests:
        self._open_job(req.spec_hash, req.work_units, req.asset, req.amount, req.deadline)
        if req.asset == empty(address):
            eth_total += req.amount
        else:
            pulls = self._add_payout(pulls, empty(address), req.asset, req.amount, 0, 0)
    assert msg.value == eth_total, "market: wrong eth amount"
    for pull: Payout in pulls:
        self._pull_token(pull.asset, pull.amount)
    return first


@external
@nonreentrant
def refund(job_id: uint256):
    """
    @notice Returns an unsettled job's escrow to its requester (credited,
            then `withdraw`). Anyone may call it once the deadline has
            passed and, if the job has open submissions, the settlement
            grace after it too. Works while paused.
    @param job_id The job.
    """
    terms: uint256 = self._terms[job_id]
    assert self._job_status(terms) == STATUS_OPEN, "market: job not open"
    deadline: uint256 = self._job_deadline(terms)
    assert block.timestamp > deadline, "market: deadline not passed"
    if self._job_submissions(terms) != 0:
        assert block.timestamp > deadline + self.refund_grace, "market: settlement grace running"
    self._close_job(job_id, terms, STATUS_REFUNDED)


@external
@nonreentrant
def cancel(job_id: uint256):
    """
    @notice Lets the requester withdraw a job no worker has committed to,
            at any time; the escrow is credited back. Works while paused.
    @param job_id The job.
    """
    terms: uint256 = self._terms[job_id]
    assert self._job_status(terms) == STATUS_OPEN, "market: job not open"
    assert self._job_requester(job_id) == msg.sender, "market: not requester"
    assert self._job_submissions(terms) == 0, "market: job has submissions"
    self._close_job(job_id, terms, STATUS_CANCELLED)


@external
@view
def job(job_id: uint256) -> Job:
    """
    @notice A job's terms and state. `status` is 0 for an unknown id, then
            1 open, 2 paid, 3 refunded, 4 cancelled.
    @param job_id The job.
    @return Job The unpacked job.
    """
    terms: uint256 = self._terms[job_id]
    return Job(
        requester=self._job_requester(job_id),
        asset=self.assets[self._job_asset_id(terms)],
        amount=self._job_amount(terms),
        work_units=convert(self._job_work_units(terms), uint64),
        deadline=self._job_deadline(terms),
        status=convert(self._job_status(terms), uint8),
        submissions=self._job_submissions(terms),
    )


@external
@view
def spec_tag(job_id: uint256) -> uint256:
    """
    @notice The 128-bit tag the market keeps of a job's spec hash: the top
            half of keccak256(spec_hash ++ the hash of the block before the
            one that created the job). Disputes check a job's terms against
            it.
    @param job_id The job.
    @return uint256 The tag (0 for an unknown job).
    """
    return self._job_tag(job_id, self._terms[job_id])


@internal
def _open_job(spec_hash: bytes32, work_units: uint64, asset: address, amount: uint256, deadline: uint256) -> uint256:
    # Checks every term, stores the packed job and logs it; pulls nothing.
    assert spec_hash != empty(bytes32), "market: empty spec hash"
    assert work_units != 0, "market: zero work units"
    assert amount != 0, "market: zero amount"
    assert amount <= MAX_AMOUNT, "market: amount too large"
    assert deadline > block.timestamp, "market: deadline in past"
    assert deadline <= block.timestamp + self.max_horizon, "market: deadline too far"
    index: uint256 = 0
    if asset != empty(address):
        assert self.asset_allowed[asset], "market: asset not allowed"
        index = convert(self.asset_id[asset], uint256)

    job_id: uint256 = self.next_job_id
    self.next_job_id = job_id + 1
    # deadline < 2**40 holds while max_horizon <= 365 days until year 36812.
    # The 128-bit spec tag binds the spec hash on-chain at no extra storage: a
    # dispute passes the job's terms, and they count only if the spec they
    # write has this tag. The parent block's hash salts it, so two specs that
    # share a tag cannot be prepared at leisure (a collision takes 2**64
    # hashes within one block time); once the job exists, matching its tag
    # takes 2**128.
    tag: uint256 = self._spec_tag(spec_hash, blockhash(block.number - 1))
    self._terms[job_id] = self._pack_job(amount, work_units, deadline, index, tag & _MASK_32)
    self._parties[job_id] = convert(msg.sender, uint256) | ((tag >> 32) << _TAG_HI_SHIFT)
    log JobCreated(
        job_id=job_id,
        requester=msg.sender,
        spec_hash=spec_hash,
        asset=asset,
        amount=amount,
        work_units=work_units,
        deadline=deadline,
    )
    return job_id


@internal
def _pull_token(asset: address, amount: uint256):
    # Counts what arrived, so a fee-on-transfer token cannot under-fund escrow.
    before: uint256 = staticcall IERC20(asset).balanceOf(self)
    assert extcall IERC20(asset).transferFrom(msg.sender, self, amount, default_return_value=True), "market: token transfer failed"
    assert staticcall IERC20(asset).balanceOf(self) - before == amount, "market: token delivered less than amount"


@internal
def _close_job(job_id: uint256, terms: uint256, status: uint256):
    # Refund or cancel: credit the escrow back to the requester.
    requester: address = self._job_requester(job_id)
    self._terms[job_id] = self._with_status(terms, status)
    asset: address = self.assets[self._job_asset_id(terms)]
    amount: uint256 = self._job_amount(terms)
    self.credited[requester][asset] += amount
    if status == STATUS_REFUNDED:
        log JobRefunded(job_id=job_id, requester=requester, amount=amount)
    else:
        log JobCancelled(job_id=job_id, requester=requester, amount=amount)


# ============================================================================
# BONDS AND SUBMISSIONS
# ============================================================================

@external
@payable
def register():
    """
    @notice Bonds (or tops up) `msg.value` wei. The bond after this call
            must be at least `min_bond`. A pending unbonding is cancelled:
            the whole bond is active again.
    """
    pausable._require_not_paused()
    bond: uint256 = self.bonds[msg.sender] + msg.value
    assert bond >= self.min_bond, "market: bond below minimum"
    self.bonds[msg.sender] = bond
    self.unbonding_at[msg.sender] = 0
    log Bonded(worker=msg.sender, amount=msg.value, bond=bond)


@external
def request_unbond():
    """
    @notice Starts the unbonding delay; the worker can no longer submit,
            and its bond stays slashable until it is withdrawn.
    """
    assert self.bonds[msg.sender] != 0, "market: no bond"
    assert self.unbonding_at[msg.sender] == 0, "market: already unbonding"
    available_at: uint256 = block.timestamp + self.unbonding_delay
    self.unbonding_at[msg.sender] = available_at
    log UnbondRequested(worker=msg.sender, available_at=available_at)


@external
@nonreentrant
def withdraw_bond():
    """
    @notice Sends the whole bond back once the unbonding delay has passed.
            Works while paused.
    """
    available_at: uint256 = self.unbonding_at[msg.sender]
    assert available_at != 0, "market: not unbonding"
    assert block.timestamp >= available_at, "market: bond still locked"
    amount: uint256 = self.bonds[msg.sender]
    assert amount != 0, "market: no bond"
    self.bonds[msg.sender] = 0
    self.unbonding_at[msg.sender] = 0
    log BondWithdrawn(worker=msg.sender, amount=amount)
    self._send(msg.sender, empty(address), amount)


@external
def submit_result(job_id: uint256, commitment: bytes32):
    """
    @notice Commits to a result for an open job before its deadline, moving
            `min_bond` of the caller's free bond into the submission's stake
            (each live submission holds its own, so occupying `s` submission
            slots puts `s` bonds at risk). The caller must not be unbonding.
            Serve the result only after this transaction is mined.
    @param job_id The job.
    @param commitment keccak256(abi.encodePacked(worker, result_root)).
    """
    pausable._require_not_paused()
    stake: uint256 = self.min_bond
    self._commit(job_id, commitment, stake)
    self._take_stakes(msg.sender, stake, 1)


@external
def submit_results(commits: DynArray[ResultCommit, MAX_BATCH]):
    """
    @notice Commits to many results in one transaction, each as for
            `submit_result` (the free bond must cover `min_bond` for each);
            one bad item reverts the whole call.
    @param commits The (job id, commitment) pairs.
    """
    pausable._require_not_paused()
    assert len(commits) != 0, "market: empty batch"
    stake: uint256 = self.min_bond
    for c: ResultCommit in commits:
        self._commit(c.job_id, c.commitment, stake)
    self._take_stakes(msg.sender, stake, len(commits))


@external
def release(job_ids: DynArray[uint256, MAX_BATCH]) -> uint256:
    """
    @notice Returns the caller's stakes on jobs that no longer take
            submissions (paid to another worker, refunded, cancelled, or
            past their deadline) to its free bond. The submission stays
            live: an INVALID verdict on it still slashes the bond.
    @param job_ids Jobs on which the caller has a stake.
    @return uint256 The amount returned to the bond.
    """
    total: uint256 = 0
    for job_id: uint256 in job_ids:
        info: uint256 = self._submissions[job_id][msg.sender].info
        stake: uint256 = self._sub_stake(info)
        assert stake != 0, "market: nothing staked on job"
        terms: uint256 = self._terms[job_id]
        assert (
            self._job_status(terms) != STATUS_OPEN or block.timestamp > self._job_deadline(terms)
        ), "market: job still open"
        # The stake goes back; the block stays (see `_commit`).
        self._submissions[job_id][msg.sender].info = self._pack_sub(self._sub_block(info), 0)
        total += stake
        log StakeReleased(job_id=job_id, worker=msg.sender, amount=stake)
    self.bonds[msg.sender] += total
    return total


@external
@view
def submissions(job_id: uint256, worker: address) -> Submission:
    """
    @notice A worker's live submission to a job (all zero if none; the
            block stays after a slash, the stake is zero once returned).
    @param job_id The job.
    @param worker The worker.
    @return Submission The commitment, its block and its stake.
    """
    slot: SubmissionSlot = self._submissions[job_id][worker]
    return Submission(
        commitment=slot.commitment, block_number=self._sub_block(slot.info), stake=self._sub_stake(slot.info)
    )


@internal
def _take_stakes(worker: address, stake: uint256, count: uint256):
    # Moves `count` stakes from the free bond (after the commits, so a bad item's own
    # reason is the one reported; a revert here undoes them).
    assert self.unbonding_at[worker] == 0, "market: unbonding"
    bond: uint256 = self.bonds[worker]
    assert bond >= stake * count, "market: not bonded"
    self.bonds[worker] = bond - stake * count


@internal
def _commit(job_id: uint256, commitment: bytes32, stake: uint256):
    # One live commitment per worker per job; at most MAX_SUBMISSIONS live per job.
    assert commitment != empty(bytes32), "market: empty commitment"
    terms: uint256 = self._terms[job_id]
    assert self._job_status(terms) == STATUS_OPEN, "market: job not open"
    assert block.timestamp <= self._job_deadline(terms), "market: deadline passed"
    previous: SubmissionSlot = self._submissions[job_id][msg.sender]
    assert previous.commitment == empty(bytes32), "market: already submitted"
    # A submission is named by its block in attestations: one per block, so a
    # verdict on a slashed submission never matches its successor.
    assert self._sub_block(previous.info) != block.number, "market: resubmit in a later block"
    assert self._job_submissions(terms) < MAX_SUBMISSIONS, "market: too many submissions"
    self._terms[job_id] = self._with_submission_added(terms)
    self._submissions[job_id][msg.sender] = SubmissionSlot(
        commitment=commitment, info=self._pack_sub(block.number, stake)
    )
    log ResultSubmitted(
        job_id=job_id, worker=msg.sender, commitment=commitment, block_number=block.number, stake=stake
    )


# ============================================================================
# SETTLEMENT
# ============================================================================

@external
def settle(
    attestations: DynArray[Attestation, MAX_BATCH], valid_until: uint256, signatures: DynArray[IOracleSet.Signature, MAX_ORACLES]
):
    """
    @notice Settles a batch of attestations signed as one EIP-712
            `Settlement` by at least `threshold` distinct current, bonded
            oracles, signatures ordered by strictly ascending signer
            address, no later than the signed `valid_until` (a timestamp).
            Anyone may relay. VALID marks the job paid and records its work
            units in the current epoch; INVALID slashes the worker's bond and
            reopens the submission slot. The money moves when the batch is
            final, `challenge_window` seconds from now (`finalize`); until
            then a dispute can refute a verdict. VALID items for jobs no
            longer open, items whose commitment and submission block are not
            the worker's live submission, and items with other work units are
            skipped with `AttestationSkipped`. An INVALID verdict on a live
            submission slashes even if the job has since been paid or
            refunded. Works while paused.
    @param attestations The items, at most 128.
    @param valid_until The last timestamp at which the signatures count.
    @param signatures EIP-2098 compact signatures of `settlement_digest`.
    """
    assert len(attestations) != 0, "market: empty batch"
    # Signatures expire: a batch cannot be kept and relayed weeks later, and
    # a key's signatures from before it was (re-)added to the set have lapsed.
    assert block.timestamp <= valid_until, "market: signatures expired"
    digest: bytes32 = self._settlement_digest(attestations, valid_until)
    signers: DynArray[address, MAX_ORACLES] = staticcall ORACLES.quorum(digest, signatures)

    epoch: uint256 = self._current_epoch()
    final_at: uint256 = block.timestamp + self.challenge_window
    # Work units per worker (recorded now), and what the batch holds until it is
    # final: ETH (escrow, stakes, slashed bonds) and each ERC-20's escrow. Summed
    # in place (an internal call would copy the arrays, 20 KB each, per item).
    works: DynArray[Payout, MAX_BATCH] = []
    held_eth: uint256 = 0
    held: DynArray[Payout, MAX_BATCH] = []
    items: bytes32 = empty(bytes32)
    # settled + slashed <= len(attestations) <= MAX_BATCH: the counts
    # cannot overflow, and the skipped count cannot underflow.
    settled: uint256 = 0
    slashed: uint256 = 0
    for a: Attestation in attestations:
        assert a.verdict == VERDICT_VALID or a.verdict == VERDICT_INVALID, "market: unknown verdict"
        terms: uint256 = self._terms[a.job_id]
        # A VALID verdict needs an open job; an INVALID one slashes a live
        # submission even after the job was paid or refunded, so a cheater
        # cannot escape by racing an honest worker or the deadline.
        if a.verdict == VERDICT_VALID and self._job_status(terms) != STATUS_OPEN:
            log AttestationSkipped(job_id=a.job_id, worker=a.worker, reason=SKIP_JOB_NOT_OPEN)
            continue
        # The submission block tells a re-commit of the same result from the
        # submission an old verdict was about, so no verdict is replayed.
        live: SubmissionSlot = self._submissions[a.job_id][a.worker]
        if (
            a.commitment == empty(bytes32)
            or live.commitment != a.commitment
            or self._sub_block(live.info) != a.submission_block
        ):
            log AttestationSkipped(job_id=a.job_id, worker=a.worker, reason=SKIP_NO_SUCH_SUBMISSION)
            continue
        if self._job_work_units(terms) != convert(a.work_units, uint256):
            log AttestationSkipped(job_id=a.job_id, worker=a.worker, reason=SKIP_WORK_UNITS_MISMATCH)
            continue

        asset: address = empty(address)
        amount: uint256 = 0
        stake: uint256 = 0
        if a.verdict == VERDICT_VALID:
            self._terms[a.job_id] = self._with_status(terms, STATUS_PAID)
            asset_index: uint256 = self._job_asset_id(terms)
            if asset_index != 0:
                asset = self.assets[asset_index]
            amount = self._job_amount(terms)
            # The paid submission is done with: the slot is cleared (one
            # submission, one final verdict); its stake waits in the batch.
            stake = self._sub_stake(live.info)
            self._submissions[a.job_id][a.worker] = empty(SubmissionSlot)
            units: uint256 = convert(a.work_units, uint256)
            found: bool = False
            for k: uint256 in range(len(works), bound=MAX_BATCH):
                if works[k].worker == a.worker:
                    works[k].work_units += units
                    found = True
                    break
            if not found:
                works.append(Payout(worker=a.worker, asset=empty(address), amount=0, work_units=units, stake=0))
            held_eth += stake
            if asset_index == 0:
                held_eth += amount
            else:
                found = False
                for k: uint256 in range(len(held), bound=MAX_BATCH):
                    if held[k].asset == asset:
                        held[k].amount += amount
                        found = True
                        break
                if not found:
                    held.append(Payout(worker=empty(address), asset=asset, amount=amount, work_units=0, stake=0))
            settled = unsafe_add(settled, 1)
            log JobSettled(
                job_id=a.job_id, worker=a.worker, commitment=a.commitment, transcript_hash=a.transcript_hash, stake=stake
            )
        else:
            # The submission counter is at least 1 here: this worker's live
            # submission is counted in it. The block stays (see `_commit`).
            self._submissions[a.job_id][a.worker] = SubmissionSlot(
                commitment=empty(bytes32), info=self._pack_sub(self._sub_block(live.info), 0)
            )
            self._terms[a.job_id] = self._with_submission_removed(terms)
            amount = self.bonds[a.worker] + self._sub_stake(live.info)
            self.bonds[a.worker] = 0
            held_eth += amount
            slashed = unsafe_add(slashed, 1)
            log WorkerSlashed(
                job_id=a.job_id,
                worker=a.worker,
                commitment=a.commitment,
                requester=self._job_requester(a.job_id),
                amount=amount,
                transcript_hash=a.transcript_hash,
            )
        items = records._chain_item(
            items,
            records.SettledItem(
                job_id=a.job_id,
                worker=a.worker,
                commitment=a.commitment,
                verdict=a.verdict,
                asset=asset,
                amount=amount,
                work_units=a.work_units,
                stake=stake,
                transcript_hash=a.transcript_hash,
            ),
        )

    batch_id: uint256 = 0
    if settled != 0 or slashed != 0:
        batch_id = self.next_batch_id
        self.next_batch_id = batch_id + 1
        self.batch_record[batch_id] = records._record_hash(batch_id, epoch, final_at, signers, items)
        # Only work a dispute could remove holds the epoch's claims back.
        if settled != 0 and final_at > self.epoch_final_at[epoch]:
            self.epoch_final_at[epoch] = final_at
        if final_at > self.last_final_at:
            self.last_final_at = final_at
        self.pending[empty(address)] += held_eth
        for h: Payout in held:
            self.pending[h.asset] += h.amount

    total_work: uint256 = 0
    for w: Payout in works:
        self.epoch_work[epoch][w.worker] += w.work_units
        total_work += w.work_units
        log WorkRecorded(epoch=epoch, worker=w.worker, work_units=w.work_units)
    if total_work != 0:
        self.epoch_total_work[epoch] += total_work

    log BatchSettled(
        digest=digest,
        batch_id=batch_id,
        epoch=epoch,
        final_at=final_at,
        signers=signers,
        settled=settled,
        slashed=slashed,
        skipped=unsafe_sub(unsafe_sub(len(attestations), settled), slashed),
    )


@external
@nonreentrant
def finalize(
    batch_id: uint256,
    epoch: uint256,
    final_at: uint256,
    signers: DynArray[address, MAX_ORACLES],
    items: DynArray[records.SettledItem, MAX_BATCH],
):
    """
    @notice Pays a settled batch once its challenge window has ended: each
            VALID item's escrow is credited to its worker (then `withdraw`)
            and its stake returns to the worker's bond; each INVALID item's
            slashed bond is credited in ETH to the job's requester; refuted
            and overturned items pay nothing (`undo` settled them). Anyone
            may call it, once per batch, with the batch as `settle` logged it
            (`BatchSettled` and, in log order, its `JobSettled` and
            `WorkerSlashed` items; a dispute's `Refuted` or `Overturned`
            marks an item). Works while paused.
    @param batch_id The batch, from `BatchSettled`.
    @param epoch The epoch it recorded work in.
    @param final_at When its challenge window ends.
    @param signers The oracles whose signatures counted.
    @param items Its items.
    """
    self._check_record(batch_id, epoch, final_at, signers, items)
    assert block.timestamp >= final_at, "market: challenge window running"
    self.batch_record[batch_id] = empty(bytes32)

    # Summed per (worker, asset) in place, so each balance is written once (an
    # internal call would copy the array, 20 KB, per item).
    payouts: DynArray[Payout, MAX_BATCH] = []
    released_eth: uint256 = 0
    paid: uint256 = 0
    slashed: uint256 = 0
    for item: records.SettledItem in items:
        if item.verdict == VERDICT_VALID:
            found: bool = False
            for k: uint256 in range(len(payouts), bound=MAX_BATCH):
                if payouts[k].worker == item.worker and payouts[k].asset == item.asset:
                    payouts[k].amount += item.amount
                    payouts[k].stake += item.stake
                    found = True
                    break
            if not found:
                payouts.append(
                    Payout(worker=item.worker, asset=item.asset, amount=item.amount, work_units=0, stake=item.stake)
                )
            released_eth += item.stake
            paid = unsafe_add(paid, 1)
        elif item.verdict == VERDICT_INVALID:
            self.credited[self._job_requester(item.job_id)][empty(address)] += item.amount
            released_eth += item.amount
            slashed = unsafe_add(slashed, 1)
    for p: Payout in payouts:
        self.credited[p.worker][p.asset] += p.amount
        if p.stake != 0:
            self.bonds[p.worker] += p.stake
        if p.asset == empty(address):
            released_eth += p.amount
        else:
            self.pending[p.asset] -= p.amount
    if released_eth != 0:
        self.pending[empty(address)] -= released_eth
    log BatchFinalized(batch_id=batch_id, paid=paid, slashed=slashed)


@external
@nonreentrant
def undo(
    batch_id: uint256,
    record: bytes32,
    epoch: uint256,
    signers: DynArray[address, MAX_ORACLES],
    item: records.SettledItem,
    disputer: address,
):
    """
    @notice Undoes a verdict a dispute proved wrong, `DISPUTES` only: it has
            checked the batch against its record, the challenge window and
            the proof, and hands over the batch's new record (the item marked
            REFUTED or OVERTURNED: `finalize` pays it nothing).
            A VALID item (refuted: an entry of the result is wrong): the job
            is open again with its escrow (a new worker can take it, or the
            requester refunds it after the deadline); the epoch loses the
            item's work units; the worker's free bond and the item's stake
            are taken (`Refuted`).
            An INVALID item (overturned: its witness entry is right): the
            worker's slashed bond and stake return to its bond; if the job is
            still open it is paid to the worker as if VALID (its escrow
            credited; no epoch work: rewards follow verdicts that stood)
            (`Overturned`).
            Either way the bonds of the oracles that signed the batch, and a
            refuted worker's, are credited in ETH, half (rounded down) to
            `disputer` and the rest to the party harmed: the requester of a
            refuted job, the worker of an overturned one.
    @param batch_id The batch.
    @param record Its record with the item marked.
    @param epoch The epoch it recorded work in.
    @param signers The oracles whose signatures settled it.
    @param item The item, as it was settled (VALID or INVALID).
    @param disputer Who proved the verdict wrong.
    """
    assert msg.sender == DISPUTES, "market: not the dispute contract"
    self.batch_record[batch_id] = record
    terms: uint256 = self._terms[item.job_id]
    # The oracle set sends the signers' bonds here (`__default__`).
    total: uint256 = extcall ORACLES.slash(signers)
    oracles_slashed: uint256 = total
    harmed: address = item.worker
    if item.verdict == VERDICT_VALID:
        # The job takes submissions again; the paid one no longer counts.
        self._terms[item.job_id] = self._with_submission_removed(self._with_status(terms, STATUS_OPEN))
        self.pending[item.asset] -= item.amount
        units: uint256 = convert(item.work_units, uint256)
        self.epoch_work[epoch][item.worker] -= units
        self.epoch_total_work[epoch] -= units
        worker_slashed: uint256 = self.bonds[item.worker] + item.stake
        self.bonds[item.worker] = 0
        self.pending[empty(address)] -= item.stake
        total += worker_slashed
        harmed = self._job_requester(item.job_id)
        log Refuted(
            batch_id=batch_id,
            job_id=item.job_id,
            worker=item.worker,
            disputer=disputer,
            requester=harmed,
            worker_slashed=worker_slashed,
            oracles_slashed=oracles_slashed,
        )
    else:
        self.pending[empty(address)] -= item.amount
        self.bonds[item.worker] += item.amount
        asset: address = empty(address)
        paid: uint256 = 0
        if self._job_status(terms) == STATUS_OPEN:
            self._terms[item.job_id] = self._with_status(terms, STATUS_PAID)
            asset = self.assets[self._job_asset_id(terms)]
            paid = self._job_amount(terms)
            self.credited[item.worker][asset] += paid
        log Overturned(
            batch_id=batch_id,
            job_id=item.job_id,
            worker=item.worker,
            disputer=disputer,
            returned=item.amount,
            asset=asset,
            paid=paid,
            oracles_slashed=oracles_slashed,
        )
    self.credited[disputer][empty(address)] += total // 2
    self.credited[harmed][empty(address)] += total - total // 2


@external
@payable
def __default__():
    """
    @notice Receives slashed oracle bonds from the oracle set; refuses ETH
            from anyone else (escrow comes in with `create_job`, bonds with
            `register`).
    """
    assert msg.sender == ORACLES.address, "market: unexpected ETH"


@internal
@view
def _check_record(
    batch_id: uint256,
    epoch: uint256,
    final_at: uint256,
    signers: DynArray[address, MAX_ORACLES],
    items: DynArray[records.SettledItem, MAX_BATCH],
):
    # Reverts unless these are the items and context of a batch not yet
    # final (a finalized or unknown batch has no record).
    record: bytes32 = self.batch_record[batch_id]
    assert record != empty(bytes32), "market: no pending batch"
    assert record == records._record_hash(
        batch_id, epoch, final_at, signers, records._items_hash(items, records.NO_ITEM, 0)
    ), "market: not the batch record"


@external
@nonreentrant
def withdraw(asset: address) -> uint256:
    """
    @notice Sends the caller everything credited to it in `asset` (escrow
            earned, refunds, slashed bonds). Works while paused.
    @param asset The zero address for ETH, else the ERC-20.
    @return uint256 The amount sent.
    """
    amount: uint256 = self.credited[msg.sender][asset]
    assert amount != 0, "market: nothing to withdraw"
    self.credited[msg.sender][asset] = 0
    log Withdrawn(account=msg.sender, asset=asset, amount=amount)
    self._send(msg.sender, asset, amount)
    return amount


@internal
@view
def _settlement_digest(attestations: DynArray[Attestation, MAX_BATCH], valid_until: uint256) -> bytes32:
    # EIP-712: hashStruct(Settlement) = keccak(typehash ++ keccak(hashStruct(a_0) ++ ...) ++ valid_until).
    hashes: DynArray[bytes32, MAX_BATCH] = []
    for a: Attestation in attestations:
        hashes.append(
            keccak256(
                abi_encode(
                    ATTESTATION_TYPEHASH,
                    a.job_id,
                    a.worker,
                    a.commitment,
                    a.submission_block,
                    a.work_units,
                    a.verdict,
                    a.transcript_hash,
                )
            )
        )
    # abi_encode of a lone dynamic array is (offset, length, items): skip 64 bytes.
    items: bytes32 = keccak256(slice(abi_encode(hashes), 64, 32 * len(hashes)))
    return eip712_domain_separator._hash_typed_data_v4(keccak256(abi_encode(SETTLEMENT_TYPEHASH, items, valid_until)))


@internal
@pure
def _add_payout(
    payouts: DynArray[Payout, MAX_BATCH],
    worker: address,
    asset: address,
    amount: uint256,
    work_units: uint256,
    stake: uint256,
) -> DynArray[Payout, MAX_BATCH]:
    # Sums into the entry for (worker, asset), so storage is written once each.
    result: DynArray[Payout, MAX_BATCH] = payouts
    for i: uint256 in range(len(result), bound=MAX_BATCH):
        if result[i].worker == worker and result[i].asset == asset:
            result[i].amount += amount
            result[i].work_units += work_units
            result[i].stake += stake
            return result
    result.append(Payout(worker=worker, asset=asset, amount=amount, work_units=work_units, stake=stake))
    return result


@internal
def _send(to: address, asset: address, amount: uint256):
    # The caller has already zeroed the balance being paid out.
    if asset == empty(address):
        ok: bool = raw_call(to, b"", value=amount, revert_on_failure=False)
        assert ok, "market: eth transfer failed"
    else:
        assert extcall IERC20(asset).transfer(to, amount, default_return_value=True), "market: token transfer failed"


# ============================================================================
# EMISSION
# ============================================================================

@external
@nonreentrant
def claim(epochs: DynArray[uint256, MAX_CLAIM_EPOCHS]) -> uint256:
    """
    @notice Mints the caller's share of each listed ended epoch's emission:
            `epoch_emission(e) * epoch_work(e, caller) // epoch_total_work(e)`,
            rounded down, once every verdict settled in the epoch is final
            (`epoch_final_at`). Each epoch can be claimed once. Works while
            paused.
    @param epochs Ended epochs in which the caller has unclaimed work.
    @return uint256 The tokens minted.
    """
    assert len(epochs) != 0, "market: empty batch"
    current: uint256 = self._current_epoch()
    total: uint256 = 0
    for e: uint256 in epochs:
        assert e < current, "market: epoch not ended"
        # A dispute can still remove work from the epoch until then.
        assert block.timestamp >= self.epoch_final_at[e], "market: epoch in challenge window"
        work: uint256 = self.epoch_work[e][msg.sender]
        assert work != 0, "market: nothing to claim"
        self.epoch_work[e][msg.sender] = 0
        # Rounds down: the shares of an epoch sum to at most its emission.
        # work <= epoch total, and emission < 2**128, so no overflow in practice;
        # the multiplication stays checked anyway.
        reward: uint256 = self._emission(e) * work // self.epoch_total_work[e]
        total += reward
        log RewardClaimed(worker=msg.sender, epoch=e, work_units=work, amount=reward)
    if total != 0:
        extcall TOKEN.mint(msg.sender, total)
    return total


@external
@view
def current_epoch() -> uint256:
    """
    @notice The epoch the chain is in now.
    @return uint256 (now - GENESIS) // EPOCH_LENGTH.
    """
    return self._current_epoch()


@external
@view
def epoch_emission(epoch: uint256) -> uint256:
    """
    @notice Tokens emitted in `epoch`, shared by its verified work.
    @param epoch The epoch.
    @return uint256 INITIAL_EMISSION >> (epoch // HALVING_EPOCHS).
    """
    return self._emission(epoch)


@internal
@view
def _current_epoch() -> uint256:
    # GENESIS is the deployment time, never in the future.
    return unsafe_sub(block.timestamp, GENESIS) // EPOCH_LENGTH


@internal
@view
def _emission(epoch: uint256) -> uint256:
    halvings: uint256 = epoch // HALVING_EPOCHS
    if halvings >= MAX_HALVINGS:
        return 0
    return INITIAL_EMISSION >> halvings


@internal
@view
def _schedule_total() -> uint256:
    # Each halving period emits HALVING_EPOCHS * emission; 2**32 * 2**128 fits.
    total: uint256 = 0
    for h: uint256 in range(MAX_HALVINGS):
        total += HALVING_EPOCHS * (INITIAL_EMISSION >> h)
    return total


# ============================================================================
# ADMIN
# ============================================================================

@external
def pause():
    """
    @notice Stops new jobs, bonds and submissions. Refunds, cancels,
            settlement, withdrawals and claims go on. Owner only.
    """
    ownable._check_owner()
    pausable._pause()


@external
def unpause():
    """
    @notice Lifts the pause. Owner only.
    """
    ownable._check_owner()
    pausable._unpause()


@external
def set_asset_allowed(asset: address, allowed: bool):
    """
    @notice Allows or stops new jobs in an ERC-20. Jobs already escrowed in
            it, and balances credited in it, are never affected. Owner only.
    @param asset The ERC-20 (not the zero address).
    @param allowed True to accept new jobs in it.
    """
    ownable._check_owner()
    assert asset != empty(address), "market: eth is always allowed"
    index: uint8 = self.asset_id[asset]
    if index == 0:
        count: uint256 = self.asset_count
        assert count < MAX_ASSETS, "market: too many assets"
        index = convert(count, uint8)
        self.asset_id[asset] = index
        self.assets[count] = asset
        self.asset_count = count + 1
    self.asset_allowed[asset] = allowed
    log AssetAllowed(asset=asset, asset_id=index, allowed=allowed)


@external
def set_parameters(params: Parameters):
    """
    @notice Sets every bonded and timed parameter at once. Owner only.
            Batches settled before keep their `final_at`, unbondings already
            requested keep their time, and a worker bond now below
            `min_bond` must be topped up before it submits again.
    @param params `min_bond` in wei, in (0, 10**24];
           `unbonding_delay`, `reveal_window`, `refund_grace` and
           `max_horizon` in seconds, in [60, 365 days]; `challenge_window` in
           seconds, in [60, 30 days]; with `reveal_window <= refund_grace` and
           `reveal_window + refund_grace + challenge_window <=
           unbonding_delay`.
    """
    ownable._check_owner()
    self._set_parameters(params)


@internal
def _set_parameters(p: Parameters):
    assert p.min_bond != 0 and p.min_bond <= MAX_MIN_BOND, "market: bad min bond"
    assert p.unbonding_delay >= MIN_PERIOD and p.unbonding_delay <= MAX_PERIOD, "market: bad unbonding delay"
    assert p.reveal_window >= MIN_PERIOD and p.reveal_window <= MAX_PERIOD, "market: bad reveal window"
    assert p.refund_grace >= MIN_PERIOD and p.refund_grace <= MAX_PERIOD, "market: bad refund grace"
    assert p.max_horizon >= MIN_PERIOD and p.max_horizon <= MAX_PERIOD, "market: bad max horizon"
    assert (
        p.challenge_window >= MIN_PERIOD and p.challenge_window <= MAX_CHALLENGE_WINDOW
    ), "market: bad challenge window"
    # A worker who commits and then unbonds must stay slashable until the
    # oracles have had the reveal window plus the settlement grace to post an
    # INVALID verdict, and a VALID one on it can no longer be disputed; and a
    # job with submissions is never refunded before a committed result could
    # have been served.
    assert p.refund_grace >= p.reveal_window, "market: refund grace below reveal window"
    assert (
        p.unbonding_delay >= p.reveal_window + p.refund_grace + p.challenge_window
    ), "market: unbonding delay too short"
    self.min_bond = p.min_bond
    self.unbonding_delay = p.unbonding_delay
    self.reveal_window = p.reveal_window
    self.refund_grace = p.refund_grace
    self.max_horizon = p.max_horizon
    self.challenge_window = p.challenge_window
    log UpdateParameters(
        min_bond=p.min_bond,
        unbonding_delay=p.unbonding_delay,
        reveal_window=p.reveal_window,
        refund_grace=p.refund_grace,
        max_horizon=p.max_horizon,
        challenge_window=p.challenge_window,
    )
