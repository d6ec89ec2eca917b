"""mlp verification, the backend interface and automatic backend selection."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from oracle.compute import backend as backend_mod
from oracle.compute.backend import Backend, NumpyBackend, available_backends, select_backend
from oracle.compute.verify import check_full, prepare
from oracle.compute.work import compute
from oracle.exceptions import BackendError
from oracle.protocol.spec import Spec
from oracle.protocol.verdict import VerdictCode

SEED = bytes.fromhex("11" * 32)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_mlp__honest__valid(mlp_spec: Callable[..., Spec], activation: str) -> None:
    spec = mlp_spec(activation)
    result = compute(spec)
    verdict = check_full(prepare(spec, SEED), result)
    assert verdict.verdict is VerdictCode.VALID, verdict.reason
    assert len(verdict.transcript["residual_log2"]) == 3


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("column", [3, 32 + 5, 64 + 2, 64 + 24 + 3, 64 + 48 + 1])
def test_mlp__one_wrong_value_anywhere__invalid(
    mlp_spec: Callable[..., Spec], activation: str, column: int
) -> None:
    """Columns hit Z_1, H_1, Z_2, H_2 and the output Z_3."""
    spec = mlp_spec(activation)
    result = compute(spec)
    bad = result.copy()
    bad[4, column] += np.float32(0.5)
    assert check_full(prepare(spec, SEED), bad).verdict is VerdictCode.INVALID


def test_mlp__relu_skipped_or_nan__invalid(mlp_spec: Callable[..., Spec]) -> None:
    spec = mlp_spec("relu")
    result = compute(spec)
    lazy = result.copy()
    lazy[:, 32:64] = lazy[:, 0:32]  # H_1 := Z_1 (no ReLU)
    assert check_full(prepare(spec, SEED), lazy).verdict is VerdictCode.INVALID
    nan = result.copy()
    nan[0, -1] = np.nan
    assert check_full(prepare(spec, SEED), nan).verdict is VerdictCode.INVALID


def _conformance(b: Backend) -> None:
    rng = np.random.default_rng(2)
    a8 = rng.integers(-128, 128, size=(9, 2100), dtype=np.int8)
    b8 = rng.integers(-128, 128, size=(2100, 7), dtype=np.int8)
    exact = a8.astype(np.int64) @ b8.astype(np.int64)
    out = b.matmul_int8(a8, b8)
    assert out.dtype == np.int32 and np.array_equal(out, exact)
    extreme = b.matmul_int8(np.full((2, 4096), -128, np.int8), np.full((4096, 2), -128, np.int8))
    assert np.all(extreme == 4096 * 128 * 128)
    af = rng.standard_normal((5, 6)).astype(np.float32)
    bf = rng.standard_normal((6, 4)).astype(np.float32)
    got = b.matmul_fp32(af, bf)
    assert got.dtype == np.float32 and np.allclose(got, af @ bf, rtol=1e-5)


@pytest.mark.parametrize("name", available_backends())
def test_backend__conformance(name: str) -> None:
    b = select_backend(name)
    assert isinstance(b, Backend)
    _conformance(b)


def test_select_backend__auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(backend_mod._PROBES, "torch", lambda: False)
    monkeypatch.setitem(backend_mod._PROBES, "cupy", lambda: False)
    assert available_backends() == ["numpy"]
    assert isinstance(select_backend(), NumpyBackend)
    monkeypatch.setitem(backend_mod._PROBES, "cupy", lambda: True)
    assert available_backends() == ["cupy", "numpy"]
    monkeypatch.setattr(backend_mod, "CupyBackend", NumpyBackend)  # stand-in device backend
    assert isinstance(select_backend(), NumpyBackend)
    with pytest.raises(BackendError):
        select_backend("tpu")


def test_worker_api__same_result_through_any_backend(matmul_spec: Callable[..., Spec]) -> None:
    spec = matmul_spec("int8", k=1500)
    assert np.array_equal(compute(spec, NumpyBackend()), compute(spec, select_backend("numpy")))
