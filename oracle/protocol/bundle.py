"""Several payloads in one HTTP body: how a worker serves many results in one round trip.

Layout (all of it, nothing else)::

    u32 big-endian  header length H
    H bytes         header: UTF-8 JSON list, one object per entry, each with an integer
                    ``"size"`` (bytes of its payload) and any other fields
    payloads        entry 0's ``size`` bytes, entry 1's, ... back to back

A bundle is only a transport: every payload is checked by its reader exactly as if it had come
alone (hash, size limit, Merkle root against the commitment). A malformed bundle — short,
long, a bad header, sizes that do not add up — is refused as a whole with
:class:`~oracle.exceptions.PeerError`, and the reader falls back to one request per item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from oracle.exceptions import PeerError

#: A bundle header: one flat object per entry (scalar values only).
_Header = list[dict[str, str | int | bool | None]]

__all__ = ["MAX_HEADER_BYTES", "decode_bundle", "encode_bundle"]

MAX_HEADER_BYTES = 1 << 20


def encode_bundle(entries: Sequence[tuple[dict[str, Any], bytes]]) -> bytes:
    """Frame ``(fields, payload)`` entries (``size`` is added to each entry's fields)."""
    header = json.dumps(
        [{**fields, "size": len(payload)} for fields, payload in entries], separators=(",", ":")
    ).encode()
    if len(header) > MAX_HEADER_BYTES:
        raise ValueError(f"bundle header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    return b"".join([len(header).to_bytes(4, "big"), header, *(p for _, p in entries)])


def decode_bundle(data: bytes | bytearray | memoryview) -> list[tuple[dict[str, Any], bytes]]:
    """Split a bundle into ``(fields, payload)`` entries; PeerError if it is malformed."""
    view = memoryview(data).cast("B")
    if len(view) < 4:
        raise PeerError("bundle shorter than its header length")
    hlen = int.from_bytes(view[:4], "big")
    if hlen > MAX_HEADER_BYTES or 4 + hlen > len(view):
        raise PeerError(f"bundle header length {hlen} out of range")
    try:
        # Typed and flat: a header of nested brackets fails at the second bracket, so a
        # hostile peer cannot recurse the decoder (json.loads into Any could, even crash it
        # under a raised recursion limit).
        header = msgspec.json.decode(bytes(view[4 : 4 + hlen]), type=_Header)
    except msgspec.MsgspecError as exc:
        raise PeerError(f"bundle header is not a list of flat JSON objects: {exc}") from None
    sizes = [e.get("size") for e in header]
    if not all(type(n) is int and n >= 0 for n in sizes):
        raise PeerError("bundle header must be a list of objects with a non-negative size")
    out: list[tuple[dict[str, Any], bytes]] = []
    pos = 4 + hlen
    for fields, size in zip(header, sizes, strict=True):
        assert isinstance(size, int)
        end = pos + size
        if end > len(view):
            raise PeerError("bundle payloads shorter than their declared sizes")
        out.append((fields, bytes(view[pos:end])))
        pos = end
    if pos != len(view):
        raise PeerError(f"bundle has {len(view) - pos} bytes beyond its declared payloads")
    return out
