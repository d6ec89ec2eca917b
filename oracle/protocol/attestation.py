"""EIP-712 attestations: the typed data oracles sign and the JobMarket verifies.

One signature covers a whole batch. The signed message is

    Settlement(Attestation[] attestations,uint256 validUntil)
    Attestation(uint256 jobId,address worker,bytes32 commitment,uint256 submissionBlock,
                uint64 workUnits,uint8 verdict,bytes32 transcriptHash)

under the domain ``{name: "pouw JobMarket", version: "1", chainId, verifyingContract}``.
Signatures go on-chain in EIP-2098 compact form ``(r, vs)``, ``vs = (v - 27) << 255 | s``,
ordered by strictly ascending signer address. An attestation names one submission: the
commitment *and* the block that recorded it (``ResultSubmitted.block_number``), so a verdict
on a slashed submission never settles the same result committed again. ``validUntil`` is the
last block timestamp at which the signatures count (``settle`` reverts after it): honest
nodes sign ``now + signature_ttl``. Everything here is eth-account's
``encode_typed_data``; nothing is hashed by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "pouw JobMarket"
DOMAIN_VERSION = "1"

ATTESTATION_FIELDS: list[dict[str, str]] = [
    {"name": "jobId", "type": "uint256"},
    {"name": "worker", "type": "address"},
    {"name": "commitment", "type": "bytes32"},
    {"name": "submissionBlock", "type": "uint256"},
    {"name": "workUnits", "type": "uint64"},
    {"name": "verdict", "type": "uint8"},
    {"name": "transcriptHash", "type": "bytes32"},
]
SETTLEMENT_FIELDS: list[dict[str, str]] = [
    {"name": "attestations", "type": "Attestation[]"},
    {"name": "validUntil", "type": "uint256"},
]
#: Seconds an honest signer lets a settlement signature count (``validUntil = now + this``).
SIGNATURE_TTL = 900
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Attestation:
    """One oracle verdict on one submission (`verdict` is a :class:`VerdictCode` value);
    ``submission_block`` is the block that recorded the commitment."""

    job_id: int
    worker: str
    commitment: bytes
    submission_block: int
    work_units: int
    verdict: int
    transcript_hash: bytes

    def as_tuple(self) -> tuple[int, str, bytes, int, int, int, bytes]:
        """The ABI tuple of JobMarket's `Attestation` struct."""
        return (
            self.job_id,
            to_checksum_address(self.worker),
            self.commitment,
            self.submission_block,
            self.work_units,
            int(self.verdict),
            self.transcript_hash,
        )

    def message(self) -> dict[str, Any]:
        """The EIP-712 message of this attestation."""
        return {
            "jobId": self.job_id,
            "worker": to_checksum_address(self.worker),
            "commitment": self.commitment,
            "submissionBlock": self.submission_block,
            "workUnits": self.work_units,
            "verdict": int(self.verdict),
            "transcriptHash": self.transcript_hash,
        }


@dataclass(frozen=True)
class CompactSignature:
    """An EIP-2098 signature with the address that made it."""

    signer: str
    r: int
    vs: int

    def as_tuple(self) -> tuple[int, int]:
        """The ABI tuple of JobMarket's `Signature` struct."""
        return (self.r, self.vs)


def typed_data(
    chain_id: int, market: str, attestations: Sequence[Attestation], valid_until: int
) -> dict[str, Any]:
    """The full EIP-712 typed-data document for a batch, as any wallet would sign it."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Settlement": SETTLEMENT_FIELDS,
            "Attestation": ATTESTATION_FIELDS,
        },
        "primaryType": "Settlement",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(market),
        },
        "message": {
            "attestations": [a.message() for a in attestations],
            "validUntil": valid_until,
        },
    }


def signable(
    chain_id: int, market: str, attestations: Sequence[Attestation], valid_until: int
) -> SignableMessage:
    """The batch as an EIP-191 version-1 signable message (the last few batches encoded are
    remembered: a node hashes, signs and settles the same batch in one breath)."""
    return _signable(chain_id, market, tuple(attestations), valid_until)


@lru_cache(maxsize=16)
def _signable(
    chain_id: int, market: str, attestations: tuple[Attestation, ...], valid_until: int
) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(chain_id, market, attestations, valid_until))


def settlement_digest(
    chain_id: int, market: str, attestations: Sequence[Attestation], valid_until: int
) -> bytes:
    """keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(Settlement)): what signers sign."""
    msg = signable(chain_id, market, attestations, valid_until)
    return keccak(b"\x19" + msg.version + msg.header + msg.body)


def to_compact(r: int, s: int, v: int) -> tuple[int, int]:
    """(r, s, v) -> EIP-2098 (r, vs). Only low-s signatures have a compact form."""
    if not 0 < s <= SECP256K1_N // 2:
        raise ValueError("signature s value is not in the lower half order")
    if v not in (27, 28):
        raise ValueError(f"signature v must be 27 or 28, got {v}")
    return r, ((v - 27) << 255) | s


def sign_settlement(
    key: LocalAccount | str | bytes,
    chain_id: int,
    market: str,
    attestations: Sequence[Attestation],
    valid_until: int,
) -> CompactSignature:
    """Sign a batch with a local key (eth-account always produces low-s signatures)."""
    account = key if isinstance(key, LocalAccount) else Account.from_key(key)
    signed = account.sign_message(signable(chain_id, market, attestations, valid_until))
    r, vs = to_compact(signed.r, signed.s, signed.v)
    return CompactSignature(signer=account.address, r=r, vs=vs)


def recover_signer(
    chain_id: int,
    market: str,
    attestations: Sequence[Attestation],
    valid_until: int,
    sig: CompactSignature,
) -> str:
    """The address that made `sig` over this batch (for peers checking each other)."""
    v = 27 + (sig.vs >> 255)
    s = sig.vs & ((1 << 255) - 1)
    msg = signable(chain_id, market, attestations, valid_until)
    return Account.recover_message(msg, vrs=(v, sig.r, s))


def order_signatures(signatures: Iterable[CompactSignature]) -> list[CompactSignature]:
    """Signatures by strictly ascending signer, as the contract requires; drops duplicates."""
    unique = {int(s.signer, 16): s for s in signatures}
    return [unique[k] for k in sorted(unique)]
