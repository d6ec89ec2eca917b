# pragma version ~=0.4.3
"""
@title pouw Disputes
@custom:contract-name Disputes
@license GNU Affero General Public License v3.0 only
@notice Refutes a VALID verdict on a matrix product by one entry, in one
        transaction, while its batch is still in the challenge window.

        A matrix product's entries are independent dot products: to show that
        a committed result C is wrong it is enough to open the chunk of row i
        of C holding C[i][j] against the worker's commitment and recompute
        that entry from row i of A and column j of B. Anyone may call
        `dispute_seeded` (inputs regenerated on-chain from the job's seed) or
        `dispute_blob` (rows of the requester's inputs opened against the
        input roots) with:

        - the batch as `JobMarket.settle` logged it, checked against the
          market's `batch_record` (`batch_record_hash`), and the index of the
          VALID item in it;
        - the job's terms (`spec_terms.MatmulTerms`) and the hash of the block
          before the one that created the job: their spec hash must give the
          128-bit tag the market stored (`JobMarket.spec_tag`), so the terms
          are the job's;
        - the result's Merkle root, which with the worker's address must
          hash to the settled commitment, and the chunk of row i of C that
          holds C[i][j] with its proof: the result tree's leaves are the rows'
          chunks (`entry_check._chunks_per_row`: 512 to 1024 bytes where n
          allows, the whole row, up to 16 KiB, for an odd n or a row under
          1 KiB), so a dispute sends 512 bytes of C at n = 4096, not 16 KiB.

        The entry rule (`entry_check`): int8, C[i][j] != the exact dot
        product; fp32, C[i][j] outside the error bound of every fp32 summation
        order (decided in integers). A proof that shows a right entry, a bad
        opening or anything not matching the record reverts and moves
        nothing. On success the market undoes the verdict (`JobMarket.undo`):
        the job is open again with its escrow, the epoch loses the work, and
        the worker's bond and the signers' oracle bonds go half to the
        disputer and half to the requester.

        The other way round, `overturn_seeded` / `overturn_blob` undo an
        INVALID verdict whose witness is right. An INVALID matmul verdict
        names, in the clear, the entry C[i][j] the oracles found wrong: its
        transcript hash is the first 16 bytes of the transcript's keccak256,
        then i and j as 8-byte big-endian integers (`_witness`), so a worker
        reads it from `WorkerSlashed`. Anyone who opens that entry and shows
        it satisfies the entry rule (with the same openings as a dispute) has
        the market (`JobMarket.undo`) return the worker's slashed bond, pay it
        the job's escrow if the job is still open, and split the signers'
        oracle bonds between the caller and the worker. An INVALID verdict
        that names no entry of the matrix (a result not delivered) stays the
        oracles' word.

        Seeded inputs are the keccak counter-mode stream of spec version 2
        and later (oracle/compute/keccak_inputs.py); a seeded job of an
        earlier version is not disputable here. Blob jobs of any version
        are: the B blob's rows are B's columns (column-major). fp32 blob jobs,
        MLP and LLM verdicts are not disputable on-chain.
@custom:security This contract holds no funds and no state; the market trusts
                 it (and only it) to have checked a refutation, so it is
                 deployed once with the market and cannot be changed.
"""

from modules import batch_record as records
from modules import entry_check
from modules import spec_terms


interface JobMarket:
    def batch_record(batch_id: uint256) -> bytes32: view
    def spec_tag(job_id: uint256) -> uint256: view
    def undo(
        batch_id: uint256,
        record: bytes32,
        epoch: uint256,
        signers: DynArray[address, records.MAX_ORACLES],
        item: records.SettledItem,
        disputer: address,
    ): nonpayable


# @dev A settled batch as `JobMarket.settle` logged it (`BatchSettled` and
# its items in log order, earlier refutations marked).
struct Batch:
    batch_id: uint256
    epoch: uint256
    final_at: uint256
    signers: DynArray[address, records.MAX_ORACLES]
    items: DynArray[records.SettledItem, records.MAX_BATCH]


# @dev The verdicts a dispute can undo: a VALID one by a wrong entry, an
# INVALID one by its witness entry proven right.
VERDICT_VALID: constant(uint8) = 1
VERDICT_INVALID: constant(uint8) = 2
# @dev The first spec version whose seeded inputs are the keccak stream.
KECCAK_INPUTS_VERSION: constant(uint256) = 2

