"""Disputes.vy with the JobMarket's `refute` (issue 15): a VALID verdict on a wrong matrix
product is refuted by one entry in one transaction while its batch is in the challenge window.

Every dispute here is a real one: the inputs are the job's (the keccak stream of spec version 2
for seeded jobs, Merkle-committed blobs otherwise), the worker's result is their product with one
entry changed (or not, for a frivolous dispute), and the proof opens the worker's committed
root. A refutation is checked to the wei: the worker's bond and stake and the signers' oracle
bonds, half to the disputer and half to the requester; the escrow back in the open job; the
epoch's work gone; the books of the market balanced. A dispute that fails moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import ape
import numpy as np
import pytest
from eth_utils import keccak

from oracle.compute.keccak_inputs import keccak_matmul_inputs
from oracle.compute.merkle import MerkleTree, chunks_per_row, leaf_hash
from oracle.protocol.dispute_terms import spec_hash_of, terms_of
from tests.conftest import commitment_of, settled_batch
from tests.utils.constants import (
    ETHER,
    INVALID,
    MIN_BOND,
    ORACLE_BOND,
    STATUS_OPEN,
    STATUS_PAID,
    STATUS_REFUNDED,
    VALID,
    ZERO_ADDRESS,
)

AMOUNT = ETHER // 10
UNITS = 2 * 8 * 16 * 40
VERIFY = {"mode": "full"}
ZERO32 = bytes(32)


@dataclass
class Job:
    """A matmul job as a dispute sees it: terms, salt, inputs and the worker's result rows."""

    job_id: int
    terms: tuple[Any, ...]
    salt: bytes
    a: np.ndarray
    b: np.ndarray  # k×n
    rows: list[bytes]  # the worker's C, row by row, as stored

    @property
    def chunks(self) -> int:
        """Leaves per row of the result tree (1 for the small rows of most tests)."""
        return chunks_per_row(len(self.rows[0]) // 4, 4)

    @property
    def tree(self) -> MerkleTree:
        return MerkleTree.from_rows(b"".join(self.rows), len(self.rows) * self.chunks)

    @property
    def root(self) -> bytes:
        return self.tree.root

    def opening(self, i: int, j: int) -> tuple[bytes, list[bytes]]:
        """The chunk of row i holding C[i][j], and its proof (leaf i * p + j // (n/p))."""
        p = self.chunks
        width = len(self.rows[i]) // 4 // p
        c = j // width
        return self.rows[i][4 * width * c : 4 * width * (c + 1)], self.tree.proof(i * p + c)

    def a_opening(self, i: int) -> tuple[bytes, list[bytes]]:
        rows = [r.tobytes() for r in self.a]
        return rows[i], MerkleTree.from_leaves([leaf_hash(t, r) for t, r in enumerate(rows)]).proof(
            i
        )

    def b_opening(self, j: int) -> tuple[bytes, list[bytes]]:
        cols = [c.tobytes() for c in np.ascontiguousarray(self.b.T)]
        return cols[j], MerkleTree.from_leaves([leaf_hash(t, c) for t, c in enumerate(cols)]).proof(
            j
        )


def _root(lines: list[Any]) -> bytes:
    return MerkleTree.from_leaves([leaf_hash(i, bytes(r)) for i, r in enumerate(lines)]).root


def seeded_terms(m, n, k, seed, dtype="int8", version=2) -> tuple[bytes, tuple[Any, ...]]:
    """(spec hash, MatmulTerms) of a seeded matmul spec."""
    body = {"dtype": dtype, "inputs": {"seed": seed}, "k": k, "kind": "matmul", "m": m, "n": n}
    spec = {**body, "verify": VERIFY, "version": version}
    return spec_hash_of(spec), terms_of(spec)


def blob_terms(a: np.ndarray, b: np.ndarray) -> tuple[bytes, tuple[Any, ...]]:
    """(spec hash, MatmulTerms) of an int8 matmul on blobs: A by rows, B by columns."""
    (m, k), n = a.shape, b.shape[1]
    cols = np.ascontiguousarray(b.T)
    inputs = {
        name: {"blob": "0x" + keccak(x.tobytes()).hex(), "root": "0x" + _root(list(x)).hex()}
        for name, x in (("a", a), ("b", cols))
    }
    spec = {"dtype": "int8", "inputs": inputs, "k": k, "kind": "matmul", "m": m, "n": n}
    spec |= {"verify": VERIFY, "version": 1}
    return spec_hash_of(spec), terms_of(spec)


def result_rows(c: np.ndarray) -> list[bytes]:
    dtype = "<f4" if c.dtype == np.float32 else "<i4"
    return [r.astype(dtype).tobytes() for r in c]


@pytest.fixture
def post(chain, market, requester):
    """post(spec_hash) -> (job id, salt): an ETH job, and the hash its spec tag is salted with."""

    def post_(spec_hash: bytes) -> tuple[int, bytes]:
        tx = market.create_job(
            spec_hash,
            UNITS,
            ZERO_ADDRESS,
            AMOUNT,
            chain.pending_timestamp + 3_600,
            sender=requester,
            value=AMOUNT,
        )
        salt = bytes(chain.blocks[tx.block_number].parent_hash)
        return tx.decode_logs(market.JobCreated)[0].job_id, salt

    return post_


@pytest.fixture
def settled(market, oracles, worker, bond, post, attest, settle):
    """settled(spec_hash, terms, a, b, c) -> (Job, batch): posted, committed by `worker` (bond
    2 * MIN_BOND: one stake, one free) and settled VALID by the first two oracles."""

    def settled_(spec_hash, terms, a, b, c):
        job_id, salt = post(spec_hash)
        job = Job(job_id, terms, salt, a, b, result_rows(c))
        bond(worker, 2 * MIN_BOND)
        market.submit_result(job_id, commitment_of(worker, job.root), sender=worker)
        tx = settle([attest(job_id, worker)], keys=oracles[:2])
        return job, settled_batch(market, tx)

    return settled_


def seeded_job(m=8, n=16, k=40, seed=7, dtype="int8", wrong=(3, 5)):
    spec_hash, terms = seeded_terms(m, n, k, seed, dtype)
    a, b = keccak_matmul_inputs(seed, m, n, k, dtype)
    exact = dtype == "int8"
    c = a.astype(np.int32) @ b.astype(np.int32) if exact else (a @ b).astype(np.float32)
    if wrong is not None:
        c[wrong] += 1 if dtype == "int8" else np.float32(0.5)
    return spec_hash, terms, a, b, c


def dispute(disputes, job, batch, i, j, sender, index=0, **over):
    c_row, c_proof = job.opening(i, j)
    args = {
        "terms": job.terms,
        "salt": job.salt,
        "c_root": job.root,
        "c_row": c_row,
        "c_proof": c_proof,
    } | over
    return disputes.dispute_seeded(
        batch.args(),
        index,
        args["terms"],
        args["salt"],
        args["c_root"],
        i,
        j,
        args["c_row"],
        args["c_proof"],
        sender=sender,
    )


def books_balance(chain, market, oracle_set, jobs, people) -> None:
    """The market's ETH is open escrow + free bonds + credited + pending, to the wei."""
    held = market.pending(ZERO_ADDRESS)
    for j in jobs:
        job = market.job(j)
        if job.status == STATUS_OPEN:
            held += job.amount
    for p in people:
        held += market.bonds(p) + market.credited(p, ZERO_ADDRESS)
    assert chain.provider.get_balance(market.address) == held


# ---------------------------------------------------------------------------
# refuting a VALID verdict
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int8", "fp32"])
def test_dispute_seeded__wrong_entry__refutes_to_the_wei(
    chain, market, oracle_set, disputes, oracles, worker, requester, stranger, settled, dtype
):
    job, batch = settled(*seeded_job(dtype=dtype))
    epoch = batch.epoch
    signers = [o.address for o in oracles[:2]]
    assert list(batch.signers) == signers
    assert market.epoch_work(epoch, worker) == UNITS
    assert market.pending(ZERO_ADDRESS) == AMOUNT + MIN_BOND
    set_balance = chain.provider.get_balance(oracle_set.address)

    tx = dispute(disputes, job, batch, 3, 5, stranger)

    worker_slashed, oracles_slashed = 2 * MIN_BOND, 2 * ORACLE_BOND
    [ev] = tx.decode_logs(market.Refuted)
    assert (ev.batch_id, ev.job_id, ev.worker, ev.disputer, ev.requester) == (
        batch.batch_id,
        job.job_id,
        worker.address,
        stranger.address,
        requester.address,
    )
    assert (ev.worker_slashed, ev.oracles_slashed) == (worker_slashed, oracles_slashed)
    [entry] = tx.decode_logs(disputes.EntryRefuted)
    assert (entry.job_id, entry.index, entry.row, entry.col) == (job.job_id, 0, 3, 5)
    total = worker_slashed + oracles_slashed
    assert market.credited(stranger, ZERO_ADDRESS) == total // 2
    assert market.credited(requester, ZERO_ADDRESS) == total - total // 2
    assert market.bonds(worker) == 0
    assert [oracle_set.bonds(s) for s in signers] == [0, 0]
    assert oracle_set.bonds(oracles[2].address) == ORACLE_BOND  # did not sign: untouched
    assert chain.provider.get_balance(oracle_set.address) == set_balance - oracles_slashed
    # The escrow is back in the open job; the epoch lost the work; nothing pending is left.
    j = market.job(job.job_id)
    assert (j.status, j.amount, j.submissions) == (STATUS_OPEN, AMOUNT, 0)
    assert market.epoch_work(epoch, worker) == market.epoch_total_work(epoch) == 0
    assert market.pending(ZERO_ADDRESS) == 0
    assert bytes(market.batch_record(batch.batch_id)) == batch.refuted(0).record_hash()
    books_balance(chain, market, oracle_set, [job.job_id], [worker, stranger, requester])


def test_dispute_blob__wrong_entry__refutes(
    chain, market, oracle_set, disputes, worker, requester, stranger, settled
):
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (6, 33), dtype=np.int8)
    b = rng.integers(-128, 128, (33, 4), dtype=np.int8)
    c = a.astype(np.int32) @ b.astype(np.int32)
    c[4, 2] -= 7
    spec_hash, terms = blob_terms(a, b)
    job, batch = settled(spec_hash, terms, a, b, c)
    c_row, c_proof = job.opening(4, 2)
    a_row, a_proof = job.a_opening(4)
    b_col, b_proof = job.b_opening(2)
    args = (batch.args(), 0, terms, job.salt, job.root, 4, 2, c_row, c_proof)
    # the right entry next to it is no refutation
    with ape.reverts("disputes: the entry is right"):
        disputes.dispute_blob(
            *args[:5], 4, 1, c_row, c_proof, a_row, a_proof, *job.b_opening(1), sender=stranger
        )
    with ape.reverts("entry: bad proof of A"):
        disputes.dispute_blob(*args, *job.a_opening(3), b_col, b_proof, sender=stranger)
    with ape.reverts("disputes: blob inputs (the _blob functions)"):
        disputes.dispute_seeded(*args, sender=stranger)
    tx = disputes.dispute_blob(*args, a_row, a_proof, b_col, b_proof, sender=stranger)
    [ev] = tx.decode_logs(market.Refuted)
    assert ev.worker_slashed == 2 * MIN_BOND
    assert market.job(job.job_id).status == STATUS_OPEN
    books_balance(chain, market, oracle_set, [job.job_id], [worker, stranger, requester])


