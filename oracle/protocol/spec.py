"""Job specs: schema, validation, canonical bytes, ``spec_hash`` and ``work_units``.

A spec is a JSON object. Its canonical bytes (:func:`oracle.protocol.canonical.canonical_json` of
the *normalized* spec, i.e. with every default written out) are what ``spec_hash`` hashes, and that
32-byte keccak256 is the ``bytes32`` the JobMarket stores. Two spellings of the same job (key order,
whitespace, ``4096.0`` for ``4096``, an omitted default) have the same hash.

Schema, version 1 (``A`` is m×k, ``B`` is k×n, ``C = A·B`` is m×n, all row-major); a seeded
matmul may be version 2 instead, the only difference being its inputs: generated from the
keccak counter-mode stream (:mod:`oracle.compute.keccak_inputs`, B by columns), which a
contract regenerates, so its VALID verdicts are disputable on-chain, rather than from SFC64
(:mod:`oracle.compute.rng`, ~2.7x faster to generate)::

    {"version": 1, "kind": "matmul", "dtype": "int8" | "fp32",
     "m": M, "n": N, "k": K,
     "inputs": {"seed": S} | {"a": {"blob": H, "root": R}, "b": {"blob": H, "root": R}},
     "verify": {"mode": "full" | "sampled", "openings": O, "rounds": R}}

    {"version": 1, "kind": "mlp", "dtype": "fp32", "batch": N, "dims": [d0, d1, ..., dL],
     "activation": "relu" | "gelu",
     "inputs": {"seed": S} | {"weights": {"blob": H, "roots": [R1, ..., RL]},
                               "x": {"blob": H, "root": R}},
     "verify": {"mode": "full", "rounds": R}}

**Blob inputs** (every H and R a 0x-prefixed lower-case 32-byte hex hash). ``blob`` is the
store name of the bytes (keccak256 of the content, :mod:`oracle.store.blobs`); each ``root``
is the row Merkle root (:mod:`oracle.compute.merkle`, the same tree as results) of the blob
cut into the rows below, so one row can later be proven against the spec with a proof of
⌈log2 rows⌉ hashes (the single-entry disputes of DESIGN.md §disputes build on this):

* ``a``: A row-major, little-endian int8/float32; m rows of k elements;
* ``b``: B **column-major** (Bᵀ row-major); n rows of k elements, row j = column j of B;
* ``x``: the batch row-major, float32; ``batch`` rows of d0 elements;
* ``weights``: for each layer l = 1..L in turn, d_l rows of d_{l-1}+1 float32: row j is
  column j of W_l followed by the bias b_l[j] (a PyTorch ``nn.Linear`` weight row, then its
  bias); ``roots[l-1]`` is the root over layer l's d_l rows.

A blob whose content does not match its roots can never be computed or verified
(:class:`~oracle.exceptions.InputError`).

``openings`` exists only in sampled mode (required there); ``rounds`` (Freivalds rounds) exists
only for fp32 jobs (default 2). For int8 the number of rounds is derived so that the false
accept probability is at most 2^-40 and is not a spec field. ``mlp`` supports ``full`` only.

Limits (all refused with a :class:`SpecError` naming the field):

* raw spec at most ``MAX_SPEC_BYTES`` = 4096 bytes; no duplicate keys; no unknown keys;
* every dimension in [1, ``MAX_DIM`` = 65536];
* every matrix (A, B, C; each MLP weight matrix, input and activation) at most
  ``MAX_ELEMENTS`` = 2^28 elements (1 GiB as fp32/int32);
* mlp: 1 to ``MAX_LAYERS`` = 32 layers, whole result (batch × Σ widths) at most 2^28 elements;
* ``openings`` in [1, min(m, ``MAX_OPENINGS`` = 256)], ``rounds`` in [1, ``MAX_ROUNDS`` = 16];
* ``seed`` an integer in [0, 2^64).

``work_units`` counts floating-point (or integer) operations, 2 per multiply-add:
``2·m·n·k`` for matmul and ``Σ_l 2·batch·d_{l-1}·d_l`` for mlp (bias adds and activations are
not counted). With the limits above, matmul ≤ 2·(m·k)·n ≤ 2·2^28·2^16 = 2^45 and
mlp ≤ 32·2·2^28·2^16 = 2^50, both far below 2^64 (the contract stores uint64).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from oracle.exceptions import SpecError
from oracle.protocol.canonical import canonical_json, normalize_numbers
from oracle.protocol.hashing import keccak256

__all__ = [
    "DEFAULT_FP32_ROUNDS",
    "KECCAK_INPUTS_VERSION",
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_LAYERS",
    "MAX_LLM_PARAMETERS",
    "MAX_OPENINGS",
    "MAX_ROUNDS",
    "MAX_SPEC_BYTES",
    "MAX_WORK_UNITS",
    "SPEC_VERSION",
    "InputBlob",
    "LlmModel",
    "LlmSpec",
    "MatmulSpec",
    "MlpSpec",
    "Spec",
    "llm_parameters",
    "llm_work_units",
    "parse_spec",
    "spec_hash",
    "work_units",
]

SPEC_VERSION = 1
#: The spec version of a seeded matmul whose inputs come from the keccak counter-mode stream
#: (:mod:`oracle.compute.keccak_inputs`), which a contract regenerates: disputable on-chain.
KECCAK_INPUTS_VERSION = 2
MAX_SPEC_BYTES = 4096
MAX_DIM = 1 << 16
MAX_ELEMENTS = 1 << 28
MAX_LAYERS = 32
MAX_OPENINGS = 256
MAX_ROUNDS = 16
MAX_SEED = 1 << 64
MAX_WORK_UNITS = 1 << 50
#: llm: prompt tokens (the ids are inline in the spec, which stays under MAX_SPEC_BYTES),
#: tokens generated, blocks, vocabulary.
MAX_PROMPT_TOKENS = 512
MAX_NEW_TOKENS = 256
MAX_LLM_LAYERS = 128
MAX_VOCAB = 1 << 20
#: llm: the largest model (parameters, counted from the spec's shape by
#: :func:`llm_parameters`): 10^9 parameters are 4 GB dequantized to float32, what one worker
#: or oracle process holds (with its check data) on a machine of a few tens of GB. A larger
#: model is a malformed spec, so no worker takes it and no oracle loads it.
MAX_LLM_PARAMETERS = 10**9
DEFAULT_FP32_ROUNDS = 2

_HASH_RE = re.compile(r"^0x[0-9a-f]{64}$")

Mode = Literal["full", "sampled"]


@dataclass(frozen=True)
class InputBlob:
    """A blob input: its store name and the Merkle root(s) over its rows (module docstring)."""

    blob: str
    roots: tuple[str, ...]

    @property
    def root(self) -> str:
        """The only root of a one-matrix blob (``a``, ``b``, ``x``)."""
        return self.roots[0]


@dataclass(frozen=True)
class MatmulSpec:
    """A validated ``matmul`` spec: C (m×n) = A (m×k) · B (k×n)."""

    dtype: Literal["int8", "fp32"]
    m: int
    n: int
    k: int
    seed: int | None
    a: InputBlob | None
    b: InputBlob | None
    mode: Mode
    openings: int
    rounds: int | None
    #: Seeded inputs from the keccak counter-mode stream (spec version 2), not SFC64.
    keccak_inputs: bool = False

    kind: Literal["matmul"] = "matmul"


@dataclass(frozen=True)
class MlpSpec:
    """A validated ``mlp`` spec: ``L = len(dims) - 1`` dense layers on a batch of inputs."""

    batch: int
    dims: tuple[int, ...]
    activation: Literal["relu", "gelu"]
    seed: int | None
    weights: InputBlob | None
    x: InputBlob | None
    rounds: int
    dtype: Literal["fp32"] = "fp32"
    mode: Mode = "full"
    kind: Literal["mlp"] = "mlp"


@dataclass(frozen=True)
class LlmModel:
    """The model an ``llm`` spec names: its GGUF blob and the shape its work is counted from
    (checked against the file by whoever loads it)."""

    blob: str
    arch: str
    layers: int
    dim: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int

    @property
    def d_q(self) -> int:
        """Width of the query projection (heads · head_dim)."""
        return self.heads * self.head_dim

    @property
    def d_kv(self) -> int:
        """Width of the key and value projections (kv_heads · head_dim)."""
        return self.kv_heads * self.head_dim


@dataclass(frozen=True)
class LlmSpec:
    """A validated ``llm`` spec: greedy generation of up to ``max_new_tokens`` tokens after
    ``prompt`` (token ids), stopping at ``eos`` if given."""

    model: LlmModel
    prompt: tuple[int, ...]
    max_new_tokens: int
    eos: int | None
    openings: int
    seed: None = None
    dtype: Literal["fp32"] = "fp32"
    mode: Mode = "sampled"
    kind: Literal["llm"] = "llm"


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the kind-specific parameters plus the canonical bytes and their hash."""

    params: MatmulSpec | MlpSpec | LlmSpec
    canonical: bytes
    hash: bytes

    @property
    def kind(self) -> str:
        """The job kind (``"matmul"`` or ``"mlp"``)."""
        return self.params.kind

    @property
    def mode(self) -> Mode:
        """The verification mode."""
        return self.params.mode

    @property
    def version(self) -> int:
        """The spec's ``version`` field."""
        return int(self.as_dict()["version"])

    def as_dict(self) -> dict[str, Any]:
        """The normalized spec as a plain dict (a fresh copy)."""
        data: dict[str, Any] = json.loads(self.canonical)
        return data


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(f"spec.{key}: duplicate key")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise SpecError(f"spec: {name} is not allowed")


