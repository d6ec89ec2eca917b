"""A requester's verified result: find the accepted submission of a settled job on the chain,
fetch the full result its worker delivered to the job stores, check it against the worker's
on-chain commitment, and hand it back as an array.

Which submission: the one ``JobSettled`` paid (the VALID verdict). Its commitment is that of
the worker's last ``ResultSubmitted`` before the settlement (a VALID settlement clears the
live submission, so the event is the record). The result's bytes must open that commitment
(``keccak256(worker ‖ row Merkle root)``, :func:`oracle.store.results.check_result`): a store
whose copy does not is skipped and the next one tried, so no store is trusted.

What comes back: a matmul job's C (m×n; int32 for int8 inputs, exact; float32 for fp32), an
mlp job's output batch Z_L (batch × d_L; the delivered result also holds every hidden layer,
:mod:`oracle.protocol.results`, kept with ``all_layers``), an llm job's generated token ids
(the result's row 0, the trace roots, is what the oracles opened against; dropped here).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oracle.chain.client import STATUS_PAID, Chain
from oracle.client.jobs import STATUS_NAMES, require_jobs
from oracle.exceptions import BlobHashMismatch, BlobNotFound, ConfigError, PouwError
from oracle.protocol.results import decode_llm_result, decode_result, result_layout
from oracle.protocol.spec import LlmSpec, MlpSpec, Spec
from oracle.store.results import ResultStores
from oracle.store.specs import SpecStore

__all__ = ["JobResult", "NoVerifiedResult", "fetch_result", "write_npy"]


class NoVerifiedResult(PouwError):
    """The job has no result its requester can have (yet): not settled with one, or no store
    holds bytes that open the accepted commitment."""


@dataclass(frozen=True)
class JobResult:
    """The verified result of one job and where it came from."""

    job_id: int
    worker: str
    commitment: bytes
    spec: Spec
    #: The job's answer: C for matmul, the output batch for mlp (or every layer), the
    #: generated token ids for llm (uint32, the end-of-sequence token included if generated).
    array: np.ndarray


def _accepted(chain: Chain, job_id: int) -> tuple[str, bytes, bytes]:
    """(worker, commitment, spec hash) of the submission the job was paid for."""
    require_jobs(chain, [job_id])
    status = chain.job_status(job_id)
    if status != STATUS_PAID:
        name = STATUS_NAMES.get(status, str(status))
        raise NoVerifiedResult(f"job {job_id} is not settled with a result (status: {name})")
    evs = chain.events(
        chain.deployment.block,
        chain.head(),
        job_id=job_id,
        names=("JobCreated", "ResultSubmitted", "JobSettled"),
    )
    created = next(e for e in evs if e.name == "JobCreated")
    settled = next(e for e in evs if e.name == "JobSettled")
    worker = settled.args["worker"]
    subs = [
        e
        for e in evs
        if e.name == "ResultSubmitted"
        and e.args["worker"] == worker
        and (e.block_number, e.log_index) < (settled.block_number, settled.log_index)
    ]
    if not subs:  # pragma: no cover - the contract pays only a live submission
        raise NoVerifiedResult(f"job {job_id}: no submission by {worker} before its settlement")
    return worker, bytes(subs[-1].args["commitment"]), bytes(created.args["spec_hash"])


def fetch_result(
    chain: Chain, job_id: int, stores: Sequence[str], *, all_layers: bool = False
) -> JobResult:
    """The verified result of ``job_id`` from the first of ``stores`` whose copy opens the
    accepted commitment.

    Raises ConfigError (no such job), NoVerifiedResult (not settled with a result; no store
    holds a copy that checks), BlobError subclasses from the stores (BlobTransferError: none
    answered), SpecError (the spec is not in the stores or malformed)."""
    worker, commitment, spec_hash = _accepted(chain, job_id)
    try:
        spec = SpecStore(stores).get(spec_hash)
    except BlobNotFound:
        raise ConfigError(
            f"job {job_id}: its spec 0x{spec_hash.hex()} is in none of the stores given "
            "(give the stores the job was published to)"
        ) from None
    (rows, cols), dtype = result_layout(spec)
    try:
        got = ResultStores(stores).fetch(commitment, rows * cols * dtype.itemsize)
    except (BlobNotFound, BlobHashMismatch) as exc:
        raise NoVerifiedResult(
            f"job {job_id}: no store holds a result that opens commitment 0x{commitment.hex()} "
            f"of {worker} ({exc})"
        ) from None
    if got.row_bytes != cols * dtype.itemsize or len(got.data) != rows * cols * dtype.itemsize:
        raise NoVerifiedResult(  # pragma: no cover - an oracle would not have accepted it
            f"job {job_id}: the delivered result is not {rows}×{cols} {dtype}"
        )
    params = spec.params
    if isinstance(params, LlmSpec):
        _, tokens = decode_llm_result(spec, got.data)
        return JobResult(job_id, worker, commitment, spec, np.asarray(tokens, dtype=np.uint32))
    array = decode_result(spec, got.data)
    if isinstance(params, MlpSpec) and not all_layers:
        array = array[:, -params.dims[-1] :]
    return JobResult(job_id, worker, commitment, spec, np.ascontiguousarray(array))


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically (a temp file beside ``path``, then renamed): a
    failure leaves no partial file. ConfigError if the directory cannot be written."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"--out {path}: is a directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=target.parent or ".")
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write there ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
