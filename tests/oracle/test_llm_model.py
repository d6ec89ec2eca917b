"""The ``llm`` compute layer: GGUF loading, dequantization, tokenizer, forward pass, decoding.

Two kinds of model:

* SmolLM2-135M-Instruct (Q4_1), the default model, loaded once per module; its tests are skipped
  with the reason when ``.pouw/models/`` lacks it (``make setup`` fetches it). Its facts are
  world knowledge and natural text, not values copied from this implementation's output.
* tiny synthetic Llama GGUFs written here with :class:`gguf.GGUFWriter` from Hugging Face-layout
  weights (Q/K rows permuted as llama.cpp's converter does) and checked against a float64
  reference forward that uses Hugging Face's rotate-half RoPE on the unpermuted weights.

Logit tolerance on SmolLM2 (:data:`LOGIT_TOL`): 1e-3 absolute, logits up to ~20 in magnitude.
Measured: cache vs full recompute 2.2e-5, token-by-token prefill 2.8e-5 (45x margin); the wrong
implementations below move the logits by 2.4 (decode step's RoPE position off by one), 6.0
(NeoX pairing on the GGUF's permuted rows) and 16.6 (no causal mask).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT

from oracle.compute.llm import (
    DEFAULT_MODEL_FILE,
    LINEAR_MAPS,
    GgufTokenizer,
    KVCache,
    LlamaModel,
    dequantize_tensor,
    forward,
    forward_work,
    greedy_generate,
    load_llama_gguf,
)
from oracle.compute.llm import forward_pass as fp
from oracle.exceptions import InputError

MODEL_PATH = Path(__file__).resolve().parents[2] / ".pouw" / "models" / DEFAULT_MODEL_FILE
LOGIT_TOL = 1e-3
#: Synthetic models: |forward − float64 reference| ≤ SYN_TOL · (1 + max |reference|); measured
#: 0.8e-7 … 2.3e-7 over the 12 (type, head) cases, logits up to ~20.
SYN_TOL = 2e-6


# --- SmolLM2-135M ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smol() -> LlamaModel:
    if not MODEL_PATH.is_file():
        pytest.skip(f"{MODEL_PATH} is absent: `make setup` fetches it")
    return load_llama_gguf(MODEL_PATH)


@pytest.fixture(scope="module")
def smol_tok(smol: LlamaModel) -> GgufTokenizer:
    return GgufTokenizer(smol.vocab)


def test_smollm2__metadata__as_published(smol: LlamaModel) -> None:
    c = smol.config
    assert (c.n_layers, c.d_model, c.d_ff, c.n_heads, c.n_kv_heads, c.head_dim) == (
        30,
        576,
        1536,
        9,
        3,
        64,
    )
    assert (c.n_rot, c.rope_base, c.vocab_size, c.context_length) == (64, 100000.0, 49152, 8192)
    assert c.rms_eps == pytest.approx(1e-5)
    assert smol.weights.tied and smol.weights.output is smol.weights.token_embd
    assert smol.weights.token_embd.dtype == np.float32


def test_smollm2__raw_prompt__continues_with_paris(
    smol: LlamaModel, smol_tok: GgufTokenizer
) -> None:
    prompt = smol_tok.encode("The capital of France is")
    gen = greedy_generate(smol.weights, prompt, 8, eos_id=smol_tok.eos_id)
    text = smol_tok.decode(gen.tokens)
    assert "Paris" in text, text
    assert gen.forward_positions == len(prompt) + len(gen.tokens) - 1


def test_smollm2__chat_prompt__answers_paris(smol: LlamaModel, smol_tok: GgufTokenizer) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    rendered = smol_tok.render_chat(messages)
    assert rendered.startswith("<|im_start|>system\n")
    assert rendered.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    gen = greedy_generate(smol.weights, smol_tok.encode_chat(messages), 24, eos_id=smol_tok.eos_id)
    text = smol_tok.decode(gen.tokens, skip_special=True)
    assert "Paris" in text, text


def _nll(weights: Any, ids: list[int]) -> float:
    """Mean negative log-likelihood (nats/token) of ids[1:] given their prefixes."""
    lg = forward(weights, ids, logits="all").astype(np.float64)
    lg -= lg.max(axis=1, keepdims=True)
    logp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(ids) - 1), ids[1:]]))


EIFFEL = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower "
    "from 1887 to 1889."
)


def _neox_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, n_rot: int) -> np.ndarray:
    """The wrong pairing for GGUF llama weights: (j, j + n_rot/2) instead of (2j, 2j+1)."""
    h = n_rot // 2
    a, b = x[:, :, :h].copy(), x[:, :, h:n_rot].copy()
    c, s = cos[:, None, :], sin[:, None, :]
    x[:, :, :h] = a * c - b * s
    x[:, :, h:n_rot] = a * s + b * c
    return x


def test_smollm2__rope_convention__predicts_natural_text(
    smol: LlamaModel, smol_tok: GgufTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normal (consecutive-pair) RoPE on the GGUF's rows fits text the model never saw from us.

    Measured on this 52-token sentence: 1.83 nats/token (perplexity 6.3); NeoX pairing 3.22;
    no rotation at all 3.82. Greedy "Paris" alone does not separate the conventions (NeoX
    pairing still says Paris), the likelihood of a whole sentence does.
    """
    ids = smol_tok.encode(EIFFEL)
    right = _nll(smol.weights, ids)
    monkeypatch.setattr(fp, "_rope", _neox_rope)
    neox = _nll(smol.weights, ids)
    assert right < 2.3, right
    assert neox > right + 1.0, (right, neox)


