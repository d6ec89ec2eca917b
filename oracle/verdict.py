"""Verdicts: VALID / INVALID with a reason and a hashed transcript.

The transcript is a JSON object of integers, strings, booleans and lists of them (never
floats), hashed as canonical JSON (:mod:`oracle.canonical`); ``transcript_hash`` is the value
that goes into the attestation. Residuals of fp32 checks are recorded as the integer
``floor(log2(max |residual| / bound))`` so the transcript does not depend on float printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from oracle.canonical import canonical_json
from oracle.hashing import keccak256

__all__ = ["Verdict", "VerdictCode", "make_verdict"]


class VerdictCode(IntEnum):
    """The on-chain verdict enum (the integers are part of the contract ABI)."""

    VALID = 1
    INVALID = 2


@dataclass(frozen=True)
class Verdict:
    """A reproducible verification outcome."""

    verdict: VerdictCode
    reason: str
    transcript: dict[str, Any] = field(compare=False)
    transcript_hash: bytes

    @property
    def valid(self) -> bool:
        """True iff the verdict is VALID."""
        return self.verdict is VerdictCode.VALID


def make_verdict(code: VerdictCode, reason: str, transcript: dict[str, Any]) -> Verdict:
    """Build a verdict; the reason is recorded in the transcript before hashing."""
    body = dict(transcript)
    body["verdict"] = int(code)
    body["reason"] = reason
    return Verdict(code, reason, body, keccak256(canonical_json(body)))