# @dev The market whose verdicts this contract refutes.
MARKET: public(immutable(JobMarket))


# @dev A dispute proved entry (`row`, `col`) of the result settled as item
# `index` of batch `batch_id` wrong; the market logged `Refuted` with the
# money it moved.
event EntryRefuted:
    batch_id: indexed(uint256)
    job_id: indexed(uint256)
    disputer: indexed(address)
    index: uint256
    row: uint256
    col: uint256


# @dev A dispute proved the witness entry (`row`, `col`) of the INVALID verdict
# settled as item `index` of batch `batch_id` right; the market logged
# `Overturned` with the money it moved.
event WitnessOverturned:
    batch_id: indexed(uint256)
    job_id: indexed(uint256)
    disputer: indexed(address)
    index: uint256
    row: uint256
    col: uint256


@deploy
def __init__(market: address):
    """
    @notice Deploys the dispute contract for the market that will be
            deployed at `market` (the market checks it).
    @param market The market's address.
    """
    MARKET = JobMarket(market)


@external
def dispute_seeded(
    batch: Batch,
    index: uint256,
    terms: spec_terms.MatmulTerms,
    salt: bytes32,
    c_root: bytes32,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
):
    """
    @notice Refutes item `index` of `batch`, a VALID verdict on a seeded
            matmul job, by entry C[i][j]: rows of A and columns of B are
            regenerated from the seed. Reverts, moving nothing, unless the
            batch is in its challenge window, the item is VALID, the terms
            are the job's, `c_root` is the worker's committed root, `c_chunk`
            opens it as the chunk of row i holding column j, and C[i][j]
            breaks the entry rule.
    @param batch The batch, as settled (earlier refutations marked).
    @param index The item.
    @param terms The job's terms (seeded, spec version 2 or later).
    @param salt The hash of the block before the one that created the job.
    @param c_root The Merkle root of the worker's result (leaves: row chunks).
    @param i The entry's row.
    @param j The entry's column.
    @param c_chunk The chunk of row i of C holding column j, as stored (n/p
           little-endian int32 or float32, `entry_check._chunks_per_row`).
    @param c_proof Its Merkle proof (leaf i * p + j // (n/p) of m * p).
    """
    item: records.SettledItem = self._check(batch, index, terms, salt, c_root, VERDICT_VALID)
    assert self._seeded_wrong(terms, c_root, i, j, c_chunk, c_proof), "disputes: the entry is right"
    self._undo(batch, index, item, i, j)


@external
def dispute_blob(
    batch: Batch,
    index: uint256,
    terms: spec_terms.MatmulTerms,
    salt: bytes32,
    c_root: bytes32,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
    a_row: Bytes[4096],
    a_proof: DynArray[bytes32, 64],
    b_col: Bytes[4096],
    b_proof: DynArray[bytes32, 64],
):
    """
    @notice Refutes item `index` of `batch`, a VALID verdict on an int8
            matmul job with blob inputs, by entry C[i][j]: row i of A and
            column j of B (row j of the column-major B blob) are opened
            against the input roots of the job's spec. Reverts, moving
            nothing, on the same conditions as `dispute_seeded`, or if an
            input row does not open its root.
    @param batch The batch, as settled (earlier refutations marked).
    @param index The item.
    @param terms The job's terms (int8, blob inputs).
    @param salt The hash of the block before the one that created the job.
    @param c_root The Merkle root of the worker's result (leaves: row chunks).
    @param i The entry's row.
    @param j The entry's column.
    @param c_chunk The chunk of row i of C holding column j, as stored (n/p
           little-endian int32, `entry_check._chunks_per_row`).
    @param c_proof Its Merkle proof (leaf i * p + j // (n/p) of m * p).
    @param a_row Row i of A (k signed bytes).
    @param a_proof Its proof against A's root.
    @param b_col Column j of B (k signed bytes).
    @param b_proof Its proof against B's root.
    """
    item: records.SettledItem = self._check(batch, index, terms, salt, c_root, VERDICT_VALID)
    assert self._blob_wrong(
        terms, c_root, i, j, c_chunk, c_proof, a_row, a_proof, b_col, b_proof
    ), "disputes: the entry is right"
    self._undo(batch, index, item, i, j)