def test_refuted_job__reopens_for_an_honest_worker_and_finalize_pays_nothing_refuted(
    chain, market, disputes, oracles, workers, stranger, settled, attest, settle, finalize
):
    spec_hash, terms, a, b, c = seeded_job()
    job, batch = settled(spec_hash, terms, a, b, c)
    dispute(disputes, job, batch, 3, 5, stranger)
    # The refuted batch still finalizes (once, after its window), paying no one.
    tx = finalize(batch.refuted(0))
    [ev] = tx.decode_logs(market.BatchFinalized)
    assert (ev.paid, ev.slashed) == (0, 0)
    assert market.credited(workers[0], ZERO_ADDRESS) == 0
    # An honest worker takes the reopened job and is paid its escrow.
    honest = workers[1]
    c[3, 5] -= 1
    right = Job(job.job_id, terms, job.salt, a, b, result_rows(c))
    market.register(sender=honest, value=MIN_BOND)
    market.submit_result(job.job_id, commitment_of(honest, right.root), sender=honest)
    tx = settle([attest(job.job_id, honest)], keys=oracles[2:3])
    finalize(tx)
    assert market.job(job.job_id).status == STATUS_PAID
    assert market.credited(honest, ZERO_ADDRESS) == AMOUNT


def test_refuted_job__requester_refunds_after_the_deadline(
    chain, market, disputes, requester, stranger, settled
):
    job, batch = settled(*seeded_job())
    dispute(disputes, job, batch, 3, 5, stranger)
    before = market.credited(requester, ZERO_ADDRESS)
    chain.pending_timestamp = market.job(job.job_id).deadline + 1
    market.refund(job.job_id, sender=stranger)
    assert market.job(job.job_id).status == STATUS_REFUNDED
    assert market.credited(requester, ZERO_ADDRESS) == before + AMOUNT