def test_smollm2__kv_cache__equals_full_recompute(
    smol: LlamaModel, smol_tok: GgufTokenizer
) -> None:
    ids = smol_tok.encode("The capital of France is")
    full = forward(smol.weights, ids)  # no cache: the whole sequence at once
    cache = KVCache(smol.config)
    assert forward(smol.weights, ids[:-1], cache, logits="none").shape == (0, 49152)
    step = forward(smol.weights, ids[-1:], cache)
    assert cache.length == len(ids)
    assert np.abs(step - full).max() <= LOGIT_TOL
    assert int(np.argmax(step)) == int(np.argmax(full))


def test_smollm2__prefill_split__invariant(smol: LlamaModel, smol_tok: GgufTokenizer) -> None:
    ids = smol_tok.encode("The capital of France is")
    batched = KVCache(smol.config)
    all_logits = forward(smol.weights, ids, batched, logits="all")
    one_by_one = KVCache(smol.config, capacity=1)  # also grows the cache several times
    rows = [forward(smol.weights, [i], one_by_one) for i in ids]
    assert np.abs(np.stack(rows) - all_logits).max() <= LOGIT_TOL
    n = len(ids)
    for layer in (0, 29):
        assert np.abs(batched.k[layer][:, :n] - one_by_one.k[layer][:, :n]).max() <= 1e-3
        assert np.abs(batched.v[layer][:, :n] - one_by_one.v[layer][:, :n]).max() <= 1e-3


