"""`pouw dispute JOB`: refute a settled VALID matmul verdict on-chain by one wrong entry.

While the batch that settled a job VALID is in its challenge window, anyone who holds the
worker's result can show that it is wrong (``contracts/Disputes.vy``). This module does what
such a disputer does, from public data:

1. finds the job's VALID item: the ``JobSettled`` of the job, the other items and the
   ``BatchSettled`` of the same settle transaction (the batch as the market recorded it), with
   any ``Refuted`` of that batch applied; the batch must still be pending (``batch_record``);
2. fetches the spec (hash-checked) and loads the inputs (blobs from the job stores, or the
   keccak stream of a seeded spec of version 2 or later);
3. fetches the result the worker delivered to the job stores under its commitment (or reads
   a file the disputer holds) and checks that its root opens the settled commitment;
4. looks for an entry the contract refutes (:func:`oracle.compute.refute.refutable_entry`:
   one Freivalds pass, then one exact row); a right result is no dispute;
5. sends ``dispute_blob`` / ``dispute_seeded`` with the openings (dry-run first, so a refusal
   is the contract's reason, before anything is signed). Of C only the chunk of row i that
   holds C[i][j] is sent, with its proof (the result tree's leaves are row chunks of 512 to
   1024 bytes where the row allows, :func:`oracle.compute.work.entry_opening`), so at n = 4096
   the calldata carries 512 bytes of C, not the 16 KiB row.

What cannot be disputed on-chain is said plainly (:class:`DisputeOutcome` ``status``
``not_disputable``): other kinds (MLP, LLM), fp32 blob jobs, seeded jobs of spec version 1
(their inputs are SFC64, which a contract cannot regenerate), and k above 4096 or a chunk
of C above 16 KiB (a row of more than 4096 entries that is not split into chunks: an odd n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from eth_account.signers.local import LocalAccount

from oracle.chain.client import Chain, TxSender
from oracle.compute.kinds import get_kind
from oracle.compute.merkle import MerkleTree, chunks_per_row
from oracle.compute.refute import entry_refutable, refutable_entry
from oracle.compute.work import entry_opening, result_tree
from oracle.exceptions import AuditInputError, ChainError
from oracle.protocol.commitment import commitment as make_commitment
from oracle.protocol.dispute_terms import matmul_terms
from oracle.protocol.results import decode_result, result_layout
from oracle.protocol.settled import SettledBatch
from oracle.protocol.spec import KECCAK_INPUTS_VERSION, MatmulSpec, Spec
from oracle.protocol.verdict import witness_of
from oracle.store.results import ResultStores
from oracle.store.specs import InputStore, SpecStore

__all__ = [
    "DisputeOutcome",
    "SettledVerdict",
    "disputable",
    "dispute_job",
    "overturn_job",
    "pending_verdict",
]

#: ``entry_check.MAX_K`` and the largest chunk of C it opens (16 KiB: a whole row of up to
#: 4096 entries where the row is one leaf, chunks_per_row = 1; chunks are 512-1024 bytes).
MAX_K = 4096
MAX_CHUNK_BYTES = 16384


@dataclass(frozen=True)
class SettledVerdict:
    """A job's VALID item in a settled batch that is not final yet."""

    batch: SettledBatch
    index: int
    job_id: int
    worker: str
    commitment: bytes
    #: The block whose hash salts the job's spec tag (the one before the job's creation).
    salt: bytes
    spec_hash: bytes
    transcript_hash: bytes = bytes(32)


@dataclass
class DisputeOutcome:
    """What a dispute attempt found and did."""

    job_id: int
    #: ``refuted`` (sent and mined), ``right`` (no entry to refute), ``not_disputable``,
    #: ``no_pending_verdict`` (no VALID verdict in a batch still in its window).
    status: str
    reason: str = ""
    worker: str = ""
    batch_id: int = 0
    entry: list[int] = field(default_factory=list)
    tx_hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def applied_disputes(chain: Chain, batch: SettledBatch, start: int, head: int) -> SettledBatch:
    """``batch`` with the refutations and overturns of its items since block ``start`` marked,
    as the market's record has them."""
    for ev in chain.events(start, head, names=("Refuted", "Overturned")):
        if int(ev.args["batch_id"]) == batch.batch_id:
            batch = batch.undone(ev.name, int(ev.args["job_id"]), str(ev.args["worker"]))
    return batch