# ---------------------------------------------------------------------------
# disputes that fail move nothing
# ---------------------------------------------------------------------------


def test_dispute__right_entry__reverts_and_moves_nothing(
    market, disputes, stranger, settled, ledger
):
    job, batch = settled(*seeded_job())
    state = ledger(jobs=[job.job_id])
    for i, j in ((3, 4), (2, 5), (0, 0)):
        with ape.reverts("disputes: the entry is right"):
            dispute(disputes, job, batch, i, j, stranger)
    state.assert_unchanged()


def test_dispute__correct_result__every_entry_is_right(disputes, stranger, settled):
    job, batch = settled(*seeded_job(m=3, n=4, k=70, wrong=None))
    for i in range(3):
        for j in range(4):
            with ape.reverts("disputes: the entry is right"):
                dispute(disputes, job, batch, i, j, stranger)


def test_dispute__after_the_window__reverts(chain, disputes, stranger, settled, ledger, finalize):
    job, batch = settled(*seeded_job())
    state = ledger(jobs=[job.job_id])
    chain.pending_timestamp = batch.final_at
    with ape.reverts("disputes: challenge window over"):
        dispute(disputes, job, batch, 3, 5, stranger)
    state.assert_unchanged()
    finalize(batch)
    with ape.reverts("disputes: no pending batch"):
        dispute(disputes, job, batch, 3, 5, stranger)


