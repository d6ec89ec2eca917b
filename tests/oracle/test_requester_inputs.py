"""A requester's own data as job inputs (oracle/client/inputs.py, `pouw job create --a/--b`
and `--weights/--x`), without a chain.

Every bad file is refused with one exact ConfigError line naming the file and the problem;
good files round-trip: the spec built from them, published to a directory store, loads back
(oracle.compute.work.load_inputs) equal to the arrays, and compute() equals numpy's answer.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import save_file

from oracle.cli.main import cli
from oracle.client.inputs import (
    load_npy,
    load_safetensors,
    matmul_job_inputs,
    mlp_job_inputs,
    publish_blobs,
)
from oracle.client.jobs import matmul_spec, mlp_spec
from oracle.compute.kinds.mlp import gelu
from oracle.compute.work import compute, load_inputs
from oracle.exceptions import BlobTransferError, ConfigError, SpecError
from oracle.protocol.spec import Spec, parse_spec
from oracle.store.blobs import HttpBlobClient, LocalBlobStore
from oracle.store.server import BlobServer

RNG = np.random.default_rng(13)


def npy(tmp_path: Path, name: str, arr: Any) -> str:
    path = tmp_path / name
    np.save(path, arr)
    return str(path)


def int8(*shape: int) -> np.ndarray:
    return RNG.integers(-128, 128, shape, dtype=np.int8)


def fp32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def model(tmp_path: Path, dims: list[int], name: str = "model.safetensors") -> tuple[str, dict]:
    """A safetensors file of an MLP with widths ``dims`` in the nn.Linear layout."""
    tensors = {}
    for l in range(len(dims) - 1):  # noqa: E741
        tensors[f"layers.{l}.weight"] = fp32(dims[l + 1], dims[l]) / np.float32(dims[l] ** 0.5)
        tensors[f"layers.{l}.bias"] = fp32(dims[l + 1]) / np.float32(8)
    path = tmp_path / name
    save_file(tensors, str(path))
    return str(path), tensors


def refused(fn: Any, *args: Any) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# -- .npy files -------------------------------------------------------------------------------


def test_npy__pickled_object_array__refused(tmp_path):
    path = str(tmp_path / "A.npy")
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert refused(load_npy, path, "--a") == (
        f"--a {path}: holds Python objects (pickle); save a plain numeric array"
    )


def test_npy__object_dtype_matrix_and_raw_pickle__refused(tmp_path):
    obj = str(tmp_path / "obj.npy")
    np.save(obj, np.array([[1, "x"], [2, "y"]], dtype=object), allow_pickle=True)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps(np.zeros((2, 2), np.float32)))
    for path in (obj, str(raw)):
        assert refused(load_npy, path, "--b") == (
            f"--b {path}: holds Python objects (pickle); save a plain numeric array"
        )


@pytest.mark.parametrize(
    ("arr", "advice"),
    [
        (np.zeros((2, 3), np.float64), "save a.astype(np.float32)"),
        (np.zeros((2, 3), np.float16), "save a.astype(np.float32)"),
        (
            np.zeros((2, 3), np.int32),
            "save a.astype(np.int8) if every value is in [-128, 127], else a.astype(np.float32)",
        ),
    ],
)
def test_npy__unsupported_dtype__refused_with_the_conversion(tmp_path, arr, advice):
    path = npy(tmp_path, "A.npy", arr)
    assert refused(load_npy, path, "--a") == (
        f"--a {path}: dtype {arr.dtype} is not supported (int8 or float32); {advice}"
    )


@pytest.mark.parametrize(
    ("arr", "problem"),
    [
        (np.zeros(5, np.float32), "is 1-D (shape (5,)); a matrix must be 2-D"),
        (np.zeros((2, 3, 4), np.int8), "is 3-D (shape (2, 3, 4)); a matrix must be 2-D"),
        (np.zeros((0, 3), np.float32), "is empty (shape (0, 3))"),
        (np.zeros((3, 0), np.int8), "is empty (shape (3, 0))"),
    ],
)
def test_npy__not_a_non_empty_matrix__refused(tmp_path, arr, problem):
    path = npy(tmp_path, "A.npy", arr)
    assert refused(load_npy, path, "--a") == f"--a {path}: {problem}"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_npy__nan_or_inf__refused_with_its_position(tmp_path, bad):
    arr = fp32(4, 5)
    arr[2, 3] = bad
    arr[3, 0] = bad  # the first one is named
    path = npy(tmp_path, "B.npy", arr)
    assert refused(load_npy, path, "--b") == (
        f"--b {path}: contains NaN or Inf at row 2, column 3: fp32 inputs must be finite"
    )


def test_npy__missing_text_npz__refused(tmp_path):
    missing = str(tmp_path / "none.npy")
    assert refused(load_npy, missing, "--a") == f"--a {missing}: no such file"
    text = tmp_path / "A.npy"
    text.write_text("1,2,3\n4,5,6\n")
    assert refused(load_npy, str(text), "--a") == (
        f"--a {text}: is not a .npy file (write one with np.save)"
    )
    npz = tmp_path / "A.npz"
    np.savez(npz, a=np.zeros((2, 2), np.float32))
    assert refused(load_npy, str(npz), "--a") == (
        f"--a {npz}: is an .npz archive; save one array with np.save"
    )


def test_npy__big_endian_and_fortran_order__read_as_the_same_values(tmp_path):
    arr = fp32(3, 4)
    got = load_npy(npy(tmp_path, "A.npy", np.asfortranarray(arr.astype(">f4"))), "--a")
    assert got.dtype == np.float32 and got.dtype.isnative and got.flags.c_contiguous
    assert np.array_equal(got, arr)


# -- the two matrices together ----------------------------------------------------------------


def test_matmul_inputs__inner_dimensions_must_match(tmp_path):
    a, b = npy(tmp_path, "A.npy", int8(3, 4)), npy(tmp_path, "B.npy", int8(5, 2))
    assert refused(matmul_job_inputs, a, b) == (
        "A is 3×4 but B is 5×2: A's columns (4) must equal B's rows (5)"
    )


def test_matmul_inputs__dtypes_must_agree(tmp_path):
    a, b = npy(tmp_path, "A.npy", int8(3, 4)), npy(tmp_path, "B.npy", fp32(4, 2))
    assert refused(matmul_job_inputs, a, b) == (
        "A is int8 but B is float32: both must be int8 (an int8 job) or both float32 (an fp32 job)"
    )


def test_matmul_inputs__rounds_on_an_int8_job__refused():
    with pytest.raises(
        ConfigError, match=r"^--rounds applies to fp32 jobs only \(this one is int8\)$"
    ):
        matmul_spec(dtype="int8", m=2, n=2, k=2, rounds=3)


def test_matmul_inputs__spec_limits_checked_before_hashing(tmp_path):
    """The placeholder spec carries the sizes and verify options, so parse_spec refuses an
    impossible one (here: 9 openings of 3 rows) without the inputs ever being encoded."""
    own = matmul_job_inputs(npy(tmp_path, "A.npy", int8(3, 4)), npy(tmp_path, "B.npy", int8(4, 2)))
    spec = matmul_spec(**own.fields, mode="sampled", openings=9, inputs=own.placeholder())
    with pytest.raises(SpecError, match=r"^spec.verify.openings: must be in \[1, 3\], got 9$"):
        parse_spec(spec)
    assert "blobs" not in own.__dict__  # cached_property never ran


def _matmul_round_trip(tmp_path: Path, a: np.ndarray, b: np.ndarray, **verify: Any) -> Spec:
    own = matmul_job_inputs(npy(tmp_path, "A.npy", a), npy(tmp_path, "B.npy", b))
    spec = parse_spec(matmul_spec(**own.fields, inputs=own.blobs.inputs, **verify))
    names = publish_blobs(own.blobs.blobs, [str(tmp_path / "store")])
    assert names == [own.names()["a"], own.names()["b"]]
    store = LocalBlobStore(tmp_path / "store")
    got = load_inputs(spec, store)
    assert np.array_equal(got.a, a) and np.array_equal(got.b, b)
    return spec


def test_matmul_round_trip__int8__exact_int32_product(tmp_path):
    a, b = int8(7, 5), int8(5, 3)
    spec = _matmul_round_trip(tmp_path, a, b, mode="sampled", openings=4)
    assert spec.params.dtype == "int8" and (spec.params.m, spec.params.n, spec.params.k) == (
        7,
        3,
        5,
    )
    c = compute(spec, store=LocalBlobStore(tmp_path / "store"))
    assert c.dtype == np.int32 and np.array_equal(c, a.astype(np.int32) @ b.astype(np.int32))


def test_matmul_round_trip__fp32__close_to_the_float64_product(tmp_path):
    a, b = fp32(6, 9), fp32(9, 4)
    spec = _matmul_round_trip(tmp_path, a, b, rounds=3)
    assert spec.params.dtype == "fp32" and spec.params.rounds == 3
    c = compute(spec, store=LocalBlobStore(tmp_path / "store"))
    assert c.dtype == np.float32
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


# -- safetensors ------------------------------------------------------------------------------


def test_safetensors__missing_tensor__named(tmp_path):
    path, tensors = model(tmp_path, [4, 6, 3])
    del tensors["layers.1.bias"]
    save_file(tensors, path)
    assert refused(load_safetensors, path) == f"--weights {path}: missing tensor layers.1.bias"


def test_safetensors__extra_tensor__named(tmp_path):
    path, tensors = model(tmp_path, [4, 3])
    tensors["head.weight"] = fp32(2, 3)
    save_file(tensors, path)
    assert refused(load_safetensors, path) == (
        f"--weights {path}: unexpected tensor head.weight (expected layers.{{l}}.weight "
        "(d_out, d_in) and layers.{l}.bias (d_out,) for l = 0, 1, ...)"
    )


def test_safetensors__wrong_shapes__refused(tmp_path):
    path, tensors = model(tmp_path, [4, 3])
    save_file({**tensors, "layers.0.weight": fp32(12)}, path)
    assert refused(load_safetensors, path) == (
        f"--weights {path}: tensor layers.0.weight has shape (12,), expected (d_out, d_in) as "
        "nn.Linear.weight"
    )
    save_file({**tensors, "layers.0.bias": fp32(4)}, path)
    assert refused(load_safetensors, path) == (
        f"--weights {path}: tensor layers.0.bias has shape (4,), expected (3,) "
        "(layers.0.weight has 3 output rows)"
    )


def test_safetensors__widths_must_chain(tmp_path):
    path, tensors = model(tmp_path, [4, 6, 3])
    save_file({**tensors, "layers.1.weight": fp32(3, 5)}, path)
    assert refused(load_safetensors, path) == (
        f"--weights {path}: layers.1.weight takes 5 inputs but layers.0 gives 6 outputs: each "
        "layer's d_in must equal the previous layer's d_out"
    )


def test_safetensors__float16_and_nan__refused(tmp_path):
    path, tensors = model(tmp_path, [4, 3])
    save_file({**tensors, "layers.0.weight": tensors["layers.0.weight"].astype(np.float16)}, path)
    assert refused(load_safetensors, path) == (
        f"--weights {path}: tensor layers.0.weight is float16; mlp weights must be float32 "
        "(convert with tensor.float() or a.astype(np.float32))"
    )
    bias = tensors["layers.0.bias"].copy()
    bias[1] = np.nan
    save_file({**tensors, "layers.0.bias": bias}, path)
    assert refused(load_safetensors, path) == (
        f"--weights {path}: tensor layers.0.bias contains NaN or Inf at element 1: fp32 inputs "
        "must be finite"
    )


def test_safetensors__text_file_and_missing_file__refused(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_text("this is not a model\n")
    assert refused(load_safetensors, str(path)) == (
        f"--weights {path}: is not a safetensors file (write one with safetensors.numpy."
        "save_file or safetensors.torch.save_file)"
    )
    missing = str(tmp_path / "none.safetensors")
    assert refused(load_safetensors, missing) == f"--weights {missing}: no such file"


def test_mlp_inputs__x_width_and_dtype_checked(tmp_path):
    weights, _ = model(tmp_path, [4, 6, 3])
    x = npy(tmp_path, "x.npy", fp32(8, 5))
    assert refused(mlp_job_inputs, weights, x) == (
        "x is 8×5 but layers.0.weight takes 4 inputs: x's columns (5) must equal d0 (4)"
    )
    x = npy(tmp_path, "x.npy", int8(8, 4))
    assert refused(mlp_job_inputs, weights, x) == (
        f"--x {x}: is int8; mlp inputs are float32: save x.astype(np.float32)"
    )


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_mlp_round_trip__loads_back_and_computes_the_forward_pass(tmp_path, activation):
    weights, tensors = model(tmp_path, [5, 7, 6, 3])
    x = fp32(9, 5)
    own = mlp_job_inputs(weights, npy(tmp_path, "x.npy", x))
    assert own.fields == {"batch": 9, "dims": [5, 7, 6, 3]}
    spec = parse_spec(mlp_spec(**own.fields, activation=activation, inputs=own.blobs.inputs))
    publish_blobs(own.blobs.blobs, [str(tmp_path / "store")])
    store = LocalBlobStore(tmp_path / "store")
    loaded = load_inputs(spec, store)
    assert np.array_equal(loaded.x, x)
    for l, (w, b) in enumerate(loaded.layers):  # noqa: E741
        assert np.array_equal(w, tensors[f"layers.{l}.weight"].T)
        assert np.array_equal(b, tensors[f"layers.{l}.bias"])
    out = compute(spec, store=store)
    # the result layout: per sample Z_1, H_1, Z_2, H_2, Z_3
    parts, h = [], x.astype(np.float64)
    for l in range(3):  # noqa: E741
        z = h @ tensors[f"layers.{l}.weight"].T.astype(np.float64) + tensors[f"layers.{l}.bias"]
        parts.append(z)
        if l < 2:
            h = np.maximum(z, 0) if activation == "relu" else gelu(z)
            parts.append(h)
    np.testing.assert_allclose(out, np.concatenate(parts, axis=1), rtol=1e-4, atol=1e-5)


# -- publishing -------------------------------------------------------------------------------


def test_publish__every_store_gets_every_blob(tmp_path):
    own = matmul_job_inputs(npy(tmp_path, "A.npy", int8(3, 4)), npy(tmp_path, "B.npy", int8(4, 2)))
    with BlobServer(LocalBlobStore(tmp_path / "served")) as srv:
        names = publish_blobs(own.blobs.blobs, [str(tmp_path / "dir"), srv.url])
        client = HttpBlobClient(srv.url)
        for name in names:
            data = own.blobs.blobs[name]
            assert LocalBlobStore(tmp_path / "dir").get(name) == data == client.get(name)


def test_publish__a_store_down__named_and_nothing_written_anywhere(tmp_path):
    own = matmul_job_inputs(npy(tmp_path, "A.npy", int8(3, 4)), npy(tmp_path, "B.npy", int8(4, 2)))
    store_dir = tmp_path / "dir"
    store_dir.mkdir()
    with pytest.raises(BlobTransferError) as info:
        publish_blobs(own.blobs.blobs, [str(store_dir), "http://127.0.0.1:9"])
    assert str(info.value).startswith("store http://127.0.0.1:9 does not answer: GET ")
    assert "\n" not in str(info.value)
    assert list(store_dir.iterdir()) == []


def test_publish__a_directory_store_that_is_a_file__named(tmp_path):
    own = matmul_job_inputs(npy(tmp_path, "A.npy", int8(3, 4)), npy(tmp_path, "B.npy", int8(4, 2)))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BlobTransferError) as info:
        publish_blobs(own.blobs.blobs, [str(tmp_path / "dir"), str(blocker)])
    assert str(info.value) == f"store {blocker}: {blocker} is not a directory"
    assert not (tmp_path / "dir").exists()


# -- the command's flags (refused before any chain is contacted) -------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--a", "A.npy"], "--a and --b go together: give both"),
        (["--kind", "mlp", "--x", "x.npy"], "--weights and --x go together: give both"),
        (["--kind", "mlp", "--a", "A.npy"], "--a and --b apply to --kind matmul only"),
        (
            ["--weights", "m.safetensors", "--x", "x.npy"],
            "--weights and --x apply to --kind mlp only",
        ),
        (
            ["--a", "A.npy", "--b", "B.npy", "--n", "4", "--seed", "3"],
            "--a and --b cannot be combined with --n, --seed (the files give the sizes and the "
            "dtype)",
        ),
        (
            ["--kind", "mlp", "--weights", "m.safetensors", "--x", "x.npy", "--mode", "sampled"],
            "mlp verifies in full mode only (--mode sampled, --openings: matmul)",
        ),
        (
            ["--spec-file", "job.json", "--a", "A.npy", "--b", "B.npy"],
            "--spec-file cannot be combined with --a, --b",
        ),
        (["--a", "A.npy", "--b", "B.npy"], "--a A.npy: no such file"),
    ],
)
def test_cli_job_create__flag_combinations__one_line_exit_2(tmp_path, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner(mix_stderr=False).invoke(
        cli,
        ["job", "create", "--keyfile", "k", "--spec-store", "s", "--amount", "1", *flags],
    )
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {message}\n"
    assert not (tmp_path / "s").exists()


def test_cli_job_create__help_documents_the_formats():
    result = CliRunner().invoke(cli, ["job", "create", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in (
        "allow_pickle=False",
        "exact int32 result",
        "column-major",
        "layers.{l}.weight (d_out, d_in)",
        "layers.{l}.bias (d_out,)",
        "NaN/Inf are refused",
        "--kind matmul --a A.npy --b B.npy",
        "--kind mlp --weights model.safetensors --x inputs.npy",
    ):
        assert phrase in text, phrase