def pending_verdict(
    chain: Chain, job_id: int, verdict: int = 1, worker: str | None = None
) -> SettledVerdict | None:
    """The job's latest VALID (``verdict`` 1) or INVALID (2; of ``worker`` if given) item in a
    batch whose record is still pending, or None."""
    head = chain.head()
    event = "JobSettled" if verdict == 1 else "WorkerSlashed"
    evs = chain.events(chain.deployment.block, head, job_id=job_id, names=("JobCreated", event))
    created = next((e for e in evs if e.name == "JobCreated"), None)
    if created is None:
        return None
    for settled in reversed([e for e in evs if e.name == event]):
        if worker is not None and str(settled.args["worker"]).lower() != worker.lower():
            continue
        block = settled.block_number
        same_tx = [
            e
            for e in chain.events(
                block, block, names=("JobSettled", "WorkerSlashed", "BatchSettled")
            )
            if e.tx_hash == settled.tx_hash
        ]
        head_ev = next((e for e in same_tx if e.name == "BatchSettled"), None)
        if head_ev is None or int(head_ev.args["batch_id"]) == 0:
            continue
        batch_id = int(head_ev.args["batch_id"])
        if bytes(chain.call("batch_record", batch_id)) == bytes(32):
            continue  # final (or unknown): no dispute can touch it
        items = [(e.name, e.args) for e in same_tx if e.name != "BatchSettled"]
        terms = {}
        for _, a in items:
            job = chain.job(int(a["job_id"]))
            terms[int(a["job_id"])] = (
                str(job["asset"]),
                int(job["amount"]),
                int(job["work_units"]),
            )
        batch = SettledBatch.from_logs(head_ev.args, items, terms)
        batch = applied_disputes(chain, batch, block, head)
        wanted = str(settled.args["worker"]).lower()
        index = next(
            (
                i
                for i, it in enumerate(batch.items)
                if it.job_id == job_id and it.verdict == verdict and it.worker.lower() == wanted
            ),
            None,
        )
        if index is None:
            continue  # disputed already
        item = batch.items[index]
        return SettledVerdict(
            batch=batch,
            index=index,
            job_id=job_id,
            worker=item.worker,
            commitment=item.commitment,
            salt=chain.block_hash(created.block_number - 1),
            spec_hash=bytes(created.args["spec_hash"]),
            transcript_hash=item.transcript_hash,
        )
    return None


def disputable(spec: Spec) -> str:
    """Why a verdict on this spec cannot be disputed on-chain ("" if it can)."""
    p = spec.params
    if not isinstance(p, MatmulSpec):
        return f"{p.kind} verdicts are committee-only (no single-entry rule on-chain)"
    blobs = p.a is not None
    if blobs and p.dtype == "fp32":
        return "fp32 blob jobs are committee-only (the fp32 rule needs inputs on the 2^-23 grid)"
    if not blobs and not p.keccak_inputs:
        return (
            f"seeded inputs of spec version {spec.version} (SFC64) cannot be regenerated "
            f"on-chain; version {KECCAK_INPUTS_VERSION} jobs can be disputed"
        )
    if p.k > MAX_K or 4 * p.n // chunks_per_row(p.n, 4) > MAX_CHUNK_BYTES:
        return (
            f"k = {p.k}, n = {p.n}: the contract opens k <= {MAX_K} and chunks of C up to "
            f"{MAX_CHUNK_BYTES} bytes"
        )
    return ""


def _result(
    spec: Spec, commitment: bytes, result_stores: Sequence[str], result_file: str | None
) -> bytes:
    shape, dtype = result_layout(spec)
    size = shape[0] * shape[1] * dtype.itemsize
    if result_file is not None:
        try:
            with open(result_file, "rb") as fh:
                return fh.read(size + 1)
        except OSError as exc:
            raise AuditInputError(f"cannot read {result_file}: {exc.strerror}") from None
    try:
        return bytes(ResultStores(result_stores).fetch(commitment, size).data)
    except Exception as exc:
        raise AuditInputError(f"result 0x{commitment.hex()} not available: {exc}") from None


def _lines_tree(lines: np.ndarray) -> MerkleTree:
    return MerkleTree.from_rows(np.ascontiguousarray(lines).tobytes(), lines.shape[0])


@dataclass(frozen=True)
class _JobData:
    """What a dispute of a job's verdict opens: its spec, the worker's result and tree, the
    inputs."""

    spec: Spec
    c: np.ndarray
    tree: MerkleTree
    a: np.ndarray
    b: np.ndarray


def _job_data(
    verdict: SettledVerdict,
    spec: Spec,
    spec_stores: Sequence[str],
    result_file: str | None,
) -> _JobData:
    data = _result(spec, verdict.commitment, spec_stores, result_file)
    c = decode_result(spec, data)
    tree = result_tree(spec, c)
    if make_commitment(verdict.worker, tree.root) != verdict.commitment:
        raise AuditInputError("the result's root does not open the settled commitment")
    inputs = get_kind("matmul").load_inputs(spec, InputStore(spec_stores))
    return _JobData(spec, c, tree, inputs.a, inputs.b)