def test_dispute__second_dispute_of_the_same_job__reverts(disputes, stranger, settled, ledger):
    job, batch = settled(*seeded_job())
    dispute(disputes, job, batch, 3, 5, stranger)
    state = ledger(jobs=[job.job_id])
    with ape.reverts("disputes: not a VALID verdict"):
        dispute(disputes, job, batch.refuted(0), 3, 5, stranger)
    with ape.reverts("disputes: not the batch record"):
        dispute(disputes, job, batch, 3, 5, stranger)
    state.assert_unchanged()


def test_dispute__malformed_or_foreign_proofs__revert(
    market, disputes, worker, stranger, settled, post, ledger
):
    job, batch = settled(*seeded_job())
    state = ledger(jobs=[job.job_id])
    c_row, c_proof = job.opening(3, 5)
    bad_proof = [bytes(32), *c_proof[1:]]
    _, other_terms = seeded_terms(8, 16, 40, seed=8)
    cases = [
        ("entry: bad proof of C", {"c_proof": bad_proof}),
        ("entry: bad proof of C", {"c_row": job.rows[2]}),
        ("entry: chunk of C is not n/p entries", {"c_row": c_row[:-4]}),
        ("disputes: not the committed root", {"c_root": keccak(b"another root")}),
        ("disputes: not the job's terms", {"terms": other_terms}),
        ("disputes: not the job's terms", {"salt": keccak(b"another block")}),
    ]
    for reason, over in cases:
        with ape.reverts(reason):
            dispute(disputes, job, batch, 3, 5, stranger, **over)
    with ape.reverts("entry: outside the matrix"):
        dispute(disputes, job, batch, 3, 16, stranger)
    with ape.reverts("disputes: seeded inputs (the _seeded functions)"):
        disputes.dispute_blob(
            batch.args(),
            0,
            job.terms,
            job.salt,
            job.root,
            3,
            5,
            c_row,
            c_proof,
            *job.a_opening(3),
            *job.b_opening(5),
            sender=stranger,
        )
    with ape.reverts("disputes: no such item"):
        dispute(disputes, job, batch, 3, 5, stranger, index=1)
    with ape.reverts("disputes: not the batch record"):
        dispute(disputes, job, replace(batch, final_at=batch.final_at + 1), 3, 5, stranger)
    state.assert_unchanged()


