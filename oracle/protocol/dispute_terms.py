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

__all__ = ["matmul_terms", "spec_hash_of", "spec_tag", "terms_of"]

_ZERO = bytes(32)


def _hash_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def matmul_terms(spec: Spec | bytes | str) -> tuple[Any, ...]:
    """``(version, fp32, m, n, k, blobs, seed, a_blob, a_root, b_blob, b_root, verify)`` of a
    matmul spec; :class:`SpecError` for any other kind."""
    parsed = parse_spec(spec)
    if not isinstance(parsed.params, MatmulSpec):
        raise SpecError(
            f"spec.kind: only matmul jobs are disputed on-chain, got {parsed.params.kind!r}"
        )
    return terms_of(json.loads(parsed.canonical))


def terms_of(data: dict[str, Any]) -> tuple[Any, ...]:
    """The terms of a matmul spec given as its JSON object, of any version (the contract
    writes back whatever version it is given; this parses nothing)."""
    inputs = data["inputs"]
    blobs = "a" in inputs

    def hashes(name: str) -> tuple[bytes, bytes]:
        if not blobs:
            return _ZERO, _ZERO
        return _hash_bytes(inputs[name]["blob"]), _hash_bytes(inputs[name]["root"])

    return (
        int(data["version"]),
        data["dtype"] == "fp32",
        int(data["m"]),
        int(data["n"]),
        int(data["k"]),
        blobs,
        0 if blobs else int(inputs["seed"]),
        *hashes("a"),
        *hashes("b"),
        canonical_json(data["verify"]),
    )


def spec_hash_of(data: dict[str, Any]) -> bytes:
    """keccak256 of the canonical JSON of a spec object: the spec hash a job is created with."""
    return keccak256(canonical_json(data))


def spec_tag(spec_hash: bytes, salt: bytes) -> int:
    """The 128-bit tag the JobMarket keeps of a job's spec hash: the top half of
    keccak256(spec_hash ‖ salt), ``salt`` being the hash of the block before the one that created
    the job (that block's ``parentHash``)."""
    return int.from_bytes(keccak256(spec_hash + salt), "big") >> 128
