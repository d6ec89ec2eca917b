"""A Llama-architecture model read from a GGUF file: hyperparameters, float32 weights, vocabulary.

The file is parsed with :class:`gguf.GGUFReader` (through :class:`_FastReader`, which parses the
same structures ~4x faster: see there) and every tensor is dequantized to float32 with
:func:`gguf.quants.dequantize`. Supported tensor types: F32, F16, BF16, Q8_0, Q4_0, Q4_1
(:data:`SUPPORTED_TYPES`); any other type, another ``general.architecture``, a missing key, a
tensor of the wrong shape, a truncated or corrupt file each raise
:class:`~oracle.exceptions.InputError` with one line naming what is wrong.

**Shapes.** GGUF lists a tensor's dimensions innermost first (``ne0`` = the row length); the
reader gives numpy shapes outermost first, so a linear map from ``n_in`` to ``n_out`` is stored
as an (n_out, n_in) array (ne = [n_in, n_out]) and applied as ``y = x @ W.T``.

**RoPE and the Q/K permutation.** llama.cpp's converter (``convert_hf_to_gguf.py``,
``LlamaModel.permute``) reorders the output rows of ``attn_q`` and ``attn_k`` within each head:
row 2j+e of a head in the GGUF is row e·(head_dim/2)+j of the Hugging Face weight (e ∈ {0, 1}).
On these rows llama.cpp applies the *normal* rotation (``LLAMA_ROPE_TYPE_NORM`` for
``LLM_ARCH_LLAMA`` in ``llama_model_rope_type``): consecutive pairs (2j, 2j+1) rotated by
pos·base^(−2j/n_rot), which on the permuted rows is exactly Hugging Face's rotate-half rotation
of pairs (j, j+head_dim/2). The weights are therefore used as stored, with the normal rotation
(:mod:`oracle.compute.llm.forward_pass`); the synthetic-model test writes Hugging Face-layout
weights through the permutation and checks the forward pass against a rotate-half reference.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

from oracle.exceptions import InputError

__all__ = [
    "ARCHITECTURE",
    "SUPPORTED_TYPES",
    "GgufVocab",
    "LayerWeights",
    "LlamaConfig",
    "LlamaModel",
    "LlamaWeights",
    "dequantize_tensor",
    "load_llama_gguf",
    "load_llama_vocab",
]

#: The one ``general.architecture`` this loader accepts.
ARCHITECTURE = "llama"

#: Tensor types that are dequantized to float32; any other type is refused.
SUPPORTED_TYPES = frozenset(
    {
        GGMLQuantizationType.F32,
        GGMLQuantizationType.F16,
        GGMLQuantizationType.BF16,
        GGMLQuantizationType.Q8_0,
        GGMLQuantizationType.Q4_0,
        GGMLQuantizationType.Q4_1,
    }
)

_LAYER_TENSORS = (
    "attn_norm",
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_norm",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
)


@dataclass(frozen=True)
class LlamaConfig:
    """Hyperparameters of a Llama-architecture decoder (from the ``llama.*`` metadata keys)."""

    n_layers: int
    d_model: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    n_rot: int  # leading dimensions of each head that RoPE rotates (≤ head_dim, even)
    rope_base: float
    rms_eps: float
    vocab_size: int
    context_length: int

    @property
    def d_q(self) -> int:
        """Width of the query projection's output (n_heads · head_dim)."""
        return self.n_heads * self.head_dim

    @property
    def d_kv(self) -> int:
        """Width of the key and value projections' outputs (n_kv_heads · head_dim)."""
        return self.n_kv_heads * self.head_dim


@dataclass(frozen=True)
class LayerWeights:
    """One decoder block: norms (d_model,) and linear maps (n_out, n_in), all float32."""

    attn_norm: np.ndarray
    attn_q: np.ndarray
    attn_k: np.ndarray
    attn_v: np.ndarray
    attn_output: np.ndarray
    ffn_norm: np.ndarray
    ffn_gate: np.ndarray
    ffn_up: np.ndarray
    ffn_down: np.ndarray


@dataclass(frozen=True)
class LlamaWeights:
    """All weights, float32. ``output`` is ``token_embd`` itself when the head is tied."""

    config: LlamaConfig
    token_embd: np.ndarray  # (vocab, d_model)
    layers: tuple[LayerWeights, ...]
    output_norm: np.ndarray  # (d_model,)
    output: np.ndarray  # (vocab, d_model)
    tied: bool