def test_dispute__chunked_rows__only_the_entry_chunk_refutes_and_failures_move_nothing(
    chain, market, oracle_set, disputes, worker, requester, stranger, settled, ledger
):
    """n = 256 int32 entries (1 KiB rows): the result tree has 2 leaves per row and a dispute
    sends the 512-byte chunk holding the entry. The wrong entry (1, 200) is in chunk 1."""
    m, n = 3, 256
    job, batch = settled(*seeded_job(m=m, n=n, k=24, wrong=(1, 200)))
    assert job.chunks == 2 and job.tree.rows == m * 2
    state = ledger(jobs=[job.job_id])
    chunk0, proof0 = job.opening(1, 0)
    chunk1, proof1 = job.opening(1, 200)
    assert len(chunk1) == 512 and chunk1 == job.rows[1][512:]
    whole = job.rows[1]
    cases = [
        ("entry: bad proof of C", {"c_row": chunk0, "c_proof": proof0}),  # the other chunk
        ("entry: bad proof of C", {"c_proof": proof0}),  # its proof
        ("entry: bad proof of C", {"c_proof": proof1[:-1]}),
        ("entry: bad proof of C", {"c_proof": [*proof1, bytes(32)]}),
        ("entry: bad proof of C", {"c_row": chunk1[:-1] + bytes([chunk1[-1] ^ 1])}),
        ("entry: bad proof of C", {"c_row": job.opening(2, 200)[0]}),  # row 2's chunk 1
        ("entry: chunk of C is not n/p entries", {"c_row": whole, "c_proof": job.tree.proof(2)}),
    ]
    for reason, over in cases:
        with ape.reverts(reason):
            dispute(disputes, job, batch, 1, 200, stranger, **over)
    for i, j in ((1, 199), (1, 0), (1, 255), (0, 200), (2, 128)):  # right entries, either chunk
        with ape.reverts("disputes: the entry is right"):
            dispute(disputes, job, batch, i, j, stranger)
    state.assert_unchanged()
    tx = dispute(disputes, job, batch, 1, 200, stranger)
    [entry] = tx.decode_logs(disputes.EntryRefuted)
    assert (entry.row, entry.col) == (1, 200)
    [ev] = tx.decode_logs(market.Refuted)
    assert ev.worker_slashed == 2 * MIN_BOND
    assert market.job(job.job_id).status == STATUS_OPEN
    books_balance(chain, market, oracle_set, [job.job_id], [worker, stranger, requester])


def test_dispute__seeded_job_of_version_1__not_regenerable(disputes, stranger, settled, ledger):
    spec_hash, terms = seeded_terms(8, 16, 40, 7, version=1)
    _, _, a, b, c = seeded_job()
    job, batch = settled(spec_hash, terms, a, b, c)
    state = ledger(jobs=[job.job_id])
    with ape.reverts("disputes: seeded inputs of this version are not regenerable"):
        dispute(disputes, job, batch, 3, 5, stranger)
    state.assert_unchanged()


def test_dispute__job_settled_in_another_batch__reverts(
    market, disputes, oracles, workers, stranger, post, attest, settle, bond, ledger
):
    """Batch 1 holds job 1, batch 2 holds job 2: job 2's item cannot be disputed as batch 1's."""
    spec_hash, terms, a, b, c = seeded_job()
    jobs, batches = [], []
    for w in workers[:2]:
        job_id, salt = post(spec_hash)
        job = Job(job_id, terms, salt, a, b, result_rows(c))
        bond(w, 2 * MIN_BOND)
        market.submit_result(job_id, commitment_of(w, job.root), sender=w)
        batches.append(settled_batch(market, settle([attest(job_id, w)], keys=oracles[:1])))
        jobs.append(job)
    state = ledger(jobs=[j.job_id for j in jobs])
    mixed = replace(batches[0], items=batches[1].items)
    with ape.reverts("disputes: not the batch record"):
        dispute(disputes, jobs[1], mixed, 3, 5, stranger)
    state.assert_unchanged()
    # Each is refutable in its own batch only once.
    dispute(disputes, jobs[1], batches[1], 3, 5, stranger)
    assert market.job(jobs[0].job_id).status == STATUS_PAID