@external
def overturn_seeded(
    batch: Batch,
    index: uint256,
    terms: spec_terms.MatmulTerms,
    salt: bytes32,
    c_root: bytes32,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
):
    """
    @notice Overturns item `index` of `batch`, an INVALID verdict on a seeded
            matmul job, by proving its witness entry C[i][j] (named by the
            verdict's transcript hash, `_witness`) right: it satisfies the
            entry rule with the inputs regenerated from the seed. Reverts,
            moving nothing, unless the batch is in its challenge window, the
            item is INVALID, the terms are the job's, `c_root` is the worker's
            committed root, `c_chunk` opens it as the chunk holding the
            witness entry and the entry is right. A verdict naming no entry of
            the matrix (a result not delivered) cannot be overturned.
    @param batch The batch, as settled (earlier disputes marked).
    @param index The item.
    @param terms The job's terms (seeded, spec version 2 or later).
    @param salt The hash of the block before the one that created the job.
    @param c_root The Merkle root of the worker's result (leaves: row chunks).
    @param c_chunk The chunk of row i of C holding column j, as stored.
    @param c_proof Its Merkle proof (leaf i * p + j // (n/p) of m * p).
    """
    item: records.SettledItem = self._check(batch, index, terms, salt, c_root, VERDICT_INVALID)
    i: uint256 = 0
    j: uint256 = 0
    i, j = self._witness(item.transcript_hash)
    assert not self._seeded_wrong(terms, c_root, i, j, c_chunk, c_proof), "disputes: the witness entry is wrong"
    self._undo(batch, index, item, i, j)


@external
def overturn_blob(
    batch: Batch,
    index: uint256,
    terms: spec_terms.MatmulTerms,
    salt: bytes32,
    c_root: bytes32,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
    a_row: Bytes[4096],
    a_proof: DynArray[bytes32, 64],
    b_col: Bytes[4096],
    b_proof: DynArray[bytes32, 64],
):
    """
    @notice Overturns item `index` of `batch`, an INVALID verdict on an int8
            matmul job with blob inputs, by proving its witness entry C[i][j]
            right, row i of A and column j of B opened against the input
            roots. Reverts, moving nothing, on the same conditions as
            `overturn_seeded`, or if an input row does not open its root.
    @param batch The batch, as settled (earlier disputes marked).
    @param index The item.
    @param terms The job's terms (int8, blob inputs).
    @param salt The hash of the block before the one that created the job.
    @param c_root The Merkle root of the worker's result (leaves: row chunks).
    @param c_chunk The chunk of row i of C holding column j, as stored.
    @param c_proof Its Merkle proof (leaf i * p + j // (n/p) of m * p).
    @param a_row Row i of A (k signed bytes).
    @param a_proof Its proof against A's root.
    @param b_col Column j of B (k signed bytes).
    @param b_proof Its proof against B's root.
    """
    item: records.SettledItem = self._check(batch, index, terms, salt, c_root, VERDICT_INVALID)
    i: uint256 = 0
    j: uint256 = 0
    i, j = self._witness(item.transcript_hash)
    assert not self._blob_wrong(
        terms, c_root, i, j, c_chunk, c_proof, a_row, a_proof, b_col, b_proof
    ), "disputes: the witness entry is wrong"
    self._undo(batch, index, item, i, j)


@external
@pure
def batch_record_hash(batch: Batch) -> bytes32:
    """
    @notice The record the market keeps of a batch (`JobMarket.batch_record`):
            keccak256(abi.encode(batch_id, epoch, final_at,
            keccak256(abi.encode(signers)), h_n)) where h_0 = 0 and
            h_i = keccak256(abi.encode(h_{i-1}, items[i-1])).
    @param batch The batch.
    @return bytes32 The record.
    """
    return records._record_hash(
        batch.batch_id, batch.epoch, batch.final_at, batch.signers, records._items_hash(batch.items, records.NO_ITEM, 0)
    )


