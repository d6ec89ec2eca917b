"""contracts/modules/spec_terms.vy writes the canonical JSON spec of a matmul job from its
terms, byte for byte what oracle/protocol/spec.py writes: seeded and blob inputs, int8 and
fp32, full and sampled verification, the largest numbers a spec allows. Any other terms
write another hash, so a dispute cannot pass terms that are not the job's.
"""

from __future__ import annotations

import json

import pytest
from eth_utils import keccak

from oracle.protocol.dispute_terms import matmul_terms
from oracle.protocol.spec import parse_spec


@pytest.fixture(scope="module")
def harness(project, deployer):
    return project.SpecTermsHarness.deploy(sender=deployer)


def _blob(i: int) -> dict[str, str]:
    return {"blob": "0x" + keccak(b"blob%d" % i).hex(), "root": "0x" + keccak(b"root%d" % i).hex()}


def _spec(body: dict):
    """A parsed version-1 matmul spec (full verification unless the body says otherwise)."""
    return parse_spec(
        json.dumps({"version": 1, "kind": "matmul", "verify": {"mode": "full"}, **body})
    )


SPECS = [
    {"dtype": "int8", "m": 4096, "n": 4096, "k": 4096, "inputs": {"seed": 7}},
    {"dtype": "int8", "m": 1, "n": 1, "k": 1, "inputs": {"seed": 0}},
    {"dtype": "fp32", "m": 65536, "n": 3, "k": 4096, "inputs": {"seed": 2**64 - 1}},
    {
        "dtype": "fp32",
        "m": 300,
        "n": 20,
        "k": 9,
        "inputs": {"seed": 10**19},
        "verify": {"mode": "sampled", "openings": 256, "rounds": 16},
    },
    {"dtype": "int8", "m": 8, "n": 16, "k": 32, "inputs": {"a": _blob(1), "b": _blob(2)}},
    {
        "dtype": "fp32",
        "m": 100,
        "n": 100,
        "k": 100,
        "inputs": {"a": _blob(3), "b": _blob(4)},
        "verify": {"mode": "sampled", "openings": 5},
    },
]


@pytest.mark.parametrize("body", SPECS)
def test_matmul_spec__byte_for_byte_the_canonical_spec(harness, body) -> None:
    spec = _spec(body)
    terms = matmul_terms(spec)
    assert bytes(harness.matmul_spec(terms)) == spec.canonical
    assert bytes(harness.matmul_spec_hash(terms)) == spec.hash


def test_matmul_spec__other_terms_write_other_hashes(harness) -> None:
    spec = _spec(SPECS[4])
    terms = list(matmul_terms(spec))
    hashes = {bytes(harness.matmul_spec_hash(terms))}
    for field, value in (
        (0, 2),  # version
        (1, True),  # fp32
        (2, 9),  # m
        (3, 17),  # n
        (4, 31),  # k
        (8, keccak(b"other root")),  # a_root
        (10, keccak(b"other root")),  # b_root
        (11, b'{"mode":"sampled","openings":1}'),
    ):
        changed = list(terms)
        changed[field] = value
        hashes.add(bytes(harness.matmul_spec_hash(changed)))
    seeded = list(terms)
    seeded[5] = False
    hashes.add(bytes(harness.matmul_spec_hash(seeded)))
    assert len(hashes) == 10


def test_hex__every_nibble(harness) -> None:
    for value in (bytes(32), b"\xff" * 32, bytes(range(32)), keccak(b"x")):
        assert bytes(harness.hex(value)) == value.hex().encode()


def test_matmul_spec__a_number_of_21_digits_reverts(harness) -> None:
    spec = _spec(SPECS[0])
    terms = list(matmul_terms(spec))
    terms[6] = 10**20
    with pytest.raises(Exception, match="spec: number too large"):
        harness.matmul_spec_hash(terms)
