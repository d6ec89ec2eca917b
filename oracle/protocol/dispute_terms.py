"""The terms of a matmul job as an on-chain dispute passes them (``spec_terms.MatmulTerms``).

A dispute cannot parse JSON, so it receives the job's terms and ``contracts/modules/
spec_terms.vy`` writes the canonical JSON spec they stand for and hashes it: the terms count
only if that hash is the job's spec hash. :func:`matmul_terms` gives the tuple, in the field
order of the Vyper struct, for a parsed spec; :func:`spec_tag` is the 128-bit tag of a spec
hash the JobMarket stores for each job (``JobMarket._spec_tag``).
"""

from __future__ import annotations

import json
from typing import Any

from oracle.exceptions import SpecError
from oracle.protocol.canonical import canonical_json
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import MatmulSpec, Spec, parse_spec

__all__ = ["matmul_terms", "spec_tag"]

_ZERO = bytes(32)


def _hash_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def matmul_terms(spec: Spec | bytes | str) -> tuple[Any, ...]:
    """``(version, fp32, m, n, k, blobs, seed, a_blob, a_root, b_blob, b_root, verify)`` of a
    matmul spec; :class:`SpecError` for any other kind."""
    parsed = parse_spec(spec)
    p = parsed.params
    if not isinstance(p, MatmulSpec):
        raise SpecError(f"spec.kind: only matmul jobs are disputed on-chain, got {p.kind!r}")
    data = json.loads(parsed.canonical)
    verify = canonical_json(data["verify"])
    blobs = p.a is not None and p.b is not None
    return (
        int(data["version"]),
        p.dtype == "fp32",
        p.m,
        p.n,
        p.k,
        blobs,
        0 if blobs else int(p.seed or 0),
        _hash_bytes(p.a.blob) if p.a is not None else _ZERO,
        _hash_bytes(p.a.root) if p.a is not None else _ZERO,
        _hash_bytes(p.b.blob) if p.b is not None else _ZERO,
        _hash_bytes(p.b.root) if p.b is not None else _ZERO,
        verify,
    )


def spec_tag(spec_hash: bytes, salt: bytes) -> int:
    """The 128-bit tag the JobMarket keeps of a job's spec hash: the top half of
    keccak256(spec_hash ‖ salt), ``salt`` being the hash of the block before the one that created
    the job (that block's ``parentHash``)."""
    return int.from_bytes(keccak256(spec_hash + salt), "big") >> 128
