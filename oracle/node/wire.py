"""What oracle nodes send each other: a ``/sign`` proposal and its answer, as msgspec structs.

A proposer POSTs :class:`Proposal` (1 to ``MAX_BATCH`` attestations); a peer answers
:class:`SignReply`: the indices of the items it agrees with, ascending, and its compact
signature over that sub-list (no signature when it agrees with none). Both sides decode with
the same types, so a malformed message fails with the name of the offending field.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from eth_utils import to_checksum_address

from oracle.protocol.attestation import Attestation, CompactSignature
from oracle.protocol.params import MAX_BATCH

__all__ = ["Proposal", "ProposalItem", "SignReply", "from_item", "to_item"]

INT64_MAX = 2**63 - 1
Hex32 = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{64}\Z")]
Address = Annotated[str, msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}\Z")]
JobId = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
# msgspec bounds must fit an int64: the uint256 ceiling is checked in from_item.
Uint256 = Annotated[int, msgspec.Meta(ge=0)]
Verdict = Annotated[int, msgspec.Meta(ge=1, le=2)]


class ProposalItem(msgspec.Struct, forbid_unknown_fields=True):
    """One attestation of a proposal, hex-encoded."""

    job_id: JobId
    worker: Address
    commitment: Hex32
    submission_block: JobId
    work_units: Uint256
    verdict: Verdict
    transcript_hash: Hex32


class Proposal(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /sign``: a batch of attestations to sign, valid until a block timestamp."""

    items: Annotated[list[ProposalItem], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
    valid_until: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]


class SignReply(msgspec.Struct, forbid_unknown_fields=True):
    """A peer's answer: the indices it agrees with and, if any, its signature over them."""

    agreed: Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(max_length=MAX_BATCH)]
    signer: Address | None = None
    r: str | None = None
    vs: str | None = None

    def signature(self) -> CompactSignature:
        """The compact signature; ValueError if absent or malformed."""
        if self.signer is None or self.r is None or self.vs is None:
            raise ValueError("agreed items without a signature")
        return CompactSignature(to_checksum_address(self.signer), int(self.r, 16), int(self.vs, 16))


def to_item(a: Attestation) -> ProposalItem:
    """The wire form of an attestation."""
    return ProposalItem(
        job_id=a.job_id,
        worker=a.worker,
        commitment="0x" + a.commitment.hex(),
        submission_block=a.submission_block,
        work_units=a.work_units,
        verdict=int(a.verdict),
        transcript_hash="0x" + a.transcript_hash.hex(),
    )


def from_item(x: ProposalItem) -> Attestation:
    """The attestation of a decoded wire item (checksummed worker); ValueError if
    ``work_units`` does not fit a uint256."""
    if x.work_units >= 2**256:
        raise ValueError("work_units does not fit a uint256")
    return Attestation(
        x.job_id,
        to_checksum_address(x.worker),
        bytes.fromhex(x.commitment[2:]),
        x.submission_block,
        x.work_units,
        x.verdict,
        bytes.fromhex(x.transcript_hash[2:]),
    )