@internal
@view
def _check(
    batch: Batch, index: uint256, terms: spec_terms.MatmulTerms, salt: bytes32, c_root: bytes32, verdict: uint8
) -> records.SettledItem:
    # The checks every dispute shares: the batch is the market's record and in
    # its window, the item has `verdict`, the terms are the job's and `c_root`
    # is what the worker committed to. Returns the item.
    record: bytes32 = staticcall MARKET.batch_record(batch.batch_id)
    assert record != empty(bytes32), "disputes: no pending batch"
    assert record == records._record_hash(
        batch.batch_id, batch.epoch, batch.final_at, batch.signers, records._items_hash(batch.items, records.NO_ITEM, 0)
    ), "disputes: not the batch record"
    assert block.timestamp < batch.final_at, "disputes: challenge window over"
    assert index < len(batch.items), "disputes: no such item"
    item: records.SettledItem = batch.items[index]
    if verdict == VERDICT_VALID:
        assert item.verdict == VERDICT_VALID, "disputes: not a VALID verdict"
    else:
        assert item.verdict == VERDICT_INVALID, "disputes: not an INVALID verdict"
    spec_hash: bytes32 = spec_terms._matmul_spec_hash(terms)
    tag: uint256 = convert(keccak256(concat(spec_hash, salt)), uint256) >> 128
    assert tag == staticcall MARKET.spec_tag(item.job_id), "disputes: not the job's terms"
    assert keccak256(concat(convert(item.worker, bytes20), c_root)) == item.commitment, "disputes: not the committed root"
    return item


@internal
@pure
def _witness(transcript_hash: bytes32) -> (uint256, uint256):
    # The entry an INVALID matmul verdict names: its transcript hash's last 16
    # bytes, row then column, 8 bytes each, big-endian.
    h: uint256 = convert(transcript_hash, uint256)
    low: uint256 = convert(max_value(uint64), uint256)
    return (h >> 64) & low, h & low


@internal
@view
def _seeded_wrong(
    terms: spec_terms.MatmulTerms,
    c_root: bytes32,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> bool:
    # Whether C[i][j] of a seeded job breaks the entry rule (inputs regenerated
    # from the seed); reverts on a bad opening or a job that is not seeded on
    # the keccak stream.
    assert not terms.blobs, "disputes: blob inputs (the _blob functions)"
    assert terms.version >= KECCAK_INPUTS_VERSION, "disputes: seeded inputs of this version are not regenerable"
    if terms.fp32:
        return entry_check._refutes_fp32_seeded(c_root, terms.seed, terms.m, terms.n, terms.k, i, j, c_chunk, c_proof)
    return entry_check._refutes_int8_seeded(c_root, terms.seed, terms.m, terms.n, terms.k, i, j, c_chunk, c_proof)


@internal
@view
def _blob_wrong(
    terms: spec_terms.MatmulTerms,
    c_root: bytes32,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
    a_row: Bytes[4096],
    a_proof: DynArray[bytes32, 64],
    b_col: Bytes[4096],
    b_proof: DynArray[bytes32, 64],
) -> bool:
    # Whether C[i][j] of an int8 blob job breaks the entry rule (row i of A and
    # column j of B opened against the input roots); reverts on a bad opening.
    assert terms.blobs, "disputes: seeded inputs (the _seeded functions)"
    assert not terms.fp32, "disputes: fp32 blob jobs are not disputable on-chain"
    assert len(a_row) == terms.k and len(b_col) == terms.k, "disputes: input rows are not k long"
    return entry_check._refutes_int8(
        c_root, terms.a_root, terms.b_root, terms.m, terms.n, i, j, c_chunk, c_proof, a_row, a_proof, b_col, b_proof
    )


@internal
def _undo(batch: Batch, index: uint256, item: records.SettledItem, i: uint256, j: uint256):
    # The market undoes the verdict; its record gets the item marked REFUTED
    # (a VALID verdict) or OVERTURNED (an INVALID one).
    marked: uint8 = records.VERDICT_REFUTED
    if item.verdict == VERDICT_VALID:
        log EntryRefuted(batch_id=batch.batch_id, job_id=item.job_id, disputer=msg.sender, index=index, row=i, col=j)
    else:
        marked = records.VERDICT_OVERTURNED
        log WitnessOverturned(
            batch_id=batch.batch_id, job_id=item.job_id, disputer=msg.sender, index=index, row=i, col=j
        )
    record: bytes32 = records._record_hash(
        batch.batch_id, batch.epoch, batch.final_at, batch.signers, records._items_hash(batch.items, index, marked)
    )
    extcall MARKET.undo(batch.batch_id, record, batch.epoch, batch.signers, item, msg.sender)
