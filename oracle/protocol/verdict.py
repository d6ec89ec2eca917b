"""Verdicts: VALID / INVALID with a reason and a hashed transcript.

The transcript is a JSON object of integers, strings, booleans and lists of them (never
floats), hashed as canonical JSON (:mod:`oracle.protocol.canonical`); ``transcript_hash`` is
the value that goes into the attestation. Residuals of fp32 checks are recorded as the integer
``floor(log2(max |residual| / bound))`` so the transcript does not depend on float printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from oracle.protocol.canonical import canonical_json
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import Spec

__all__ = [
    "NOT_DELIVERED",
    "Verdict",
    "VerdictCode",
    "VerdictKey",
    "make_verdict",
    "submission_invalid",
    "witness_of",
]

#: The reason of the INVALID verdict of a submission whose result was not in the job's stores
#: (or, in sampled mode, whose answer was not served) by the end of the reveal window.
NOT_DELIVERED = "result not delivered within the reveal window"


class VerdictCode(IntEnum):
    """The on-chain verdict enum (the integers are part of the contract ABI)."""

    VALID = 1
    INVALID = 2


@dataclass(frozen=True)
class VerdictKey:
    """What an attestation is about: one submission, i.e. one commitment by one worker to one
    job recorded in block ``submission_block`` (the same commitment submitted again after a
    slash is another submission, verified and attested afresh)."""

    job_id: int
    worker: str
    commitment: bytes
    submission_block: int

    def args(self) -> tuple[int, str, bytes, int]:
        """The key as SQL parameters, in field order."""
        return (self.job_id, self.worker, self.commitment, self.submission_block)


@dataclass(frozen=True)
class Verdict:
    """A reproducible verification outcome."""

    verdict: VerdictCode
    reason: str
    transcript: dict[str, Any] = field(compare=False)
    transcript_hash: bytes


def make_verdict(code: VerdictCode, reason: str, transcript: dict[str, Any]) -> Verdict:
    """Build a verdict; the reason is recorded in the transcript before hashing.

    An INVALID verdict whose transcript has a ``witness`` [i, j] (an entry C[i][j] of a
    matmul result that the on-chain entry rule refutes) names it in the clear: its transcript
    hash is the first 16 bytes of the transcript's keccak256, then i and j as 8-byte big-endian
    integers, which is what ``Disputes.overturn_*`` reads (:func:`witness_of`), so the worker
    can prove that entry right without the oracles' transcript."""
    body = dict(transcript)
    body["verdict"] = int(code)
    body["reason"] = reason
    digest = keccak256(canonical_json(body))
    witness = body.get("witness")
    if code is VerdictCode.INVALID and witness is not None:
        i, j = (int(x) for x in witness)
        digest = digest[:16] + i.to_bytes(8, "big") + j.to_bytes(8, "big")
    return Verdict(code, reason, body, digest)


def witness_of(transcript_hash: bytes) -> tuple[int, int]:
    """The entry (i, j) an INVALID matmul verdict's transcript hash names (``Disputes._witness``;
    a verdict that names none decodes to an entry outside any matrix, almost surely)."""
    return int.from_bytes(transcript_hash[16:24], "big"), int.from_bytes(
        transcript_hash[24:], "big"
    )


def submission_invalid(spec: Spec, seed: bytes, key: VerdictKey, reason: str) -> Verdict:
    """The INVALID verdict of a submission whose result could not be checked at all (not
    served in time, a root that does not open the commitment, an oversized payload).

    Its transcript names the submission, so anyone can re-derive the hash (`pouw audit`).
    """
    return make_verdict(
        VerdictCode.INVALID,
        reason,
        {
            "kind": spec.kind,
            "mode": spec.mode,
            "spec_hash": "0x" + spec.hash.hex(),
            "seed": "0x" + seed.hex(),
            "job_id": key.job_id,
            "worker": key.worker,
            "commitment": "0x" + key.commitment.hex(),
            "submission_block": key.submission_block,
        },
    )