def test_undo__only_the_dispute_contract(market, stranger, settled):
    job, batch = settled(*seeded_job())
    with ape.reverts("market: not the dispute contract"):
        market.undo(
            batch.batch_id,
            ZERO32,
            batch.epoch,
            list(batch.signers),
            batch.items[0].as_tuple(),
            stranger,
            sender=stranger,
        )
    assert market.job(job.job_id).status == STATUS_PAID


def test_market__refuses_plain_eth(market, stranger):
    with ape.reverts("market: unexpected ETH"):
        stranger.transfer(market, 1)


def test_refuted_epoch__claims_wait_for_the_window_and_pay_no_refuted_work(
    chain, market, disputes, workers, stranger, settled, post, attest, settle, oracles
):
    """One epoch, two workers: one honest, one refuted. The epoch's claims wait for the window;
    then the honest worker's claim takes the whole emission and the refuted one has none."""
    honest = workers[1]
    job, batch = settled(*seeded_job())
    spec_hash, *_, c = seeded_job(wrong=None)
    other, _ = post(spec_hash)
    market.register(sender=honest, value=MIN_BOND)
    market.submit_result(other, commitment_of(honest, _root(result_rows(c))), sender=honest)
    settle([attest(other, honest)], keys=oracles[:1])
    dispute(disputes, job, batch, 3, 5, stranger)
    epoch = batch.epoch
    assert market.epoch_total_work(epoch) == market.epoch_work(epoch, honest) == UNITS
    chain.pending_timestamp = market.GENESIS() + (epoch + 1) * market.EPOCH_LENGTH()
    if chain.pending_timestamp < market.epoch_final_at(epoch):
        with ape.reverts("market: epoch in challenge window"):
            market.claim([epoch], sender=honest)
        chain.pending_timestamp = market.epoch_final_at(epoch)
    with ape.reverts("market: nothing to claim"):
        market.claim([epoch], sender=workers[0])
    tx = market.claim([epoch], sender=honest)
    [ev] = tx.decode_logs(market.RewardClaimed)
    assert ev.amount == market.epoch_emission(epoch)


# ---------------------------------------------------------------------------
# overturning an INVALID verdict by its witness entry
# ---------------------------------------------------------------------------


def witness_hash(i: int, j: int) -> bytes:
    """An INVALID matmul verdict's transcript hash naming entry (i, j) as wrong
    (oracle.protocol.verdict.make_verdict)."""
    return keccak(text="the oracles' transcript")[:16] + i.to_bytes(8, "big") + j.to_bytes(8, "big")


@pytest.fixture
def slashed(market, oracles, worker, bond, post, attest, settle):
    """slashed(spec_hash, terms, a, b, c, witness) -> (Job, batch): posted, committed by
    `worker` (bond 2 * MIN_BOND) and settled INVALID by the first two oracles, whose
    transcript hash names `witness` (i, j) (None: a hash that names no entry)."""

    def slashed_(spec_hash, terms, a, b, c, witness=(3, 5)):
        job_id, salt = post(spec_hash)
        job = Job(job_id, terms, salt, a, b, result_rows(c))
        bond(worker, 2 * MIN_BOND)
        market.submit_result(job_id, commitment_of(worker, job.root), sender=worker)
        transcript = keccak(text="not delivered") if witness is None else witness_hash(*witness)
        tx = settle([attest(job_id, worker, INVALID, transcript=transcript)], keys=oracles[:2])
        return job, settled_batch(market, tx)

    return slashed_


def overturn(disputes, job, batch, sender, index=0, at=(3, 5), **over):
    """Overturn item `index` with the chunk of C holding entry `at` (the witness, normally)."""
    c_chunk, c_proof = job.opening(*at)
    args = {"terms": job.terms, "salt": job.salt, "c_root": job.root, "c_chunk": c_chunk} | over
    common = (batch.args(), index, args["terms"], args["salt"], args["c_root"])
    if job.terms[5]:  # blobs
        a_row, a_proof = job.a_opening(at[0])
        b_col, b_proof = job.b_opening(at[1])
        return disputes.overturn_blob(
            *common, args["c_chunk"], c_proof, a_row, a_proof, b_col, b_proof, sender=sender
        )
    return disputes.overturn_seeded(*common, args["c_chunk"], c_proof, sender=sender)


