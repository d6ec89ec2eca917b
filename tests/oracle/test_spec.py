"""Spec parsing, canonical bytes, spec_hash and work_units."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oracle.exceptions import PouwError, SpecError
from oracle.protocol.canonical import canonical_json
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import MAX_SPEC_BYTES, parse_spec, spec_hash, work_units

BASE = {
    "version": 1,
    "kind": "matmul",
    "dtype": "fp32",
    "m": 64,
    "n": 32,
    "k": 16,
    "inputs": {"seed": 5},
    "verify": {"mode": "full"},
}


def test_spec_hash__is_keccak_of_canonical_normalized_bytes() -> None:
    spec = parse_spec(BASE)
    expected = canonical_json({**BASE, "verify": {"mode": "full", "rounds": 2}})
    assert spec.canonical == expected
    assert spec.canonical.startswith(b'{"dtype":"fp32","inputs":{"seed":5},"k":16')
    assert spec_hash(BASE) == keccak256(expected)
    assert len(spec_hash(BASE)) == 32


def test_spec_hash__spelling_independent() -> None:
    text = json.dumps({**BASE, "m": 64.0}, indent=4, sort_keys=False)
    assert spec_hash(text) == spec_hash(BASE) == spec_hash(text.encode())
    explicit = {**BASE, "verify": {"mode": "full", "rounds": 2}}
    assert spec_hash(explicit) == spec_hash(BASE)
    assert spec_hash({**BASE, "m": 65}) != spec_hash(BASE)


def test_work_units__matmul_and_mlp() -> None:
    assert work_units(BASE) == 2 * 64 * 32 * 16
    mlp = {
        "version": 1,
        "kind": "mlp",
        "dtype": "fp32",
        "batch": 8,
        "dims": [10, 20, 5],
        "activation": "gelu",
        "inputs": {"seed": 1},
        "verify": {"mode": "full"},
    }
    assert work_units(mlp) == 2 * 8 * (10 * 20 + 20 * 5)


def test_work_units__largest_spec_fits_uint64() -> None:
    big = {**BASE, "m": 1 << 14, "k": 1 << 14, "n": 1 << 14}
    assert work_units(big) == 2 * (1 << 42) < 2**64


H32 = "0x" + "00" * 32
REF = {"blob": H32, "root": H32}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"kind": "conv"}, "spec.kind"),
        ({"version": 3}, "spec.version"),
        ({"version": True}, "spec.version"),
        ({"dtype": "fp16"}, "spec.dtype"),
        ({"m": 0}, "spec.m"),
        ({"n": 1 << 17}, "spec.n"),
        ({"k": 1.5}, "spec.k"),
        ({"k": True}, "spec.k"),
        ({"m": 1 << 16, "k": 1 << 13}, "spec.m*spec.k"),
        ({"inputs": {"seed": -1}}, "spec.inputs.seed"),
        ({"inputs": {"seed": 1 << 64}}, "spec.inputs.seed"),
        ({"inputs": {"a": "0x12", "b": "0x" + "00" * 32}}, "spec.inputs.a"),
        ({"inputs": {"a": {"blob": "0x12", "root": H32}, "b": REF}}, "spec.inputs.a.blob"),
        ({"inputs": {"a": {"blob": H32}, "b": REF}}, "spec.inputs.a.root"),
        ({"inputs": {"a": REF, "b": {**REF, "roots": [H32]}}}, "spec.inputs.b.roots"),
        ({"inputs": {"a": REF}}, "spec.inputs.b"),
        ({"inputs": {"seed": 1, "a": "x"}}, "spec.inputs.a"),
        ({"verify": {"mode": "lazy"}}, "spec.verify.mode"),
        ({"verify": {"mode": "sampled"}}, "spec.verify.openings"),
        ({"verify": {"mode": "sampled", "openings": 65}}, "spec.verify.openings"),
        ({"verify": {"mode": "full", "rounds": 0}}, "spec.verify.rounds"),
        ({"verify": {"mode": "full", "openings": 3}}, "spec.verify.openings"),
        ({"extra": 1}, "spec.extra"),
    ],
)
def test_parse_spec__malformed__names_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, **patch})
    assert str(info.value).startswith(field), str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PouwError)


def test_parse_spec__int8_refuses_rounds() -> None:
    with pytest.raises(SpecError, match=r"^spec\.verify\.rounds"):
        parse_spec({**BASE, "dtype": "int8", "verify": {"mode": "full", "rounds": 3}})


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"[1,2]", "top level"),
        (b"{not json", "not valid JSON"),
        (b'{"version":1,"version":1}', "duplicate"),
        (b'{"version":NaN}', "NaN"),
        (b"\xff\xfe", "not valid JSON"),
        (b" " * (MAX_SPEC_BYTES + 1), "limit"),
    ],
)
def test_parse_spec__bad_bytes__refused(raw: bytes, needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        parse_spec(raw)


def test_parse_spec__mlp_sampled_refused() -> None:
    with pytest.raises(SpecError, match=r"^spec\.verify\.mode"):
        parse_spec(
            {
                "version": 1,
                "kind": "mlp",
                "dtype": "fp32",
                "batch": 2,
                "dims": [2, 2],
                "activation": "relu",
                "inputs": {"seed": 1},
                "verify": {"mode": "sampled", "openings": 1},
            }
        )


@given(
    m=st.integers(1, 1 << 12),
    n=st.integers(1, 1 << 12),
    k=st.integers(1, 1 << 12),
    seed=st.integers(0, 2**64 - 1),
)
def test_spec__roundtrip_property(m: int, n: int, k: int, seed: int) -> None:
    spec = parse_spec({**BASE, "m": m, "n": n, "k": k, "inputs": {"seed": seed}})
    again = parse_spec(spec.canonical)
    assert again.canonical == spec.canonical and again.hash == spec.hash
    assert work_units(spec) == 2 * m * n * k


def test_parse_spec__blob_inputs__normalized_and_mlp_needs_a_root_per_layer() -> None:
    a = {"blob": "0x" + "1a" * 32, "root": "0x" + "2a" * 32}
    b = {"blob": "0x" + "1b" * 32, "root": "0x" + "2b" * 32}
    spec = parse_spec({**BASE, "inputs": {"b": b, "a": a}})
    assert spec.as_dict()["inputs"] == {"a": a, "b": b}
    assert spec.params.a is not None and spec.params.a.root == a["root"]
    mlp = {
        "version": 1,
        "kind": "mlp",
        "dtype": "fp32",
        "batch": 2,
        "dims": [3, 4, 2],
        "activation": "relu",
        "verify": {"mode": "full"},
    }
    weights = {"blob": "0x" + "1c" * 32, "roots": ["0x" + "2c" * 32]}
    with pytest.raises(SpecError, match=r"^spec\.inputs\.weights\.roots: .* 2 hashes"):
        parse_spec({**mlp, "inputs": {"weights": weights, "x": a}})
    weights["roots"].append("0x" + "2d" * 32)
    parsed = parse_spec({**mlp, "inputs": {"weights": weights, "x": a}})
    assert parsed.params.weights is not None and len(parsed.params.weights.roots) == 2


def test_version_2__seeded_matmul__keccak_inputs_and_a_hash_of_its_own() -> None:
    v1, v2 = parse_spec(BASE), parse_spec({**BASE, "version": 2})
    assert (v1.params.keccak_inputs, v2.params.keccak_inputs) == (False, True)  # type: ignore[union-attr]
    assert json.loads(v2.canonical)["version"] == 2 and v2.version == 2
    assert v1.hash != v2.hash
    assert work_units(v1) == work_units(v2)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            {**BASE, "version": 2, "inputs": {"a": REF, "b": REF}},
            "spec.version: version 2 is for seeded inputs",
        ),
        (
            {
                "version": 2,
                "kind": "mlp",
                "dtype": "fp32",
                "batch": 2,
                "dims": [4, 3],
                "activation": "relu",
                "inputs": {"seed": 1},
                "verify": {"mode": "full"},
            },
            "spec.version: version 2 is a seeded matmul's",
        ),
    ],
)
def test_version_2__blob_matmul_or_another_kind__refused(spec: dict, says: str) -> None:
    with pytest.raises(SpecError, match=says.replace(".", r"\.")):
        parse_spec(spec)