def _load(raw: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        data = normalize_numbers(raw, "spec")
        size = len(canonical_json(data))
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"spec: {size} bytes, limit {MAX_SPEC_BYTES}")
        return dict(data)
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes | bytearray):
        raise SpecError(f"spec: expected JSON bytes, str or a mapping, got {type(raw).__name__}")
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"spec: {len(raw)} bytes, limit {MAX_SPEC_BYTES}")
    try:
        data = json.loads(
            bytes(raw).decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except SpecError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SpecError(f"spec: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SpecError("spec: top level must be a JSON object")
    return dict(normalize_numbers(data, "spec"))


def _int(obj: Mapping[str, Any], key: str, path: str, lo: int, hi: int) -> int:
    if key not in obj:
        raise SpecError(f"{path}.{key}: missing")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}.{key}: must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise SpecError(f"{path}.{key}: must be in [{lo}, {hi}], got {value}")
    return value


def _choice(obj: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
    if key not in obj:
        raise SpecError(f"{path}.{key}: missing")
    value = obj[key]
    if value not in allowed:
        raise SpecError(f"{path}.{key}: must be one of {list(allowed)}, got {value!r}")
    return str(value)


def _hash_field(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not _HASH_RE.match(value):
        raise SpecError(f"{path}.{key}: must be a 0x-prefixed lower-case 32-byte hex hash")
    return value


def _only_keys(obj: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise SpecError(f"{path}.{extra[0]}: unknown field")


def _obj(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise SpecError(f"{path}.{key}: must be an object")
    return value


def _elements(path: str, *dims: int) -> None:
    total = 1
    for d in dims:
        total *= d
    if total > MAX_ELEMENTS:
        raise SpecError(f"{path}: {total} elements, limit {MAX_ELEMENTS}")


def _blob_ref(inputs: Mapping[str, Any], key: str, roots: int | None) -> InputBlob:
    """``inputs[key]`` as {"blob", "root"} (``roots`` None) or {"blob", "roots": [...]}."""
    path = f"spec.inputs.{key}"
    ref = _obj(inputs, key, "spec.inputs")
    blob = _hash_field(ref, "blob", path)
    if roots is None:
        _only_keys(ref, path, {"blob", "root"})
        return InputBlob(blob, (_hash_field(ref, "root", path),))
    _only_keys(ref, path, {"blob", "roots"})
    listed = ref.get("roots")
    if not isinstance(listed, list) or len(listed) != roots:
        raise SpecError(f"{path}.roots: must be a list of {roots} hashes (one per layer)")
    return InputBlob(
        blob, tuple(_hash_field({"r": r}, "r", f"{path}.roots[{i}]") for i, r in enumerate(listed))
    )


def _inputs(
    data: Mapping[str, Any], names: tuple[str, str], roots: tuple[int | None, int | None]
) -> tuple[int | None, InputBlob | None, InputBlob | None]:
    inputs = _obj(data, "inputs", "spec")
    if "seed" in inputs:
        _only_keys(inputs, "spec.inputs", {"seed"})
        return _int(inputs, "seed", "spec.inputs", 0, MAX_SEED - 1), None, None
    _only_keys(inputs, "spec.inputs", set(names))
    return (
        None,
        _blob_ref(inputs, names[0], roots[0]),
        _blob_ref(inputs, names[1], roots[1]),
    )


def _norm_inputs(
    seed: int | None, names: tuple[str, str], refs: tuple[InputBlob | None, InputBlob | None]
) -> dict[str, Any]:
    if seed is not None:
        return {"seed": seed}
    out: dict[str, Any] = {}
    for name, ref in zip(names, refs, strict=True):
        assert ref is not None
        many = name == "weights"
        out[name] = {
            "blob": ref.blob,
            "roots" if many else "root": list(ref.roots) if many else ref.root,
        }
    return out


def _parse_matmul(data: Mapping[str, Any]) -> tuple[MatmulSpec, dict[str, Any]]:
    _only_keys(data, "spec", {"version", "kind", "dtype", "m", "n", "k", "inputs", "verify"})
    dtype = _choice(data, "dtype", "spec", ("int8", "fp32"))
    m = _int(data, "m", "spec", 1, MAX_DIM)
    n = _int(data, "n", "spec", 1, MAX_DIM)
    k = _int(data, "k", "spec", 1, MAX_DIM)
    _elements("spec.m*spec.k (A)", m, k)
    _elements("spec.k*spec.n (B)", k, n)
    _elements("spec.m*spec.n (C)", m, n)
    seed, a_ref, b_ref = _inputs(data, ("a", "b"), (None, None))
    version = data["version"]
    if version == KECCAK_INPUTS_VERSION and seed is None:
        raise SpecError(
            f"spec.version: version {KECCAK_INPUTS_VERSION} is for seeded inputs (the keccak "
            f"stream); a job on blob inputs is version {SPEC_VERSION}"
        )
    verify = _obj(data, "verify", "spec")
    mode = _choice(verify, "mode", "spec.verify", ("full", "sampled"))
    allowed = {"mode"} | ({"openings"} if mode == "sampled" else set())
    allowed |= {"rounds"} if dtype == "fp32" else set()
    _only_keys(verify, "spec.verify", allowed)
    openings = (
        _int(verify, "openings", "spec.verify", 1, min(m, MAX_OPENINGS)) if mode == "sampled" else 0
    )
    rounds: int | None = None
    if dtype == "fp32":
        rounds = (
            _int(verify, "rounds", "spec.verify", 1, MAX_ROUNDS)
            if "rounds" in verify
            else DEFAULT_FP32_ROUNDS
        )
    params = MatmulSpec(
        dtype=dtype,  # type: ignore[arg-type]
        m=m,
        n=n,
        k=k,
        seed=seed,
        a=a_ref,
        b=b_ref,
        mode=mode,  # type: ignore[arg-type]
        openings=openings,
        rounds=rounds,
        keccak_inputs=version == KECCAK_INPUTS_VERSION,
    )
    norm_verify: dict[str, Any] = {"mode": mode}
    if mode == "sampled":
        norm_verify["openings"] = openings
    if rounds is not None:
        norm_verify["rounds"] = rounds
    norm_inputs = _norm_inputs(seed, ("a", "b"), (a_ref, b_ref))
    normalized = {
        "version": version,
        "kind": "matmul",
        "dtype": dtype,
        "m": m,
        "n": n,
        "k": k,
        "inputs": norm_inputs,
        "verify": norm_verify,
    }
    return params, normalized


def _parse_mlp(data: Mapping[str, Any]) -> tuple[MlpSpec, dict[str, Any]]:
    _only_keys(
        data,
        "spec",
        {"version", "kind", "dtype", "batch", "dims", "activation", "inputs", "verify"},
    )
    _choice(data, "dtype", "spec", ("fp32",))
    batch = _int(data, "batch", "spec", 1, MAX_DIM)
    dims_raw = data.get("dims")
    if not isinstance(dims_raw, list) or not 2 <= len(dims_raw) <= MAX_LAYERS + 1:
        raise SpecError(f"spec.dims: must be a list of 2 to {MAX_LAYERS + 1} integers")
    dims = tuple(
        _int({"d": d}, "d", f"spec.dims[{i}]", 1, MAX_DIM)  # reuse the integer checks
        for i, d in enumerate(dims_raw)
    )
    for i in range(1, len(dims)):
        _elements(f"spec.dims[{i}] (weights W{i})", dims[i - 1], dims[i])
    _elements("spec.batch*spec.dims[0] (input x)", batch, dims[0])
    width = 2 * sum(dims[1:-1]) + dims[-1]
    _elements("spec.batch*result width (activations)", batch, width)
    activation = _choice(data, "activation", "spec", ("relu", "gelu"))
    seed, w_ref, x_ref = _inputs(data, ("weights", "x"), (len(dims) - 1, None))
    verify = _obj(data, "verify", "spec")
    _choice(verify, "mode", "spec.verify", ("full",))
    _only_keys(verify, "spec.verify", {"mode", "rounds"})
    rounds = (
        _int(verify, "rounds", "spec.verify", 1, MAX_ROUNDS)
        if "rounds" in verify
        else DEFAULT_FP32_ROUNDS
    )
    params = MlpSpec(
        batch=batch,
        dims=dims,
        activation=activation,  # type: ignore[arg-type]
        seed=seed,
        weights=w_ref,
        x=x_ref,
        rounds=rounds,
    )
    norm_inputs = _norm_inputs(seed, ("weights", "x"), (w_ref, x_ref))
    normalized = {
        "version": SPEC_VERSION,
        "kind": "mlp",
        "dtype": "fp32",
        "batch": batch,
        "dims": list(dims),
        "activation": activation,
        "inputs": norm_inputs,
        "verify": {"mode": "full", "rounds": rounds},
    }
    return params, normalized


def _parse_llm(data: Mapping[str, Any]) -> tuple[LlmSpec, dict[str, Any]]:
    _only_keys(
        data, "spec", {"version", "kind", "model", "prompt", "max_new_tokens", "eos", "verify"}
    )
    model = _obj(data, "model", "spec")
    fields = ("layers", "dim", "ffn", "heads", "kv_heads", "head_dim", "vocab", "context")
    _only_keys(model, "spec.model", {"blob", "arch", *fields})
    blob = _hash_field(model, "blob", "spec.model")
    arch = _choice(model, "arch", "spec.model", ("llama",))
    shape = {
        f: _int(model, f, "spec.model", 1, MAX_DIM if f != "vocab" else MAX_VOCAB) for f in fields
    }
    if shape["layers"] > MAX_LLM_LAYERS:
        raise SpecError(
            f"spec.model.layers: must be in [1, {MAX_LLM_LAYERS}], got {shape['layers']}"
        )
    if shape["heads"] % shape["kv_heads"]:
        raise SpecError("spec.model.kv_heads: must divide spec.model.heads")
    if shape["head_dim"] % 2:
        raise SpecError("spec.model.head_dim: must be even (RoPE rotates pairs)")
    llm_model = LlmModel(blob=blob, arch=arch, **shape)
    n_params = llm_parameters(llm_model)
    if n_params > MAX_LLM_PARAMETERS:
        raise SpecError(
            f"spec.model: {n_params:,} parameters, the limit is {MAX_LLM_PARAMETERS:,} "
            "(4 GB in float32)"
        )
    prompt = data.get("prompt")
    if not isinstance(prompt, list) or not 1 <= len(prompt) <= MAX_PROMPT_TOKENS:
        raise SpecError(f"spec.prompt: must be a list of 1 to {MAX_PROMPT_TOKENS} token ids")
    ids = tuple(
        _int({"t": t}, "t", f"spec.prompt[{i}]", 0, shape["vocab"] - 1)
        for i, t in enumerate(prompt)
    )
    new = _int(data, "max_new_tokens", "spec", 1, MAX_NEW_TOKENS)
    if len(ids) + new > shape["context"]:
        raise SpecError(
            f"spec.max_new_tokens: prompt ({len(ids)}) + {new} new tokens exceed the model's "
            f"context of {shape['context']}"
        )
    eos = _int(data, "eos", "spec", 0, shape["vocab"] - 1) if data.get("eos") is not None else None
    verify = _obj(data, "verify", "spec")
    _choice(verify, "mode", "spec.verify", ("sampled",))
    _only_keys(verify, "spec.verify", {"mode", "openings"})
    openings = _int(verify, "openings", "spec.verify", 1, MAX_OPENINGS)
    params = LlmSpec(model=llm_model, prompt=ids, max_new_tokens=new, eos=eos, openings=openings)
    normalized = {
        "version": SPEC_VERSION,
        "kind": "llm",
        "model": {"blob": blob, "arch": arch, **shape},
        "prompt": list(ids),
        "max_new_tokens": new,
        "eos": eos,
        "verify": {"mode": "sampled", "openings": openings},
    }
    return params, normalized


def llm_parameters(m: LlmModel) -> int:
    """The parameters of a model of shape ``m``, at most: embedding and a separate output
    head (a tied one shares the embedding), every block's linear maps and norms, the final
    norm."""
    block = m.dim * m.d_q + 2 * m.dim * m.d_kv + m.d_q * m.dim + 3 * m.dim * m.ffn + 2 * m.dim
    return 2 * m.vocab * m.dim + m.layers * block + m.dim


def llm_work_units(p: LlmSpec) -> int:
    """2 × the multiply-adds of generating ``max_new_tokens`` tokens (what the job escrows
    for, though decoding may stop earlier at ``eos``): every block's linear maps at the
    T = P + N − 1 positions run, attention's QKᵀ and AV over the causal triangle only, and the
    output head once per generated token (``oracle.compute.llm.work_units`` counts the same,
    tested)."""
    m = p.model
    t = len(p.prompt) + p.max_new_tokens - 1
    linear = m.dim * m.d_q + 2 * m.dim * m.d_kv + m.d_q * m.dim + 3 * m.dim * m.ffn
    attention = 2 * m.heads * m.head_dim * (t * (t + 1) // 2)
    head = p.max_new_tokens * m.dim * m.vocab
    return 2 * (m.layers * (t * linear + attention) + head)


_Parser = Callable[[Mapping[str, Any]], tuple[MatmulSpec | MlpSpec | LlmSpec, dict[str, Any]]]
_PARSERS: dict[str, _Parser] = {"matmul": _parse_matmul, "mlp": _parse_mlp, "llm": _parse_llm}


def parse_spec(raw: Spec | bytes | str | Mapping[str, Any]) -> Spec:
    """Validate a spec and return it with its canonical bytes and hash.

    Accepts JSON text/bytes or an already-decoded mapping (a :class:`Spec` is returned as is).
    Raises :class:`SpecError` whose message starts with the offending field, e.g.
    ``"spec.verify.openings: must be in [1, 256], got 0"``.
    """
    if isinstance(raw, Spec):
        return raw
    data = _load(raw)
    version = data.get("version")
    if version not in (SPEC_VERSION, KECCAK_INPUTS_VERSION) or isinstance(version, bool):
        raise SpecError(
            f"spec.version: unsupported version {version!r}, expected {SPEC_VERSION} (or "
            f"{KECCAK_INPUTS_VERSION}: a seeded matmul on the keccak input stream)"
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _PARSERS:
        raise SpecError(f"spec.kind: unknown kind {kind!r}, expected one of {sorted(_PARSERS)}")
    if version == KECCAK_INPUTS_VERSION and kind != "matmul":
        raise SpecError(
            f"spec.version: version {KECCAK_INPUTS_VERSION} is a seeded matmul's (the keccak "
            f"input stream); a {kind} spec is version {SPEC_VERSION}"
        )
    params, normalized = _PARSERS[kind](data)
    canonical = canonical_json(normalized)
    return Spec(params=params, canonical=canonical, hash=keccak256(canonical))


def spec_hash(spec: Spec | bytes | str | Mapping[str, Any]) -> bytes:
    """keccak256 of the canonical bytes of the normalized spec (32 bytes, stored on-chain)."""
    return parse_spec(spec).hash


def work_units(spec: Spec | bytes | str | Mapping[str, Any]) -> int:
    """Exact work units of a job: 2 × multiply-adds (see the module docstring for the bound)."""
    params = parse_spec(spec).params
    if isinstance(params, MatmulSpec):
        units = 2 * params.m * params.n * params.k
    elif isinstance(params, LlmSpec):
        units = llm_work_units(params)
    else:
        units = sum(
            2 * params.batch * params.dims[i - 1] * params.dims[i]
            for i in range(1, len(params.dims))
        )
    if not 0 < units <= MAX_WORK_UNITS:  # matmul and mlp cannot: their limits keep them under
        raise SpecError(f"spec: work units {units} outside (0, {MAX_WORK_UNITS}]")
    return units