@pytest.mark.parametrize("inputs", ["seeded_int8", "seeded_fp32", "blob"])
def test_overturn__witness_entry_right__worker_paid_and_signers_slashed_to_the_wei(
    chain, market, oracle_set, disputes, oracles, worker, requester, stranger, slashed, inputs
):
    if inputs == "blob":
        rng = np.random.default_rng(3)
        a = rng.integers(-128, 128, (8, 40), dtype=np.int8)
        b = rng.integers(-128, 128, (40, 16), dtype=np.int8)
        spec_hash, terms = blob_terms(a, b)
        c = a.astype(np.int32) @ b.astype(np.int32)
        job, batch = slashed(spec_hash, terms, a, b, c)
    else:
        job, batch = slashed(*seeded_job(dtype=inputs[-4:], wrong=None))
    signers = [o.address for o in oracles[:2]]
    # settle took the worker's bond and stake into pending, for the requester at finalize
    assert market.bonds(worker) == 0
    assert market.pending(ZERO_ADDRESS) == 2 * MIN_BOND
    set_balance = chain.provider.get_balance(oracle_set.address)

    tx = overturn(disputes, job, batch, stranger)

    [ev] = tx.decode_logs(market.Overturned)
    assert (ev.batch_id, ev.job_id, ev.worker, ev.disputer) == (
        batch.batch_id, job.job_id, worker.address, stranger.address,
    )  # fmt: skip
    assert (ev.returned, ev.asset, ev.paid, ev.oracles_slashed) == (
        2 * MIN_BOND, ZERO_ADDRESS, AMOUNT, 2 * ORACLE_BOND,
    )  # fmt: skip
    [w] = tx.decode_logs(disputes.WitnessOverturned)
    assert (w.job_id, w.index, w.row, w.col) == (job.job_id, 0, 3, 5)
    # The bond is back, the job is paid to the worker, the signers' bonds are split.
    assert market.bonds(worker) == 2 * MIN_BOND
    assert market.job(job.job_id).status == STATUS_PAID
    assert market.credited(worker, ZERO_ADDRESS) == AMOUNT + ORACLE_BOND
    assert market.credited(stranger, ZERO_ADDRESS) == ORACLE_BOND
    assert market.credited(requester, ZERO_ADDRESS) == 0
    assert [oracle_set.bonds(s) for s in signers] == [0, 0]
    assert oracle_set.bonds(oracles[2].address) == ORACLE_BOND
    assert chain.provider.get_balance(oracle_set.address) == set_balance - 2 * ORACLE_BOND
    assert market.pending(ZERO_ADDRESS) == 0
    assert bytes(market.batch_record(batch.batch_id)) == batch.refuted(0).record_hash()
    assert batch.refuted(0).items[0].verdict == 4  # OVERTURNED: finalize pays it nothing
    books_balance(chain, market, oracle_set, [job.job_id], [worker, stranger, requester])


def test_overturn__finalize_then_pays_nothing_more(
    chain, market, oracle_set, disputes, worker, requester, stranger, slashed, finalize
):
    job, batch = slashed(*seeded_job(wrong=None))
    overturn(disputes, job, batch, stranger)
    credited = (market.credited(worker, ZERO_ADDRESS), market.credited(requester, ZERO_ADDRESS))
    tx = finalize(batch.refuted(0))
    [ev] = tx.decode_logs(market.BatchFinalized)
    assert (ev.paid, ev.slashed) == (0, 0)
    assert (market.credited(worker, ZERO_ADDRESS), market.credited(requester, ZERO_ADDRESS)) == (
        credited
    )
    assert market.bonds(worker) == 2 * MIN_BOND
    books_balance(chain, market, oracle_set, [job.job_id], [worker, stranger, requester])


def test_overturn__witness_entry_wrong__reverts_and_moves_nothing(
    disputes, stranger, slashed, ledger
):
    # The oracles were right: C[3][5] is wrong, and that is the witness they named.
    job, batch = slashed(*seeded_job(wrong=(3, 5)))
    state = ledger(jobs=[job.job_id])
    with ape.reverts("disputes: the witness entry is wrong"):
        overturn(disputes, job, batch, stranger)
    state.assert_unchanged()


