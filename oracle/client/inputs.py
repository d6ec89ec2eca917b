"""A requester's own data as a job's inputs: read the files, check them, encode, publish.

* :func:`load_npy` — one matrix from a ``.npy`` file (``numpy.load`` with
  ``allow_pickle=False``): 2-D, non-empty, int8 or float32, finite if float32.
* :func:`load_safetensors` — an MLP from a ``.safetensors`` file: ``layers.{l}.weight``
  (d_out, d_in), the PyTorch ``nn.Linear`` layout, and ``layers.{l}.bias`` (d_out,) for
  l = 0..L-1, float32 and finite, widths chaining; returned as pouw's (W_l (d_in, d_out), b_l).
* :func:`matmul_job_inputs` / :func:`mlp_job_inputs` — both files of a job, checked against
  each other; a :class:`JobInputs` with the spec's size fields and, encoded on first use, the
  blobs (:mod:`oracle.compute.blob_inputs`, the one encoder of the blob layouts).
* :func:`publish_blobs` — every blob to every store, after checking that every store answers.

Every refusal is one :class:`~oracle.exceptions.ConfigError` line naming the file (or the two
arrays) and what is wrong, raised before anything is published or escrowed. Float inputs must
be finite because the verification bounds are derived for finite inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from oracle.compute.blob_inputs import BlobInputs, matmul_blobs, mlp_blobs
from oracle.exceptions import ConfigError
from oracle.store.specs import SpecStore

__all__ = [
    "JobInputs",
    "load_npy",
    "load_safetensors",
    "matmul_job_inputs",
    "mlp_job_inputs",
    "publish_blobs",
]

#: The first bytes of a ``.npy`` file, of a zip (``.npz``) and of a pickle (protocol ≥ 2).
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"

#: ``layers.{l}.weight`` / ``layers.{l}.bias`` (no leading zeros in l).
_TENSOR_RE = re.compile(r"^layers\.(0|[1-9][0-9]*)\.(weight|bias)\Z")

#: A 32-byte hash of zeros: stands for blob names and roots while a spec is checked before
#: its inputs are encoded.
_ZERO_HASH = "0x" + "00" * 32


@dataclass(frozen=True)
class JobInputs:
    """A blob job's inputs, checked: its ``kind``, the spec's size fields (``dtype, m, n, k``
    or ``batch, dims``) and, encoded on first use of :attr:`blobs`, the bytes to publish."""

    kind: Literal["matmul", "mlp"]
    fields: dict[str, Any]
    encode: Callable[[], BlobInputs] = field(repr=False)

    @cached_property
    def blobs(self) -> BlobInputs:
        """The blobs and the spec's ``inputs`` object (row Merkle roots: linear in the data,
        so computed once)."""
        return self.encode()

    def placeholder(self) -> dict[str, Any]:
        """The spec's ``inputs`` object with zero hashes for names and roots: a spec built
        with it lets :func:`~oracle.protocol.spec.parse_spec` check the sizes and the verify
        options before the inputs are hashed."""
        if self.kind == "matmul":
            ref = {"blob": _ZERO_HASH, "root": _ZERO_HASH}
            return {"a": ref, "b": dict(ref)}
        layers = len(self.fields["dims"]) - 1
        return {
            "weights": {"blob": _ZERO_HASH, "roots": [_ZERO_HASH] * layers},
            "x": {"blob": _ZERO_HASH, "root": _ZERO_HASH},
        }

    def names(self) -> dict[str, str]:
        """Each input's blob name (0x-prefixed), e.g. ``{"a": "0x…", "b": "0x…"}``."""
        return {key: ref["blob"] for key, ref in self.blobs.inputs.items()}


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def _first_non_finite(arr: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first NaN/Inf of a float array, None if all are finite."""
    if np.isfinite(arr).all():
        return None
    return tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])


def _where(index: tuple[int, ...]) -> str:
    return f"row {index[0]}, column {index[1]}" if len(index) == 2 else f"element {index[0]}"


def _read_magic(path: str, what: str) -> bytes:
    """The file's first bytes; ConfigError if it is missing or unreadable."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read ({exc.strerror})") from None


def _dtype_advice(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "f":
        return "save a.astype(np.float32)"
    if dtype.kind in "iub":
        return "save a.astype(np.int8) if every value is in [-128, 127], else a.astype(np.float32)"
    return "save a plain numeric array"


def load_npy(path: str, field: str) -> np.ndarray:
    """Matrix ``field`` (e.g. ``--a``) from the ``.npy`` file ``path``: 2-D, non-empty, int8
    or float32 (finite), returned native-endian and C-contiguous. ConfigError otherwise."""
    what = f"{field} {path}"
    magic = _read_magic(path, what)
    if magic.startswith(_PICKLE_MAGIC):
        raise ConfigError(f"{what}: holds Python objects (pickle); save a plain numeric array")
    if magic.startswith(_ZIP_MAGIC):
        raise ConfigError(f"{what}: is an .npz archive; save one array with np.save")
    if magic != _NPY_MAGIC:
        raise ConfigError(f"{what}: is not a .npy file (write one with np.save)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise ConfigError(
                f"{what}: holds Python objects (pickle); save a plain numeric array"
            ) from None
        raise ConfigError(f"{what}: is not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{what}: is not a readable .npy file ({exc})") from None
    if not isinstance(arr, np.ndarray):  # pragma: no cover - .npy magic checked above
        raise ConfigError(f"{what}: is not a .npy file (write one with np.save)")
    if arr.ndim != 2:
        raise ConfigError(f"{what}: is {arr.ndim}-D (shape {arr.shape}); a matrix must be 2-D")
    if arr.size == 0:
        raise ConfigError(f"{what}: is empty (shape {arr.shape})")
    if arr.dtype.kind == "i" and arr.dtype.itemsize == 1:
        return np.ascontiguousarray(arr, dtype=np.int8)
    if arr.dtype.kind == "f" and arr.dtype.itemsize == 4:
        arr = np.ascontiguousarray(arr, dtype=np.float32)  # native byte order
        bad = _first_non_finite(arr)
        if bad is not None:
            raise ConfigError(
                f"{what}: contains NaN or Inf at {_where(bad)}: fp32 inputs must be finite"
            )
        return arr
    raise ConfigError(
        f"{what}: dtype {arr.dtype} is not supported (int8 or float32); {_dtype_advice(arr.dtype)}"
    )


def load_safetensors(path: str, field: str = "--weights") -> list[tuple[np.ndarray, np.ndarray]]:
    """The layers of the MLP in ``path``: ``[(W_l (d_in, d_out), b_l (d_out,))]`` float32,
    from tensors ``layers.{l}.weight`` (d_out, d_in) and ``layers.{l}.bias`` (d_out,),
    l = 0..L-1, nothing else. ConfigError naming the tensor and the problem otherwise."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    what = f"{field} {path}"
    _read_magic(path, what)
    try:
        tensors = load_file(path)
    except SafetensorError:
        raise ConfigError(
            f"{what}: is not a safetensors file (write one with safetensors.numpy.save_file "
            "or safetensors.torch.save_file)"
        ) from None
    except (ValueError, TypeError) as exc:  # a dtype numpy has no type for (bfloat16, fp8)
        raise ConfigError(
            f"{what}: holds a tensor numpy cannot read ({exc}); mlp weights must be float32"
        ) from None
    expected = "layers.{l}.weight (d_out, d_in) and layers.{l}.bias (d_out,) for l = 0, 1, ..."
    layers: dict[int, dict[str, np.ndarray]] = {}
    for name in sorted(tensors):
        match = _TENSOR_RE.match(name)
        if match is None:
            raise ConfigError(f"{what}: unexpected tensor {name} (expected {expected})")
        layers.setdefault(int(match[1]), {})[match[2]] = tensors[name]
    if not layers:
        raise ConfigError(f"{what}: holds no tensors (expected {expected})")
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for index in range(max(layers) + 1):
        got = layers.get(index, {})
        for part in ("weight", "bias"):
            if part not in got:
                raise ConfigError(f"{what}: missing tensor layers.{index}.{part}")
        w, b = got["weight"], got["bias"]
        for part, t, rank in (("weight", w, 2), ("bias", b, 1)):
            name = f"layers.{index}.{part}"
            if t.dtype != np.float32:
                raise ConfigError(
                    f"{what}: tensor {name} is {t.dtype}; mlp weights must be float32 "
                    "(convert with tensor.float() or a.astype(np.float32))"
                )
            if t.ndim != rank or t.size == 0:
                layout = "(d_out, d_in) as nn.Linear.weight" if rank == 2 else "(d_out,)"
                raise ConfigError(
                    f"{what}: tensor {name} has shape {tuple(t.shape)}, expected {layout}"
                )
            bad = _first_non_finite(t)
            if bad is not None:
                raise ConfigError(
                    f"{what}: tensor {name} contains NaN or Inf at {_where(bad)}: fp32 inputs "
                    "must be finite"
                )
        if b.shape[0] != w.shape[0]:
            raise ConfigError(
                f"{what}: tensor layers.{index}.bias has shape {tuple(b.shape)}, expected "
                f"({w.shape[0]},) (layers.{index}.weight has {w.shape[0]} output rows)"
            )
        if out and w.shape[1] != out[-1][0].shape[1]:
            prev = out[-1][0].shape[1]
            raise ConfigError(
                f"{what}: layers.{index}.weight takes {w.shape[1]} inputs but layers."
                f"{index - 1} gives {prev} outputs: each layer's d_in must equal the previous "
                "layer's d_out"
            )
        out.append(
            (np.ascontiguousarray(w.T, dtype=np.float32), np.ascontiguousarray(b, np.float32))
        )
    return out


def matmul_job_inputs(a_path: str, b_path: str) -> JobInputs:
    """A matmul job on A (m×k, ``a_path``) and B (k×n, ``b_path``, a normal row-major array;
    pouw stores it column-major): both int8 (an int8 job, exact int32 result) or both float32
    (an fp32 job)."""
    a = load_npy(a_path, "--a")
    b = load_npy(b_path, "--b")
    if a.dtype != b.dtype:
        raise ConfigError(
            f"A is {a.dtype} but B is {b.dtype}: both must be int8 (an int8 job) or both "
            "float32 (an fp32 job)"
        )
    if a.shape[1] != b.shape[0]:
        raise ConfigError(
            f"A is {_shape(a.shape)} but B is {_shape(b.shape)}: A's columns ({a.shape[1]}) "
            f"must equal B's rows ({b.shape[0]})"
        )
    dtype = "int8" if a.dtype == np.int8 else "fp32"
    fields = {"dtype": dtype, "m": a.shape[0], "n": b.shape[1], "k": a.shape[1]}
    return JobInputs("matmul", fields, lambda: matmul_blobs(a, b))


def mlp_job_inputs(weights_path: str, x_path: str) -> JobInputs:
    """An mlp job: the network in ``weights_path`` (:func:`load_safetensors`) on the float32
    batch in ``x_path`` (batch×d0, one sample per row)."""
    layers = load_safetensors(weights_path)
    x = load_npy(x_path, "--x")
    if x.dtype != np.float32:
        raise ConfigError(
            f"--x {x_path}: is {x.dtype}; mlp inputs are float32: save x.astype(np.float32)"
        )
    d0 = layers[0][0].shape[0]
    if x.shape[1] != d0:
        raise ConfigError(
            f"x is {_shape(x.shape)} but layers.0.weight takes {d0} inputs: x's columns "
            f"({x.shape[1]}) must equal d0 ({d0})"
        )
    dims = [d0, *(w.shape[1] for w, _ in layers)]
    return JobInputs("mlp", {"batch": x.shape[0], "dims": dims}, lambda: mlp_blobs(x, layers))


def publish_blobs(blobs: Mapping[str, bytes], locations: Sequence[str]) -> list[str]:
    """Put every blob in every store (a directory or an HTTP blob server) after checking that
    every store answers; returns the names (0x-prefixed). A store that does not answer or
    refuses is a :class:`~oracle.exceptions.BlobError` naming it."""
    stores = SpecStore(list(locations))
    stores.require_all()
    return ["0x" + stores.put_blob(data) for data in blobs.values()]
