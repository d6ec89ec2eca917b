"""keccak256 (the Ethereum variant, not NIST SHA3-256), one-shot and incremental.

Uses eth-hash's backend (pycryptodome or pysha3), whose C code releases the GIL, so row hashing
can run on several threads.
"""

from __future__ import annotations

from typing import Protocol, cast

from eth_hash.auto import keccak as _keccak

__all__ = ["IncrementalHash", "keccak256", "new_keccak"]


class IncrementalHash(Protocol):
    """The part of a hashlib-style object that pouw uses."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


def keccak256(data: bytes | bytearray | memoryview) -> bytes:
    """Return keccak256(data), 32 bytes."""
    return _keccak(bytes(data) if isinstance(data, memoryview) else data)


def new_keccak(data: bytes | bytearray | memoryview = b"") -> IncrementalHash:
    """Return an incremental keccak256 hasher, optionally primed with ``data``."""
    # eth-hash types update() as bytes-only; both of its backends take any buffer.
    return cast(IncrementalHash, _keccak.new(bytes(data)))