@pytest.mark.parametrize("at", [(5, 3), (0, 0), (4, 5)])
def test_overturn__a_right_entry_other_than_the_witness__reverts_and_moves_nothing(
    disputes, stranger, slashed, ledger, at
):
    """The entry is the verdict's witness, read on-chain: the row (one leaf here) of another
    entry, right as it is, does not open as the witness's leaf."""
    job, batch = slashed(*seeded_job(wrong=None), witness=(3, 5))
    assert job.chunks == 1
    state = ledger(jobs=[job.job_id])
    with ape.reverts("entry: bad proof of C"):
        overturn(disputes, job, batch, stranger, at=at)
    state.assert_unchanged()


def test_overturn__verdict_without_witness__cannot_be_overturned(
    disputes, stranger, slashed, ledger
):
    """An INVALID verdict whose transcript names no entry (a result not delivered: a plain
    keccak256, whose last 16 bytes name no entry of the matrix) stays the oracles' word."""
    job, batch = slashed(*seeded_job(wrong=None), witness=None)
    state = ledger(jobs=[job.job_id])
    for at in ((3, 5), (0, 0)):
        with ape.reverts("entry: outside the matrix"):
            overturn(disputes, job, batch, stranger, at=at)
    state.assert_unchanged()


def test_overturn__a_valid_verdict_or_a_dispute_of_an_invalid_one__reverts(
    disputes, stranger, settled, slashed, ledger
):
    valid_job, valid_batch = settled(*seeded_job(wrong=None))
    invalid_job, invalid_batch = slashed(*seeded_job(wrong=(3, 5), seed=8))
    state = ledger(jobs=[valid_job.job_id, invalid_job.job_id])
    with ape.reverts("disputes: not an INVALID verdict"):
        overturn(disputes, valid_job, valid_batch, stranger)
    with ape.reverts("disputes: not a VALID verdict"):
        dispute(disputes, invalid_job, invalid_batch, 3, 5, stranger)
    state.assert_unchanged()


def test_overturn__after_the_window_or_twice__reverts(chain, disputes, stranger, slashed, ledger):
    late_job, late_batch = slashed(*seeded_job(wrong=None, seed=9))
    chain.pending_timestamp = late_batch.final_at
    state = ledger(jobs=[late_job.job_id])
    with ape.reverts("disputes: challenge window over"):
        overturn(disputes, late_job, late_batch, stranger)
    state.assert_unchanged()
    job, batch = slashed(*seeded_job(wrong=None))
    overturn(disputes, job, batch, stranger)
    state = ledger(jobs=[job.job_id])
    with ape.reverts("disputes: not the batch record"):  # the record now marks it
        overturn(disputes, job, batch, stranger)
    with ape.reverts("disputes: not an INVALID verdict"):
        overturn(disputes, job, batch.refuted(0), stranger)
    state.assert_unchanged()


def test_overturn__job_paid_to_another_meanwhile__bond_back_no_escrow(
    chain, market, oracle_set, disputes, oracles, workers, requester, stranger, post, bond,
    attest, settle,
):  # fmt: skip
    """The batch that wrongly slashed `worker` paid the job to `other`: the escrow is gone,
    so the overturn returns the bond and the oracles' bonds only."""
    worker, other = workers[:2]
    spec_hash, terms, a, b, c = seeded_job(wrong=None)
    job_id, salt = post(spec_hash)
    job = Job(job_id, terms, salt, a, b, result_rows(c))
    for w in (worker, other):
        bond(w, 2 * MIN_BOND)
        market.submit_result(job_id, commitment_of(w, job.root), sender=w)
    tx = settle(
        [attest(job_id, worker, INVALID, transcript=witness_hash(3, 5)), attest(job_id, other)],
        keys=oracles[:2],
    )
    batch = settled_batch(market, tx)
    assert [it.verdict for it in batch.items] == [INVALID, VALID]
    tx = overturn(disputes, job, batch, stranger, index=0)
    [ev] = tx.decode_logs(market.Overturned)
    assert (ev.returned, ev.paid, ev.oracles_slashed) == (2 * MIN_BOND, 0, 2 * ORACLE_BOND)
    assert market.bonds(worker) == 2 * MIN_BOND
    assert market.credited(worker, ZERO_ADDRESS) == ORACLE_BOND
    assert market.job(job_id).status == STATUS_PAID  # paid to `other`, at finalize
    books_balance(chain, market, oracle_set, [job_id], [worker, other, stranger, requester])
