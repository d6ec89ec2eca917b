"""The on-chain commitment to a result: binds the result's Merkle root to the worker.

``commitment = keccak256(address (20 bytes) || root (32 bytes))`` — Solidity's
``keccak256(abi.encodePacked(worker, root))``. The root is the row Merkle root of the result
(:mod:`oracle.compute.merkle`) in both verification modes, so a commitment copied by another worker
does not match that worker's address.
"""

from __future__ import annotations

import re

from oracle.protocol.hashing import keccak256

__all__ = ["address_bytes", "commitment"]

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def address_bytes(address: str) -> bytes:
    """The 20 bytes of a 0x-prefixed hex address (checksum case is not enforced)."""
    if not isinstance(address, str) or not _ADDRESS_RE.match(address):
        raise ValueError(f"not a 0x-prefixed 20-byte hex address: {address!r}")
    return bytes.fromhex(address[2:])


def commitment(worker_address: str, result_root: bytes) -> bytes:
    """keccak256(20-byte worker address || 32-byte result root)."""
    if len(result_root) != 32:
        raise ValueError(f"result root must be 32 bytes, got {len(result_root)}")
    return keccak256(address_bytes(worker_address) + bytes(result_root))