@dataclass(frozen=True)
class GgufVocab:
    """The ``tokenizer.*`` metadata: what :mod:`oracle.compute.llm.tokenizer` builds from."""

    model: str  # tokenizer.ggml.model, e.g. "gpt2" (byte-level BPE)
    pre: str  # tokenizer.ggml.pre, e.g. "smollm"; "default" when absent
    tokens: tuple[str, ...]
    token_types: tuple[int, ...]  # gguf.TokenType values; 1 when absent
    merges: tuple[str, ...]  # "left right"
    bos_id: int | None
    eos_id: int | None
    add_bos: bool
    chat_template: str | None


@dataclass(frozen=True)
class LlamaModel:
    """A loaded model: hyperparameters, float32 weights and the vocabulary."""

    config: LlamaConfig
    weights: LlamaWeights
    vocab: GgufVocab
    path: str


class _Truncated(ValueError):
    """The file ends before a structure it declares."""


class _FastReader(GGUFReader):
    """:class:`gguf.GGUFReader` with the same fields, parsed without memmap overhead.

    The stock reader slices its ``np.memmap`` once or twice per array element; each slice of a
    memmap runs ``memmap.__array_finalize__`` (Python code), and SmolLM2's 49,152 tokens and
    48,900 merges make ~250,000 slices: 2.9 s to open the file here. This subclass slices a
    plain ``ndarray`` view of the same mapping and parses arrays in one loop with
    ``struct.unpack_from``, producing the same ``parts``/``data``/``types`` layout: 0.2-0.3 s.
    Files in the other byte order take the stock path (and are then refused by the loader).
    """

    def _plain(self) -> np.ndarray:
        raw = self.__dict__.get("_raw_bytes")
        if raw is None:
            raw = self.data.view(np.ndarray)
            self.__dict__["_raw_bytes"] = raw
        return raw

    def _get(
        self, offset: int, dtype: Any, count: int = 1, override_order: Any = None
    ) -> np.ndarray:
        order = self.byte_order if override_order is None else override_order
        if order == "S":
            return super()._get(offset, dtype, count, override_order)
        dt = np.dtype(dtype)
        count = int(count)
        end = offset + dt.itemsize * count
        raw = self._plain()
        if end > raw.size:
            raise _Truncated(f"{end} bytes needed, the file has {raw.size}")
        return raw[offset:end].view(dt)

    def _get_field_parts(
        self, orig_offs: int, raw_type: int
    ) -> tuple[int, list[np.ndarray], list[int], list[GGUFValueType]]:
        if raw_type != GGUFValueType.ARRAY or self.byte_order == "S":
            return super()._get_field_parts(orig_offs, raw_type)
        raw = self._plain()
        itype = self._get(orig_offs, np.uint32)
        alen = self._get(orig_offs + 4, np.uint64)
        sub = GGUFValueType(int(itype[0]))
        n = int(alen[0])
        offs = orig_offs + 12
        parts: list[np.ndarray] = [itype, alen]
        idxs: list[int] = []
        if sub == GGUFValueType.STRING:
            buf = raw.data
            size = raw.size
            for _ in range(n):
                if offs + 8 > size:
                    raise _Truncated(f"{offs + 8} bytes needed, the file has {size}")
                (slen,) = struct.unpack_from("<Q", buf, offs)
                end = offs + 8 + slen
                if end > size:
                    raise _Truncated(f"{end} bytes needed, the file has {size}")
                parts.append(raw[offs : offs + 8].view(np.uint64))
                parts.append(raw[offs + 8 : end])
                idxs.append(len(parts) - 1)
                offs = end
            return offs - orig_offs, parts, idxs, [GGUFValueType.ARRAY, sub]
        nptype = self.gguf_scalar_to_np.get(sub)
        if nptype is None:  # nested arrays: the stock element-by-element path
            return super()._get_field_parts(orig_offs, raw_type)
        values = self._get(offs, nptype, n)
        for i in range(n):
            parts.append(values[i : i + 1])
            idxs.append(len(parts) - 1)
        return 12 + int(values.nbytes), parts, idxs, [GGUFValueType.ARRAY, sub]


def _open(path: str | os.PathLike[str]) -> _FastReader:
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise InputError(f"GGUF file not found: {name}")
    try:
        reader = _FastReader(name)
    except _Truncated as exc:
        raise InputError(f"{name}: truncated: {exc}") from exc
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error) as exc:
        raise InputError(f"{name}: not a readable GGUF file ({exc})") from exc
    if reader.byte_order != "I":
        raise InputError(f"{name}: big-endian GGUF files are not supported")
    size = reader.data.size
    for t in reader.tensors:
        end = t.data_offset + t.n_bytes
        if end > size or t.data.nbytes != t.n_bytes:
            raise InputError(
                f"{name}: truncated: tensor {t.name} needs bytes up to {end}, the file has {size}"
            )
    return reader