def _openings(job: _JobData, i: int, j: int) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The chunk of C holding C[i][j] with its proof, and for a blob job row i of A and column
    j of B with theirs (empty for a seeded job)."""
    c_chunk, c_proof = entry_opening(job.spec, job.c, job.tree, i, j)
    if job.spec.params.a is None:  # type: ignore[union-attr]
        return (c_chunk, c_proof), ()
    a_tree, b_tree = _lines_tree(job.a), _lines_tree(job.b.T)
    col = np.ascontiguousarray(job.b[:, j]).tobytes()
    return (c_chunk, c_proof), (job.a[i].tobytes(), a_tree.proof(i), col, b_tree.proof(j))


def _send(chain: Chain, fn: Any, account: LocalAccount, label: str) -> str:
    try:
        fn.call({"from": account.address})
    except Exception as exc:  # the contract's reason, before anything is signed
        raise ChainError(f"the dispute contract refuses: {getattr(exc, 'message', exc)}") from None
    rcpt = TxSender(chain, account).send(fn, label, gas=3_000_000)
    return "0x" + bytes(rcpt["transactionHash"]).hex()


def dispute_job(
    chain: Chain,
    job_id: int,
    spec_stores: Sequence[str],
    account: LocalAccount | None,
    *,
    result_file: str | None = None,
) -> DisputeOutcome:
    """Look for a refutable entry in the job's VALID result and, with ``account``, send the
    dispute (without one, only say what would be disputed: status ``refutable``)."""
    verdict = pending_verdict(chain, job_id)
    if verdict is None:
        return DisputeOutcome(
            job_id, "no_pending_verdict", "no VALID verdict of this job is in a challenge window"
        )
    worker, batch_id = verdict.worker, verdict.batch.batch_id
    spec = SpecStore(spec_stores).get(verdict.spec_hash)
    why = disputable(spec)
    if why:
        return DisputeOutcome(job_id, "not_disputable", why, worker, batch_id)
    job = _job_data(verdict, spec, spec_stores, result_file)
    entry = refutable_entry(job.a, job.b, job.c)
    if entry is None:
        return DisputeOutcome(
            job_id, "right", "no entry of the result breaks the rule", worker, batch_id
        )
    i, j = entry
    (c_chunk, c_proof), blob = _openings(job, i, j)
    head = (verdict.batch.args(), verdict.index, matmul_terms(spec), verdict.salt, job.tree.root)
    functions = chain.disputes.functions
    fn = (
        functions.dispute_blob(*head, i, j, c_chunk, c_proof, *blob)
        if blob
        else functions.dispute_seeded(*head, i, j, c_chunk, c_proof)
    )
    outcome = DisputeOutcome(
        job_id, "refutable", f"C[{i}][{j}] is wrong", worker, batch_id, entry=[i, j]
    )
    if account is None:
        return outcome
    outcome.tx_hash = _send(chain, fn, account, "dispute")
    outcome.status = "refuted"
    return outcome


def overturn_job(
    chain: Chain,
    job_id: int,
    worker: str,
    spec_stores: Sequence[str],
    account: LocalAccount | None,
    *,
    result_file: str | None = None,
) -> DisputeOutcome:
    """Prove right the witness entry of ``worker``'s INVALID verdict on the job and, with
    ``account``, send the overturn (without one: status ``overturnable``). Statuses:
    ``overturned``, ``overturnable``, ``right`` (the witness entry is wrong: the verdict
    stands), ``not_disputable`` (no witness named, or a committee-only job),
    ``no_pending_verdict``."""
    verdict = pending_verdict(chain, job_id, 2, worker)
    if verdict is None:
        return DisputeOutcome(
            job_id,
            "no_pending_verdict",
            f"no INVALID verdict on {worker}'s result of this job is in a challenge window",
        )
    batch_id = verdict.batch.batch_id
    spec = SpecStore(spec_stores).get(verdict.spec_hash)
    why = disputable(spec)
    if why:
        return DisputeOutcome(job_id, "not_disputable", why, worker, batch_id)
    p = spec.params
    assert isinstance(p, MatmulSpec)
    i, j = witness_of(verdict.transcript_hash)
    if i >= p.m or j >= p.n:
        return DisputeOutcome(
            job_id,
            "not_disputable",
            "the verdict names no entry of C (a result not delivered?): the oracles' word",
            worker,
            batch_id,
        )
    job = _job_data(verdict, spec, spec_stores, result_file)
    if entry_refutable(job.a, job.b, job.c, i, j):
        return DisputeOutcome(
            job_id, "right", f"C[{i}][{j}] is wrong, as the verdict says", worker, batch_id,
            entry=[i, j],
        )  # fmt: skip
    (c_chunk, c_proof), blob = _openings(job, i, j)
    head = (verdict.batch.args(), verdict.index, matmul_terms(spec), verdict.salt, job.tree.root)
    functions = chain.disputes.functions
    fn = (
        functions.overturn_blob(*head, c_chunk, c_proof, *blob)
        if blob
        else functions.overturn_seeded(*head, c_chunk, c_proof)
    )
    outcome = DisputeOutcome(
        job_id,
        "overturnable",
        f"C[{i}][{j}], the verdict's witness, is right",
        worker,
        batch_id,
        entry=[i, j],
    )
    if account is None:
        return outcome
    outcome.tx_hash = _send(chain, fn, account, "overturn")
    outcome.status = "overturned"
    return outcome
