"""`pouw audit JOB`: re-derive an oracle verdict from public data and compare it.

For every ``JobSettled`` / ``WorkerSlashed`` of a job, the auditor

1. reads the submission the verdict is about from ``ResultSubmitted`` (worker, commitment,
   recorded block; the latest one of that worker before the verdict);
2. derives the challenge seed from the hash of the block after it
   (:mod:`oracle.protocol.challenge`);
3. fetches the spec by ``JobCreated.spec_hash`` from a spec store (hash-checked);
4. obtains the result the way an oracle did — from the worker's server (manifest, then the
   whole result in full mode or the answer to the seed in sampled mode) — or from data the
   auditor holds (a result file or a blob in a content-addressed store), for which the root
   is recomputed and the sampled-mode answer derived;
5. runs the oracle's own checks (:mod:`oracle.compute.verify`, the same INVALID transcripts as
   :func:`oracle.protocol.verdict.submission_invalid`) and compares verdict and transcript hash
   with what was posted.

A verdict of "not served within the reveal window" cannot be re-run (there is no result);
its transcript is still re-derived from public data and compared. Problems with the
auditor's input (no such job, nothing settled, spec or result unavailable) are
:class:`~oracle.exceptions.AuditInputError`; a disagreement is a finding with ``match=False``.
A failure that may pass (a spec store or the worker's server not answering) is tried
``retries`` times, with a doubling pause, before it is reported. A verdict the auditor can
never re-run here (:func:`oracle.protocol.failures.classify_failure`: blob inputs with no store
for them, say) is a finding with ``verified=False`` and the reason; the job's other verdicts
are still audited.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import requests
from eth_utils import to_checksum_address

from oracle.chain.client import JOB_EVENTS, Chain
from oracle.compute.kinds.base import Prepared
from oracle.compute.verify import answer_limit, check_full, check_sampled, prepare
from oracle.compute.work import answer_challenge, result_tree
from oracle.exceptions import AuditInputError, BlobError, BlobTooLarge, ResultFormatError
from oracle.protocol.challenge import challenge_block, challenge_seed
from oracle.protocol.commitment import commitment as make_commitment
from oracle.protocol.failures import classify_failure
from oracle.protocol.results import decode_result, result_layout
from oracle.protocol.spec import Spec
from oracle.protocol.verdict import (
    NOT_DELIVERED,
    Verdict,
    VerdictCode,
    VerdictKey,
    submission_invalid,
)
from oracle.store.blobs import HttpBlobClient
from oracle.store.results import ResultStores
from oracle.store.specs import InputStore, SpecStore, open_store

__all__ = ["AuditFinding", "ResultSource", "audit_job"]

UNSERVED = NOT_DELIVERED
#: ``derived_verdict`` of a finding whose verdict could not be re-run (``verified=False``).
UNVERIFIED = "UNVERIFIED"

T = TypeVar("T")


class _Passing(AuditInputError):
    """An audit input problem that may pass (a server that did not answer): tried again by
    :func:`_retrying`, reported as any AuditInputError once the tries are spent."""


def _retrying(what: Callable[[], T], retries: int, pause: float) -> T:
    """``what()``, tried up to ``retries`` times while it fails with :class:`_Passing`
    (``pause`` seconds, doubling, between tries)."""
    for attempt in range(max(retries, 1)):
        try:
            return what()
        except _Passing as exc:
            if attempt + 1 >= retries:
                raise AuditInputError(f"{exc} (after {attempt + 1} tries)") from None
            time.sleep(pause * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class ResultSource:
    """Where the auditor gets a result: a worker's server, a file, a blob in stores, or the
    result the worker delivered to the job stores (``result_stores``, by its commitment)."""

    worker_url: str | None = None
    result_file: str | None = None
    blob: str | None = None
    blob_stores: Sequence[str] = ()
    result_stores: Sequence[str] = ()


@dataclass
class AuditFinding:
    """One posted verdict against the re-derived one."""

    job_id: int
    worker: str
    commitment: str
    submission_block: int
    challenge_block: int
    seed: str
    posted_event: str
    posted_verdict: str
    posted_transcript_hash: str
    derived_verdict: str
    derived_transcript_hash: str
    derived_reason: str
    match: bool
    note: str = ""
    #: False: the verdict could not be re-run here (``derived_reason`` says why); ``match``
    #: is then False too, and means "not confirmed", not "contradicted".
    verified: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _derive(
    spec: Spec,
    seed: bytes,
    key: VerdictKey,
    source: ResultSource,
    timeout: float,
    prepared: Prepared,
) -> Verdict:
    """Run the oracle's procedure on the data the source provides (``prepared``: the
    seed-only part, done before anything is fetched)."""
    shape, dtype = result_layout(spec)
    size = shape[0] * shape[1] * dtype.itemsize
    if source.worker_url:
        base = (
            f"{source.worker_url.rstrip('/')}/results/{key.job_id}/{key.worker}/"
            f"0x{key.commitment.hex()}"
        )
        http = requests.Session()
        try:
            resp = http.get(base, timeout=timeout)
            if resp.status_code != HTTPStatus.OK:
                raise AuditInputError(f"worker server: GET {base}: HTTP {resp.status_code}")
            manifest = resp.json()
            root = bytes.fromhex(str(manifest["root"]).removeprefix("0x"))
            if len(root) != 32 or make_commitment(key.worker, root) != key.commitment:
                return submission_invalid(
                    spec, seed, key, "served root does not open the commitment"
                )
            if spec.mode == "sampled":
                resp = http.get(
                    f"{base}/answer", params={"seed": "0x" + seed.hex()}, timeout=timeout
                )
                if resp.status_code != HTTPStatus.OK:
                    raise AuditInputError(f"worker server: GET answer: HTTP {resp.status_code}")
                if len(resp.content) > answer_limit(spec):
                    return submission_invalid(spec, seed, key, "challenge answer oversized")
                return check_sampled(prepared, resp.content, root)
            client = HttpBlobClient(
                source.worker_url,
                max_size=size,
                connect_timeout=timeout,
                read_timeout=timeout,
                session=http,
            )
            try:
                data = client.get(str(manifest["blob"]))
            except BlobTooLarge:
                return submission_invalid(spec, seed, key, f"result oversized (limit {size} bytes)")
            return check_full(prepared, data, expected_root=root)
        except (requests.RequestException, BlobError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, AuditInputError):
                raise
            if isinstance(exc, requests.RequestException) or not classify_failure(exc).permanent:
                raise _Passing(f"worker server {source.worker_url}: {exc}") from None
            raise AuditInputError(f"worker server {source.worker_url}: {exc}") from None
    data = _held_result(source, size, key.commitment)
    try:
        arr = decode_result(spec, data)
    except ResultFormatError as exc:
        raise AuditInputError(f"the given result does not fit the job: {exc}") from None
    tree = result_tree(spec, arr)
    if make_commitment(key.worker, tree.root) != key.commitment:
        return submission_invalid(spec, seed, key, "served root does not open the commitment")
    if spec.mode == "sampled":
        # an llm answer re-runs the generation (the trace is the worker's), on the model
        # `prepare` loaded from the job stores into the kind's model cache
        answer = answer_challenge(spec, arr, seed, tree=tree)
        return check_sampled(prepared, answer, tree.root)
    return check_full(prepared, arr, expected_root=tree.root)


def _held_result(source: ResultSource, size: int, commitment: bytes) -> bytes:
    if source.result_file:
        try:
            with open(source.result_file, "rb") as fh:
                return fh.read(size + 1)
        except OSError as exc:
            raise AuditInputError(f"cannot read {source.result_file}: {exc.strerror}") from None
    if source.blob and source.blob_stores:
        last: Exception | None = None
        for loc in source.blob_stores:
            try:
                return open_store(loc).get(source.blob, max_size=size)
            except BlobError as exc:
                last = exc
        if last is not None and classify_failure(last).unreachable:
            raise _Passing(f"blob {source.blob} not available: {last}")
        raise AuditInputError(f"blob {source.blob} not available: {last}")
    if source.result_stores:
        try:  # checked against the commitment by the stores' reader; re-derived below anyway
            return bytes(ResultStores(source.result_stores).fetch(commitment, size).data)
        except BlobError as exc:
            text = f"delivered result 0x{commitment.hex()}: {exc}"
            if classify_failure(exc).unreachable:
                raise _Passing(text) from None
            raise AuditInputError(text) from None
    raise AuditInputError(
        "give a result source: --worker-url, --result-file, --blob with --blob-store, or "
        "the job stores"
    )


def _spec(spec_stores: Sequence[str], spec_hash: bytes) -> Spec:
    try:
        return SpecStore(spec_stores).get(spec_hash)
    except (BlobError, ValueError) as exc:
        failure = classify_failure(exc)
        text = f"spec 0x{spec_hash.hex()}: {exc}"
        raise (AuditInputError(text) if failure.permanent else _Passing(text)) from None


def audit_job(
    chain: Chain,
    job_id: int,
    spec_stores: Sequence[str],
    source: ResultSource,
    *,
    worker: str | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    retry_pause: float = 0.5,
) -> list[AuditFinding]:
    """Re-derive every posted verdict of ``job_id`` (only ``worker``'s, if given); a store or
    server that does not answer is tried ``retries`` times (``retry_pause`` s, doubling)."""
    if chain.job(job_id)["status"] == 0:
        raise AuditInputError(f"job {job_id} does not exist on this market")
    evs = chain.events(chain.deployment.block, chain.head(), job_id=job_id, names=JOB_EVENTS)
    created = next((e for e in evs if e.name == "JobCreated"), None)
    if created is None:
        raise AuditInputError(f"no JobCreated event for job {job_id} after the deploy block")
    want = to_checksum_address(worker) if worker else None
    posted = [
        e
        for e in evs
        if e.name in ("JobSettled", "WorkerSlashed") and (want is None or e.args["worker"] == want)
    ]
    if not posted:
        raise AuditInputError(
            f"job {job_id} has no settled or slashed submission"
            + (f" by {want}" if want else "")
            + " to audit"
        )
    spec_hash = bytes(created.args["spec_hash"])
    spec = _retrying(lambda: _spec(spec_stores, spec_hash), retries, retry_pause)
    findings = []
    for p in posted:
        who = p.args["worker"]
        subs = [
            e
            for e in evs
            if e.name == "ResultSubmitted"
            and e.args["worker"] == who
            and (e.block_number, e.log_index) < (p.block_number, p.log_index)
        ]
        if not subs:
            raise AuditInputError(f"no ResultSubmitted by {who} before its verdict")
        sub = subs[-1]
        sub_block = int(sub.args["block_number"])
        key = VerdictKey(job_id, who, bytes(sub.args["commitment"]), sub_block)
        cb = challenge_block(sub_block)
        seed = challenge_seed(chain.block_hash(cb), job_id, who)
        posted_code = VerdictCode.VALID if p.name == "JobSettled" else VerdictCode.INVALID
        posted_hash = bytes(p.args["transcript_hash"])
        unserved = submission_invalid(spec, seed, key, UNSERVED)
        note = ""
        derived: Verdict | None = None
        if posted_code is VerdictCode.INVALID and unserved.transcript_hash == posted_hash:
            derived = unserved
            note = "the worker did not serve in time: only the transcript can be re-derived"
        else:
            try:
                prepared = prepare(spec, seed, store=InputStore(spec_stores))
            except Exception as exc:  # the job, not the auditor's input: report, go on
                failure = classify_failure(exc)
                note = "cannot re-verify here" + ("" if failure.permanent else " (may pass)")
                reason = failure.reason
            else:
                derived = _retrying(
                    lambda: _derive(spec, seed, key, source, timeout, prepared),  # noqa: B023
                    retries,
                    retry_pause,
                )
        about: dict[str, Any] = {
            "job_id": job_id,
            "worker": who,
            "commitment": "0x" + key.commitment.hex(),
            "submission_block": sub_block,
            "challenge_block": cb,
            "seed": "0x" + seed.hex(),
            "posted_event": p.name,
            "posted_verdict": posted_code.name,
            "posted_transcript_hash": "0x" + posted_hash.hex(),
            "note": note,
        }
        if derived is None:
            findings.append(
                AuditFinding(
                    **about,
                    derived_verdict=UNVERIFIED,
                    derived_transcript_hash="",
                    derived_reason=reason,
                    match=False,
                    verified=False,
                )
            )
            continue
        findings.append(
            AuditFinding(
                **about,
                derived_verdict=derived.verdict.name,
                derived_transcript_hash="0x" + derived.transcript_hash.hex(),
                derived_reason=derived.reason,
                match=derived.verdict == posted_code and derived.transcript_hash == posted_hash,
            )
        )
    return findings