def _field(reader: GGUFReader, key: str, *, required: bool = True) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if required:
            raise InputError(f"GGUF metadata key {key} is missing")
        return None
    try:
        return field.contents()
    except (UnicodeDecodeError, IndexError, ValueError) as exc:
        raise InputError(f"GGUF metadata key {key} is unreadable ({exc})") from exc


def _int(reader: GGUFReader, key: str, default: int | None = None) -> int:
    value = _field(reader, key, required=default is None)
    if value is None:
        assert default is not None
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"GGUF metadata key {key} must be a positive integer, got {value!r}")
    return value


def _float(reader: GGUFReader, key: str, default: float | None = None) -> float:
    value = _field(reader, key, required=default is None)
    if value is None:
        assert default is not None
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise InputError(f"GGUF metadata key {key} must be a positive number, got {value!r}")
    return float(value)


def _config(reader: GGUFReader, vocab_rows: int) -> LlamaConfig:
    arch = _field(reader, "general.architecture")
    if arch != ARCHITECTURE:
        raise InputError(
            f"GGUF general.architecture is {arch!r}; only {ARCHITECTURE!r} is supported"
        )
    a = ARCHITECTURE
    scaling = _field(reader, f"{a}.rope.scaling.type", required=False)
    if scaling not in (None, "none"):
        raise InputError(f"GGUF {a}.rope.scaling.type {scaling!r} is not supported")
    if "rope_freqs.weight" in {t.name for t in reader.tensors}:
        raise InputError("GGUF tensor rope_freqs.weight (Llama 3 RoPE scaling) is not supported")
    n_heads = _int(reader, f"{a}.attention.head_count")
    d_model = _int(reader, f"{a}.embedding_length")
    head_dim = _int(reader, f"{a}.attention.key_length", d_model // n_heads or 1)
    value_dim = _int(reader, f"{a}.attention.value_length", head_dim)
    if value_dim != head_dim:
        raise InputError(f"GGUF {a}.attention.value_length {value_dim} != key_length {head_dim}")
    n_kv_heads = _int(reader, f"{a}.attention.head_count_kv", n_heads)
    if n_heads % n_kv_heads:
        raise InputError(
            f"GGUF {a}.attention.head_count {n_heads} is not a multiple of "
            f"head_count_kv {n_kv_heads}"
        )
    n_rot = _int(reader, f"{a}.rope.dimension_count", head_dim)
    if n_rot > head_dim or n_rot % 2:
        raise InputError(f"GGUF {a}.rope.dimension_count {n_rot} must be even and ≤ {head_dim}")
    return LlamaConfig(
        n_layers=_int(reader, f"{a}.block_count"),
        d_model=d_model,
        d_ff=_int(reader, f"{a}.feed_forward_length"),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        n_rot=n_rot,
        rope_base=_float(reader, f"{a}.rope.freq_base", 10000.0),
        rms_eps=_float(reader, f"{a}.attention.layer_norm_rms_epsilon"),
        vocab_size=_int(reader, f"{a}.vocab_size", vocab_rows),
        context_length=_int(reader, f"{a}.context_length"),
    )


def dequantize_tensor(
    data: np.ndarray, qtype: GGMLQuantizationType | int, name: str = "tensor"
) -> np.ndarray:
    """A GGUF tensor's raw data (as :class:`gguf.GGUFReader` gives it) as float32.

    ``data`` is the reader's array: float32/float16 values for F32/F16, or uint8 blocks of
    shape (…, n_blocks·type_size) for BF16 and the quantized types; the result has the logical
    shape (…, n_blocks·block_size). Raises :class:`InputError` for a type outside
    :data:`SUPPORTED_TYPES` or data whose last dimension is not whole blocks.
    """
    try:
        qt = GGMLQuantizationType(int(qtype))
    except ValueError as exc:
        raise InputError(f"tensor {name}: unknown GGML type id {int(qtype)}") from exc
    if qt not in SUPPORTED_TYPES:
        names = ", ".join(sorted(t.name for t in SUPPORTED_TYPES))
        raise InputError(f"tensor {name}: type {qt.name} is not supported (supported: {names})")
    if qt not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
        _, type_size = GGML_QUANT_SIZES[qt]
        if data.dtype != np.uint8 or data.ndim == 0 or data.shape[-1] % type_size:
            raise InputError(f"tensor {name}: {qt.name} data is not whole blocks")
    out = dequantize(np.asarray(data), qt)
    return np.ascontiguousarray(out, dtype=np.float32)


def _tensors(reader: GGUFReader, cfg: LlamaConfig, path: str) -> LlamaWeights:
    by_name = {t.name: t for t in reader.tensors}

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        t = by_name.get(name)
        if t is None:
            raise InputError(f"{path}: tensor {name} is missing")
        w = dequantize_tensor(t.data, t.tensor_type, name)
        if w.shape != shape:
            raise InputError(f"{path}: tensor {name} has shape {w.shape}, expected {shape}")
        if not np.isfinite(w).all():
            raise InputError(f"{path}: tensor {name} contains NaN or Inf")
        return w

    d, dq, dkv, ff = cfg.d_model, cfg.d_q, cfg.d_kv, cfg.d_ff
    shapes = {
        "attn_norm": (d,),
        "attn_q": (dq, d),
        "attn_k": (dkv, d),
        "attn_v": (dkv, d),
        "attn_output": (d, dq),
        "ffn_norm": (d,),
        "ffn_gate": (ff, d),
        "ffn_up": (ff, d),
        "ffn_down": (d, ff),
    }
    layers = tuple(
        LayerWeights(**{n: get(f"blk.{i}.{n}.weight", shapes[n]) for n in _LAYER_TENSORS})
        for i in range(cfg.n_layers)
    )
    embd = get("token_embd.weight", (cfg.vocab_size, d))
    tied = "output.weight" not in by_name
    output = embd if tied else get("output.weight", (cfg.vocab_size, d))
    return LlamaWeights(
        config=cfg,
        token_embd=embd,
        layers=layers,
        output_norm=get("output_norm.weight", (d,)),
        output=output,
        tied=tied,
    )


def _vocab(reader: GGUFReader, cfg: LlamaConfig) -> GgufVocab:
    tokens = _field(reader, "tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or len(tokens) != cfg.vocab_size:
        n = len(tokens) if isinstance(tokens, list) else tokens
        raise InputError(f"GGUF tokenizer.ggml.tokens has {n} entries, vocab is {cfg.vocab_size}")
    types = _field(reader, "tokenizer.ggml.token_type", required=False)
    if types is None:
        types = [1] * len(tokens)
    if len(types) != len(tokens):
        raise InputError("GGUF tokenizer.ggml.token_type and tokens differ in length")
    merges = _field(reader, "tokenizer.ggml.merges", required=False) or []

    def token_id(key: str) -> int | None:
        value = _field(reader, key, required=False)
        if value is None:
            return None
        if not isinstance(value, int) or not 0 <= value < len(tokens):
            raise InputError(f"GGUF {key} {value!r} is not a token id")
        return value

    template = _field(reader, "tokenizer.chat_template", required=False)
    add_bos = _field(reader, "tokenizer.ggml.add_bos_token", required=False)
    return GgufVocab(
        model=str(_field(reader, "tokenizer.ggml.model")),
        pre=str(_field(reader, "tokenizer.ggml.pre", required=False) or "default"),
        tokens=tuple(tokens),
        token_types=tuple(int(t) for t in types),
        merges=tuple(merges),
        bos_id=token_id("tokenizer.ggml.bos_token_id"),
        eos_id=token_id("tokenizer.ggml.eos_token_id"),
        add_bos=bool(add_bos),
        chat_template=template if isinstance(template, str) else None,
    )


def load_llama_gguf(path: str | os.PathLike[str]) -> LlamaModel:
    """Load a Llama-architecture GGUF: config, float32 weights (~4 bytes/parameter), vocab.

    SmolLM2-135M (Q4_1, 98 MB on disk): 0.9-1.3 s here (2 cores), of which the header 0.12 s
    and dequantization the rest; 0.54 GB of float32 weights, 0.80 GB peak RSS of the process.
    Raises :class:`InputError` for anything this loader cannot run faithfully.
    """
    name = os.fspath(path)
    reader, cfg = _header(name)
    weights = _tensors(reader, cfg, name)
    vocab = _vocab(reader, cfg)
    return LlamaModel(config=cfg, weights=weights, vocab=vocab, path=name)


def load_llama_vocab(path: str | os.PathLike[str]) -> tuple[LlamaConfig, GgufVocab]:
    """The hyperparameters and the vocabulary of a Llama GGUF, without its weights (~0.1 s for
    SmolLM2): what a tokenizer needs. The tensors' types and sizes are not checked here."""
    reader, cfg = _header(os.fspath(path))
    return cfg, _vocab(reader, cfg)


def _header(name: str) -> tuple[_FastReader, LlamaConfig]:
    reader = _open(name)
    embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embd is None:
        raise InputError(f"{name}: tensor token_embd.weight is missing")
    return reader, _config(reader, int(embd.shape[-1]))