def test_smollm2__decode_step_rope_off_by_one__logits_differ(
    smol: LlamaModel, smol_tok: GgufTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decode step that rotates its token one position too far (prefill right)."""
    ids = smol_tok.encode("The capital of France is")
    full = forward(smol.weights, ids)
    tables = fp._rope_tables

    def off_by_one(pos: np.ndarray, n_rot: int, base: float) -> tuple[np.ndarray, np.ndarray]:
        return tables(pos + 1 if pos.size == 1 else pos, n_rot, base)

    monkeypatch.setattr(fp, "_rope_tables", off_by_one)
    cache = KVCache(smol.config)
    forward(smol.weights, ids[:-1], cache, logits="none")
    wrong = forward(smol.weights, ids[-1:], cache)
    assert np.abs(wrong - full).max() > 100 * LOGIT_TOL


def test_smollm2__uniform_rope_shift__invisible(
    smol: LlamaModel, smol_tok: GgufTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RoPE is relative: shifting every position alike leaves q·k, hence the logits, unchanged.

    So a checker cannot (and need not) tell the absolute offset; only inconsistent positions
    (the test above) change the computation.
    """
    ids = smol_tok.encode("The capital of France is")
    full = forward(smol.weights, ids)
    tables = fp._rope_tables
    monkeypatch.setattr(fp, "_rope_tables", lambda p, n, b: tables(p + 100, n, b))
    assert np.abs(forward(smol.weights, ids) - full).max() <= LOGIT_TOL


def test_smollm2__no_causal_mask__changes_logits_and_text(
    smol: LlamaModel, smol_tok: GgufTokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = smol_tok.encode("The capital of France is")
    full = forward(smol.weights, ids)
    right = greedy_generate(smol.weights, ids, 4).tokens
    monkeypatch.setattr(fp, "_causal_bias", lambda start, t, s: None)
    wrong = forward(smol.weights, ids)
    assert np.abs(wrong - full).max() > 100 * LOGIT_TOL
    assert greedy_generate(smol.weights, ids, 4).tokens != right


def test_smollm2__tokenizer__round_trips_and_special_ids(smol_tok: GgufTokenizer) -> None:
    for text in [
        "The capital of France is",
        "  two spaces, tabs\tand\nnewlines",
        "Héllo wörld — naïve café 日本語 🙂",
        "x = 12345 + 0.5",
    ]:
        assert smol_tok.decode(smol_tok.encode(text)) == text
    start, end = smol_tok.encode("<|im_start|>"), smol_tok.encode("<|im_end|>")
    assert len(start) == 1 and len(end) == 1 and start != end
    assert start == [smol_tok.token_id("<|im_start|>")]
    assert smol_tok.eos_id == 2 == smol_tok.token_id("<|im_end|>")
    assert smol_tok.bos_id == 1
    chat = smol_tok.encode("<|im_start|>user\nhi<|im_end|>\n")
    assert chat[0] == start[0] and end[0] in chat
    # smollm pre-tokenizer: every digit is its own token
    assert len(smol_tok.encode("12345")) == 5
    assert smol_tok.decode(smol_tok.encode("<|im_end|>ok"), skip_special=True) == "ok"


def test_smollm2__tokenizer__refuses_ids_outside_vocab(smol_tok: GgufTokenizer) -> None:
    with pytest.raises(InputError, match="outside the vocabulary"):
        smol_tok.decode([49152])


def test_forward__bad_tokens__input_error(smol: LlamaModel) -> None:
    with pytest.raises(InputError, match="no tokens"):
        forward(smol.weights, [])
    with pytest.raises(InputError, match="token id outside"):
        forward(smol.weights, [49152])
    cache = KVCache(smol.config, capacity=1)
    cache.length = smol.config.context_length  # a full context: one more position is too many
    with pytest.raises(InputError, match="exceed the context length 8192"):
        forward(smol.weights, [1], cache)


# --- dequantization ---------------------------------------------------------------------------


def _block_bound(x: np.ndarray, qtype: QT) -> np.ndarray:
    """Largest |dequantize(quantize(x)) − x| the format allows, per element (blocks of 32)."""
    blocks = x.reshape(-1, 32).astype(np.float64)
    amax = np.abs(blocks).max(axis=1, keepdims=True)
    lo, hi = blocks.min(axis=1, keepdims=True), blocks.max(axis=1, keepdims=True)
    half = 2.0**-11  # fp16 scale (and Q4_1 minimum) rounding, relative
    if qtype == QT.Q8_0:  # d = amax/127, |q| ≤ 127: half a step plus the fp16 scale error
        bound = amax / 254 + amax * half
    elif qtype == QT.Q4_0:  # d = −max/8: the opposite extreme clips from 8d to 7d, one step
        bound = amax / 8 + amax * half
    else:  # Q4_1: d = (max − min)/15, offset min: half a step, plus fp16 of d·15 and min
        bound = (hi - lo) / 30 + ((hi - lo) + np.abs(lo)) * half
    return np.broadcast_to(bound * (1 + 1e-6), blocks.shape).reshape(x.shape)


@pytest.mark.parametrize("qtype", [QT.F32, QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_1])
def test_dequantize__round_trip__within_format_error(qtype: QT) -> None:
    rng = np.random.default_rng(int(qtype))
    x = (rng.standard_normal((16, 128)) * rng.uniform(0.01, 10, size=(16, 1))).astype(np.float32)
    raw = gguf.quants.quantize(x, qtype)
    y = dequantize_tensor(raw, qtype, "t")
    assert y.shape == x.shape and y.dtype == np.float32
    err = np.abs(y.astype(np.float64) - x)
    if qtype == QT.F32:
        bound = np.zeros_like(err)
    elif qtype == QT.F16:  # 11-bit significand, round to nearest (values here are normal)
        bound = np.abs(x) * 2.0**-11
    elif qtype == QT.BF16:  # 8-bit significand, round to nearest even
        bound = np.abs(x) * 2.0**-8
    else:
        bound = _block_bound(x, qtype)
    assert (err <= bound).all(), float((err - bound).max())
    if qtype != QT.F32:
        assert err.max() > 0  # lossy formats do lose something: the test compares real data


def test_dequantize__unsupported_type__input_error() -> None:
    raw = gguf.quants.quantize(np.ones((2, 32), dtype=np.float32), QT.Q5_0)
    with pytest.raises(InputError, match=r"tensor w: type Q5_0 is not supported \(supported: "):
        dequantize_tensor(raw, QT.Q5_0, "w")
    with pytest.raises(InputError, match="unknown GGML type id 99"):
        dequantize_tensor(raw, 99, "w")
    with pytest.raises(InputError, match="not whole blocks"):
        dequantize_tensor(np.zeros((2, 33), dtype=np.uint8), QT.Q8_0, "w")


# --- synthetic GGUF models --------------------------------------------------------------------

SYN = {"n_layers": 2, "d": 64, "n_heads": 4, "n_kv": 2, "d_ff": 96, "vocab": 80, "ctx": 64}
#: The synthetic vocabulary: three control tokens, the 52 ASCII letters, and the 25 pairs
#: "ab", "cd", …, "YZ" that the merges build (a byte-level BPE the tokenizers library accepts).
_LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
    chr(c) for c in range(ord("A"), ord("Z") + 1)
]
SYN_MERGES = [f"{_LETTERS[i]} {_LETTERS[i + 1]}" for i in range(0, 50, 2)]
SYN_TOKENS = ["<s>", "</s>", "<pad>", *_LETTERS, *(m.replace(" ", "") for m in SYN_MERGES)]
assert len(SYN_TOKENS) == SYN["vocab"]
SYN_BASE = 10000.0
SYN_EPS = 1e-5


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF rows → GGUF rows, per head."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def _synthetic_weights(seed: int, tied: bool) -> dict[str, np.ndarray]:
    """Hugging Face-layout float32 weights: linear maps (n_out, n_in), scaled by 1/√n_in."""
    rng = np.random.default_rng(seed)
    d, dq, dkv, ff, v = SYN["d"], SYN["d"], SYN["d"] // 2, SYN["d_ff"], SYN["vocab"]

    def lin(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def norm() -> np.ndarray:
        return rng.uniform(0.5, 1.5, size=d).astype(np.float32)

    w: dict[str, np.ndarray] = {"token_embd": rng.standard_normal((v, d)).astype(np.float32)}
    for i in range(SYN["n_layers"]):
        w[f"blk.{i}.attn_norm"] = norm()
        w[f"blk.{i}.attn_q"] = lin(dq, d)
        w[f"blk.{i}.attn_k"] = lin(dkv, d)
        w[f"blk.{i}.attn_v"] = lin(dkv, d)
        w[f"blk.{i}.attn_output"] = lin(d, dq)
        w[f"blk.{i}.ffn_norm"] = norm()
        w[f"blk.{i}.ffn_gate"] = lin(ff, d)
        w[f"blk.{i}.ffn_up"] = lin(ff, d)
        w[f"blk.{i}.ffn_down"] = lin(d, ff)
    w["output_norm"] = norm()
    if not tied:
        w["output"] = lin(v, d)
    return w


def _write_gguf(
    path: Path,
    hf: dict[str, np.ndarray],
    qtype: QT = QT.F32,
    *,
    arch: str = "llama",
    drop_key: str | None = None,
) -> dict[str, np.ndarray]:
    """Write ``hf`` as a GGUF (Q/K permuted, matrices in ``qtype``, norms F32).

    Returns the weights the file really holds, in Hugging Face layout and float64: the
    reference forward's weights (quantization acts on rows of 32, so it commutes with the
    permutation of rows).
    """
    writer = gguf.GGUFWriter(str(path), arch)
    meta: dict[str, Any] = {
        f"{arch}.block_count": SYN["n_layers"],
        f"{arch}.context_length": SYN["ctx"],
        f"{arch}.embedding_length": SYN["d"],
        f"{arch}.feed_forward_length": SYN["d_ff"],
        f"{arch}.attention.head_count": SYN["n_heads"],
        f"{arch}.attention.head_count_kv": SYN["n_kv"],
        f"{arch}.rope.dimension_count": SYN["d"] // SYN["n_heads"],
    }
    for key, value in meta.items():
        if key != drop_key:
            writer.add_uint32(key, value)
    if drop_key != f"{arch}.attention.layer_norm_rms_epsilon":
        writer.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", SYN_EPS)
    writer.add_float32(f"{arch}.rope.freq_base", SYN_BASE)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(SYN_TOKENS)
    writer.add_token_types([3, 3, 3] + [1] * (SYN["vocab"] - 3))
    writer.add_token_merges(SYN_MERGES)
    writer.add_array("test.scores", [float(i) / 7 for i in range(SYN["vocab"])])
    held: dict[str, np.ndarray] = {}
    for name, w in hf.items():
        t = qtype if w.ndim == 2 else QT.F32
        raw = gguf.quants.quantize(w, t)
        held[name] = gguf.quants.dequantize(raw, t).astype(np.float64).reshape(w.shape)
        if name.endswith(("attn_q", "attn_k")):
            heads = SYN["n_heads"] if name.endswith("attn_q") else SYN["n_kv"]
            raw = gguf.quants.quantize(_permute(w, heads), t)
        writer.add_tensor(f"{name}.weight", raw, raw_dtype=None if t == QT.F32 else t)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return held


def _rms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + SYN_EPS) * w


def _reference_logits(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Float64, loops: Hugging Face Llama (rotate-half RoPE on the unpermuted weights)."""
    nh, nkv = SYN["n_heads"], SYN["n_kv"]
    hd = SYN["d"] // nh
    t_len = len(ids)
    x = w["token_embd"][ids].copy()
    inv = SYN_BASE ** (-np.arange(0, hd, 2) / hd)
    for i in range(SYN["n_layers"]):
        a = _rms(x, w[f"blk.{i}.attn_norm"])
        q = (a @ w[f"blk.{i}.attn_q"].T).reshape(t_len, nh, hd)
        k = (a @ w[f"blk.{i}.attn_k"].T).reshape(t_len, nkv, hd)
        v = (a @ w[f"blk.{i}.attn_v"].T).reshape(t_len, nkv, hd)
        for p in range(t_len):
            c, s = np.cos(p * inv), np.sin(p * inv)
            for arr in (q, k):
                lo, hi = arr[p, :, : hd // 2].copy(), arr[p, :, hd // 2 :].copy()
                arr[p, :, : hd // 2] = lo * c - hi * s
                arr[p, :, hd // 2 :] = hi * c + lo * s
        o = np.zeros((t_len, nh, hd))
        for h in range(nh):
            kv = h // (nh // nkv)
            for p in range(t_len):
                scores = np.array([q[p, h] @ k[j, kv] for j in range(p + 1)]) / np.sqrt(hd)
                e = np.exp(scores - scores.max())
                o[p, h] = sum((e[j] / e.sum()) * v[j, kv] for j in range(p + 1))
        x = x + o.reshape(t_len, nh * hd) @ w[f"blk.{i}.attn_output"].T
        f = _rms(x, w[f"blk.{i}.ffn_norm"])
        g = f @ w[f"blk.{i}.ffn_gate"].T
        x = x + (g / (1 + np.exp(-g)) * (f @ w[f"blk.{i}.ffn_up"].T)) @ w[f"blk.{i}.ffn_down"].T
    head = w.get("output", w["token_embd"])
    return np.asarray(_rms(x, w["output_norm"]) @ head.T)


SYN_IDS = [3, 17, 42, 5, 79, 0, 11]


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("qtype", [QT.F32, QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_1])
def test_synthetic__forward__matches_float64_reference(
    tmp_path: Path, qtype: QT, tied: bool
) -> None:
    path = tmp_path / "tiny.gguf"
    held = _write_gguf(path, _synthetic_weights(int(qtype) + 100 * tied, tied), qtype)
    model = load_llama_gguf(path)
    assert model.weights.tied is tied
    assert model.config.n_kv_heads == 2 and model.config.head_dim == 16
    ref = _reference_logits(held, SYN_IDS)
    got = forward(model.weights, SYN_IDS, logits="all")
    assert np.abs(got - ref).max() <= SYN_TOL * (1 + np.abs(ref).max())
    # the same through the cache: prefill 4, then one at a time
    cache = KVCache(model.config, capacity=2)
    rows = [forward(model.weights, SYN_IDS[:4], cache, logits="all")]
    rows += [forward(model.weights, [i], cache, logits="all") for i in SYN_IDS[4:]]
    assert np.abs(np.concatenate(rows) - ref).max() <= SYN_TOL * (1 + np.abs(ref).max())


def test_synthetic__neox_pairing__misses_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The converse of the test above: rotate-half on the GGUF rows is not the model."""
    path = tmp_path / "tiny.gguf"
    held = _write_gguf(path, _synthetic_weights(7, True))
    model = load_llama_gguf(path)
    ref = _reference_logits(held, SYN_IDS)
    monkeypatch.setattr(fp, "_rope", _neox_rope)
    got = forward(model.weights, SYN_IDS, logits="all")
    assert np.abs(got - ref).max() > 1000 * SYN_TOL * (1 + np.abs(ref).max())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> LlamaModel:
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    _write_gguf(path, _synthetic_weights(1, False), QT.Q8_0)
    return load_llama_gguf(path)


def test_trace__every_linear_map__inputs_outputs_and_work(
    tiny: LlamaModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trace reports y = x·W^T for every map; its products and the spans add to the work."""
    calls: list[tuple[int, str, np.ndarray, np.ndarray]] = []

    def record(layer: int, name: str, x: np.ndarray, y: np.ndarray) -> None:
        calls.append((layer, name, x.copy(), y.copy()))

    spans: list[tuple[int, int]] = []  # (queries, keys) of each attention call
    attention = fp._attention

    def spy(q: np.ndarray, keys: np.ndarray, *args: Any) -> np.ndarray:
        spans.append((q.shape[0], keys.shape[1]))
        out: np.ndarray = attention(q, keys, *args)
        return out

    monkeypatch.setattr(fp, "_attention", spy)
    prompt, n_new = [5, 6, 7, 8, 9], 4
    untraced = greedy_generate(tiny.weights, prompt, n_new)
    spans.clear()
    gen = greedy_generate(tiny.weights, prompt, n_new, trace=record)
    assert gen.tokens == untraced.tokens  # the hook observes, it does not change anything
    cfg, layers = tiny.config, tiny.weights.layers
    steps = [(len(prompt), 0)] + [(1, len(prompt) + i) for i in range(n_new - 1)]
    expected_names = [
        (li, n) for _t, _s in steps for li in range(cfg.n_layers) for n in LINEAR_MAPS
    ]
    got_names = [(li, n) for li, n, _x, _y in calls if n != "output"]
    assert got_names == expected_names
    macs = 0
    for li, name, x, y in calls:
        w = tiny.weights.output if name == "output" else getattr(layers[li], name)
        assert li == (cfg.n_layers if name == "output" else li)
        assert y.shape == (x.shape[0], w.shape[0]) and x.shape[1] == w.shape[1]
        exact = x.astype(np.float64) @ w.T.astype(np.float64)
        assert np.abs(y - exact).max() <= 1e-5 * (1 + np.abs(exact).max())
        macs += x.shape[0] * w.shape[0] * w.shape[1]
    work = forward_work(cfg, len(prompt), n_new)
    assert 2 * macs == work.linear + work.output_head
    assert [n for _li, n, _x, _y in calls].count("output") == n_new
    # attention: the query at position p sees p + 1 keys (causal triangle, no more)
    assert len(spans) == cfg.n_layers * len(steps)
    seen = sum(t * (s - t) + t * (t + 1) // 2 for t, s in spans)  # Σ over queries of p + 1
    assert work.attention == 2 * 2 * cfg.n_heads * cfg.head_dim * seen
    assert work.positions == gen.forward_positions == len(prompt) + n_new - 1


def test_work__smollm2_numbers() -> None:
    """The documented SmolLM2 count for P = 6, N = 8 (module docstring of work_units)."""
    from oracle.compute.llm import LlamaConfig

    cfg = LlamaConfig(30, 576, 1536, 9, 3, 64, 64, 1e5, 1e-5, 49152, 8192)
    work = forward_work(cfg, 6, 8)
    assert work.positions == 13
    assert work.linear == 2 * 13 * 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536)
    assert work.attention == 2 * 2 * 30 * 9 * 64 * (13 * 14 // 2)
    assert work.output_head == 2 * 8 * 576 * 49152
    assert work.total == 3_219_651_072
    with pytest.raises(InputError, match="n_new ≥ 1"):
        forward_work(cfg, 6, 0)


def test_generate__stops_at_eos(tiny: LlamaModel) -> None:
    free = greedy_generate(tiny.weights, [1, 2, 3], 6)
    eos = free.tokens[2]
    first = free.tokens.index(eos)
    stopped = greedy_generate(tiny.weights, [1, 2, 3], 6, eos_id=eos)
    assert stopped.stopped_at_eos and stopped.tokens == free.tokens[: first + 1]
    with pytest.raises(InputError, match="max_new_tokens"):
        greedy_generate(tiny.weights, [1], 0)


def test_fast_reader__same_fields_and_tensors_as_gguf_reader(tmp_path: Path) -> None:
    """The loader's header parser (private GGUFReader hooks) agrees with the stock reader.

    Guards a gguf upgrade: string, integer and float arrays, scalars and tensors compared part
    by part.
    """
    from oracle.compute.llm.gguf_model import _FastReader

    path = tmp_path / "tiny.gguf"
    _write_gguf(path, _synthetic_weights(6, False), QT.Q4_0)
    stock, fast = gguf.GGUFReader(str(path)), _FastReader(str(path))
    assert list(stock.fields) == list(fast.fields)
    assert {"tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "test.scores"} <= set(
        stock.fields
    )
    for key, a in stock.fields.items():
        b = fast.fields[key]
        assert (a.offset, a.name, a.data, a.types) == (b.offset, b.name, b.data, b.types), key
        assert len(a.parts) == len(b.parts), key
        for pa, pb in zip(a.parts, b.parts, strict=True):
            assert pa.dtype == pb.dtype and np.array_equal(pa, pb), key
        assert a.contents() == b.contents(), key
    assert fast.data_offset == stock.data_offset and len(fast.tensors) == len(stock.tensors)
    for ta, tb in zip(stock.tensors, fast.tensors, strict=True):
        assert (ta.name, ta.tensor_type, ta.n_bytes, ta.data_offset) == (
            tb.name,
            tb.tensor_type,
            tb.n_bytes,
            tb.data_offset,
        )
        assert np.array_equal(ta.data, tb.data)


# --- bad files --------------------------------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_bad_gguf__other_architecture(tmp_path: Path) -> None:
    path = tmp_path / "gpt2.gguf"
    _write_gguf(path, _synthetic_weights(2, True), arch="gpt2")
    with pytest.raises(InputError) as exc:
        load_llama_gguf(path)
    assert _one_line(exc) == "GGUF general.architecture is 'gpt2'; only 'llama' is supported"


@pytest.mark.parametrize(
    "key",
    [
        "llama.block_count",
        "llama.attention.head_count",
        "llama.context_length",
        "llama.attention.layer_norm_rms_epsilon",
    ],
)
def test_bad_gguf__missing_key(tmp_path: Path, key: str) -> None:
    path = tmp_path / "nokey.gguf"
    _write_gguf(path, _synthetic_weights(3, True), drop_key=key)
    with pytest.raises(InputError) as exc:
        load_llama_gguf(path)
    assert _one_line(exc) == f"GGUF metadata key {key} is missing"


def test_bad_gguf__unsupported_tensor_type(tmp_path: Path) -> None:
    path = tmp_path / "q5.gguf"
    _write_gguf(path, _synthetic_weights(4, True), QT.Q5_0)
    with pytest.raises(InputError) as exc:
        load_llama_gguf(path)
    assert _one_line(exc).startswith(
        "tensor blk.0.attn_q.weight: type Q5_0 is not supported (supported: BF16, F16, F32,"
    )


@pytest.fixture()
def good_bytes(tmp_path: Path) -> Iterator[bytes]:
    path = tmp_path / "good.gguf"
    _write_gguf(path, _synthetic_weights(5, True), QT.Q4_1)
    load_llama_gguf(path)  # the untruncated file loads
    yield path.read_bytes()


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda n: n - 1, "bytes needed, the file has "),  # last tensor short by one byte
        (lambda n: n // 2, "bytes needed, the file has "),  # half the tensor data
        (lambda n: 1000, "bytes needed, the file has 1000"),  # inside the token list
        (lambda n: 3, "4 bytes needed, the file has 3"),  # not even the magic
    ],
)
def test_bad_gguf__truncated(
    tmp_path: Path, good_bytes: bytes, cut: Callable[[int], int], message: str
) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(good_bytes[: cut(len(good_bytes))])
    with pytest.raises(InputError) as exc:
        load_llama_gguf(path)
    line = _one_line(exc)
    assert line.startswith(f"{path}: truncated: ") and message in line, line


def test_bad_gguf__not_gguf_or_absent(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04" + bytes(4096))
    with pytest.raises(InputError, match="not a readable GGUF file"):
        load_llama_gguf(junk)
    with pytest.raises(InputError, match="GGUF file not found"):
        load_llama_gguf(tmp_path / "absent.gguf")
