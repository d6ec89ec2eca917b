"""`pouw job create` on a requester's own files, on a real anvil.

A good A.npy/B.npy pair is published (both blobs, then the spec) to a directory store and
escrowed: the job's spec_hash on chain is the published spec, whose inputs name the blobs.
Bad inputs and a spec store that is down end in one line and exit 2 with nothing sent: the
requester's balance and the market's job counter are unchanged and the store stays empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner
from safetensors.numpy import save_file

from oracle.chain.client import Chain
from oracle.cli.main import cli
from oracle.client.jobs import job_info
from oracle.protocol.spec import parse_spec
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import key_file


def pouw(*args: Any) -> tuple[int, str, str]:
    result = CliRunner(mix_stderr=False).invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def create_args(anvil: Any, keys: dict[str, Any], tmp_path: Path) -> list[Any]:
    req_key = key_file(tmp_path, "requester", keys["requester"])
    return [
        "job",
        "create",
        "--rpc",
        anvil.url,
        "--deployments",
        tmp_path / "deployments",
        "--keyfile",
        req_key,
        "--price",
        "1gwei",
    ]


def test_job_create__own_matmul_inputs__published_and_escrowed(anvil, deploy, keys, tmp_path):
    rec = deploy(1)
    rng = np.random.default_rng(5)
    np.save(tmp_path / "A.npy", rng.integers(-128, 128, (12, 8), dtype=np.int8))
    np.save(tmp_path / "B.npy", rng.integers(-128, 128, (8, 6), dtype=np.int8))
    store_dir = tmp_path / "specs"
    code, out, err = pouw(
        *create_args(anvil, keys, tmp_path),
        "--spec-store",
        store_dir,
        "--a",
        tmp_path / "A.npy",
        "--b",
        tmp_path / "B.npy",
        "--json",
    )
    assert code == 0, err
    (posted,) = json.loads(out)
    assert posted["job_id"] == 1 and posted["work_units"] == 2 * 12 * 6 * 8
    assert posted["amount"] == posted["work_units"] * 10**9
    store = LocalBlobStore(store_dir)
    spec = parse_spec(store.get(posted["spec_hash"]))
    assert spec.params.dtype == "int8" and (spec.params.m, spec.params.n, spec.params.k) == (
        12,
        6,
        8,
    )
    names = posted["inputs"]
    assert spec.params.a is not None and spec.params.b is not None
    assert names == {"a": spec.params.a.blob, "b": spec.params.b.blob}
    assert store.has(names["a"]) and store.has(names["b"])
    info = job_info(Chain(anvil.url, rec), 1)
    assert info["spec_hash"] == posted["spec_hash"] and info["status"] == "open"

    # an mlp on a safetensors model: weights and batch published, the spec names both
    save_file(
        {
            "layers.0.weight": rng.standard_normal((6, 4)).astype(np.float32),
            "layers.0.bias": rng.standard_normal(6).astype(np.float32),
            "layers.1.weight": rng.standard_normal((3, 6)).astype(np.float32),
            "layers.1.bias": rng.standard_normal(3).astype(np.float32),
        },
        str(tmp_path / "model.safetensors"),
    )
    np.save(tmp_path / "x.npy", rng.standard_normal((5, 4)).astype(np.float32))
    code, out, err = pouw(
        *create_args(anvil, keys, tmp_path),
        "--spec-store",
        store_dir,
        "--kind",
        "mlp",
        "--weights",
        tmp_path / "model.safetensors",
        "--x",
        tmp_path / "x.npy",
        "--activation",
        "gelu",
        "--rounds",
        3,
    )
    assert code == 0, err
    assert out.strip() == "2"
    info = job_info(Chain(anvil.url, rec), 2)
    mlp = parse_spec(store.get(info["spec_hash"]))
    assert mlp.as_dict()["dims"] == [4, 6, 3] and mlp.as_dict()["activation"] == "gelu"
    assert mlp.params.weights is not None and mlp.params.x is not None
    assert store.has(mlp.params.weights.blob) and store.has(mlp.params.x.blob)
    assert f"inputs published: weights {mlp.params.weights.blob}, x {mlp.params.x.blob}" in err


def test_job_create__bad_inputs_or_store_down__exit_2_nothing_sent(anvil, deploy, keys, tmp_path):
    rec = deploy(1)
    chain = Chain(anvil.url, rec)
    w3 = anvil.w3
    requester = keys["requester"].address
    rng = np.random.default_rng(6)
    good_a, good_b = tmp_path / "A.npy", tmp_path / "B.npy"
    np.save(good_a, rng.standard_normal((4, 3)).astype(np.float32))
    np.save(good_b, rng.standard_normal((3, 5)).astype(np.float32))
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    wide = tmp_path / "wide.npy"
    np.save(wide, rng.standard_normal((4, 5)).astype(np.float32))
    nan = tmp_path / "nan.npy"
    arr = rng.standard_normal((3, 5)).astype(np.float32)
    arr[1, 2] = np.nan
    np.save(nan, arr)
    weights = tmp_path / "model.safetensors"
    save_file({"layers.0.weight": np.ones((2, 3), np.float32)}, str(weights))

    store_dir = tmp_path / "specs"
    store_dir.mkdir()
    dir_store = ["--spec-store", store_dir]
    cases: list[tuple[list[Any], str]] = [
        (
            [*dir_store, "--a", pickled, "--b", good_b],
            f"--a {pickled}: holds Python objects (pickle); save a plain numeric array",
        ),
        (
            [*dir_store, "--a", good_a, "--b", wide],
            "A is 4×3 but B is 4×5: A's columns (3) must equal B's rows (4)",
        ),
        (
            [*dir_store, "--a", good_a, "--b", nan],
            f"--b {nan}: contains NaN or Inf at row 1, column 2: fp32 inputs must be finite",
        ),
        (
            [*dir_store, "--kind", "mlp", "--weights", weights, "--x", good_a],
            f"--weights {weights}: missing tensor layers.0.bias",
        ),
        (
            [*dir_store, "--spec-store", "http://127.0.0.1:9", "--a", good_a, "--b", good_b],
            "store http://127.0.0.1:9 does not answer: GET http://127.0.0.1:9/blobs/",
        ),
    ]
    balance = w3.eth.get_balance(requester)
    nonce = w3.eth.get_transaction_count(requester)
    next_job = int(chain.call("next_job_id"))
    for flags, message in cases:
        code, out, err = pouw(*create_args(anvil, keys, tmp_path), *flags)
        assert code == 2, (flags, out, err)
        assert out == "" and err.startswith(f"error: {message}"), (flags, err)
        assert len(err.splitlines()) == 1, err
        assert w3.eth.get_balance(requester) == balance
        assert w3.eth.get_transaction_count(requester) == nonce
        assert int(chain.call("next_job_id")) == next_job
        assert list(store_dir.iterdir()) == []
