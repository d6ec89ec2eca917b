"""The ``llm`` spec (oracle.protocol.spec) and result (oracle.protocol.results).

A spec of SmolLM2-135M parses and normalizes; its work units equal the compute layer's count
of the same generation (oracle.compute.llm.forward_work) for every prompt length and token
budget tried; a 512-token prompt fits the spec size limit; bad fields are refused naming the
field. The result layout round-trips the trace roots and tokens and refuses a malformed one.
"""

from __future__ import annotations

from typing import Any

import pytest

from oracle.compute.llm.gguf_model import LlamaConfig
from oracle.compute.llm.work_units import forward_work
from oracle.exceptions import ResultFormatError, SpecError
from oracle.protocol.results import decode_llm_result, encode_llm_result, result_layout
from oracle.protocol.spec import MAX_SPEC_BYTES, LlmSpec, parse_spec, work_units

SMOL = {
    "blob": "0x" + "ab" * 32,
    "arch": "llama",
    "layers": 30,
    "dim": 576,
    "ffn": 1536,
    "heads": 9,
    "kv_heads": 3,
    "head_dim": 64,
    "vocab": 49152,
    "context": 8192,
}


def llm(prompt: list[int] | None = None, new: int = 32, **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "kind": "llm",
        "model": dict(SMOL),
        "prompt": prompt if prompt is not None else [1, 504, 3458, 282],
        "max_new_tokens": new,
        "eos": 2,
        "verify": {"mode": "sampled", "openings": 16},
        **extra,
    }


def _config() -> LlamaConfig:
    return LlamaConfig(
        n_layers=30,
        d_model=576,
        d_ff=1536,
        n_heads=9,
        n_kv_heads=3,
        head_dim=64,
        n_rot=64,
        rope_base=100_000.0,
        rms_eps=1e-5,
        vocab_size=49152,
        context_length=8192,
    )


def test_llm_spec__parses_normalizes_and_hashes_one_way() -> None:
    spec = parse_spec(llm())
    assert isinstance(spec.params, LlmSpec)
    assert spec.params.model.d_kv == 192 and spec.params.prompt == (1, 504, 3458, 282)
    again = parse_spec({**llm(), "model": dict(reversed(list(SMOL.items())))})
    assert again.hash == spec.hash
    assert parse_spec(llm(eos=None)).hash != spec.hash  # the stop rule is part of the job


@pytest.mark.parametrize(("prompt", "new"), [(1, 1), (6, 8), (512, 32), (300, 256)])
def test_llm_work_units__equal_the_compute_layers_count(prompt: int, new: int) -> None:
    spec = parse_spec(llm(list(range(3, 3 + prompt)), new))
    assert work_units(spec) == forward_work(_config(), prompt, new).total


def test_llm_spec__512_token_prompt_fits_the_size_limit() -> None:
    spec = parse_spec(llm([49151] * 512, 256))
    assert len(spec.canonical) <= MAX_SPEC_BYTES


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"prompt": []}, "spec.prompt"),
        ({"prompt": [1] * 513}, "spec.prompt"),
        ({"prompt": [49152]}, "spec.prompt[0]"),
        ({"prompt": [1, -1]}, "spec.prompt[1]"),
        ({"max_new_tokens": 0}, "spec.max_new_tokens"),
        ({"max_new_tokens": 257}, "spec.max_new_tokens"),
        ({"eos": 49152}, "spec.eos"),
        ({"verify": {"mode": "full"}}, "spec.verify.mode"),
        ({"verify": {"mode": "sampled"}}, "spec.verify.openings"),
        ({"model": {**SMOL, "arch": "gpt2"}}, "spec.model.arch"),
        ({"model": {**SMOL, "kv_heads": 4}}, "spec.model.kv_heads"),
        ({"model": {**SMOL, "head_dim": 63}}, "spec.model.head_dim"),
        ({"model": {**SMOL, "blob": "0x12"}}, "spec.model.blob"),
        ({"model": {**SMOL, "context": 16}}, "spec.max_new_tokens"),
        ({"model": {**SMOL, "extra": 1}}, "spec.model.extra"),
        ({"temperature": 0.7}, "spec.temperature"),
    ],
)
def test_llm_spec__malformed__names_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**llm(), **patch})
    assert str(info.value).startswith(field), str(info.value)


def test_llm_result__round_trips_and_refuses_malformed() -> None:
    spec = parse_spec(llm(new=40))
    (rows, width), dtype = result_layout(spec)
    assert (rows, width, dtype.str) == (3, 32, "<u4")
    roots = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)
    tokens = tuple(range(100, 137))
    data = encode_llm_result(spec, roots, tokens)
    assert len(data) == 3 * 32 * 4
    assert decode_llm_result(spec, data) == (roots, tokens)
    padded = bytearray(data)
    padded[-1] = 1  # a word past the last token
    with pytest.raises(ResultFormatError, match="padding"):
        decode_llm_result(spec, bytes(padded))
    with pytest.raises(ResultFormatError, match="token ids"):
        encode_llm_result(spec, roots, tuple(range(41)))
    with pytest.raises(ResultFormatError):
        decode_llm_result(spec, data[:-4])


def test_llm_spec__model_over_the_parameter_limit__refused() -> None:
    """A model of more than 10^9 parameters (4 GB in float32) is a malformed spec: no worker
    takes it and no oracle loads it. SmolLM2's count is its real size with a separate head."""
    from oracle.protocol.spec import llm_parameters

    p = parse_spec(llm()).params
    assert isinstance(p, LlmSpec)
    assert llm_parameters(p.model) == 134_515_008 + 49152 * 576  # tied: counted twice
    # a model whose work would also exceed the contract's bound: refused for its size first
    big = llm([1] * 512, 256)
    big["model"] = {**SMOL, "layers": 128, "dim": 65536, "ffn": 65536, "heads": 64, "kv_heads": 8}
    with pytest.raises(
        SpecError, match=r"spec.model: [\d,]+ parameters, the limit is 1,000,000,000"
    ):
        parse_spec(big)
