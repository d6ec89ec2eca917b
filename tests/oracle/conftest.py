"""Chain-free fixtures for the oracle library tests: spec factories and small jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from oracle.protocol.spec import Spec, parse_spec

SEED = bytes.fromhex("11" * 32)


@pytest.fixture
def matmul_spec() -> Callable[..., Spec]:
    """Factory: a small seeded matmul spec with overridable fields."""

    def make(
        dtype: str = "int8",
        m: int = 24,
        n: int = 20,
        k: int = 28,
        seed: int = 7,
        mode: str = "full",
        openings: int = 6,
        **verify: Any,
    ) -> Spec:
        ver: dict[str, Any] = {"mode": mode, **verify}
        if mode == "sampled":
            ver["openings"] = openings
        return parse_spec(
            {
                "version": 1,
                "kind": "matmul",
                "dtype": dtype,
                "m": m,
                "n": n,
                "k": k,
                "inputs": {"seed": seed},
                "verify": ver,
            }
        )

    return make


@pytest.fixture
def mlp_spec() -> Callable[..., Spec]:
    """Factory: a small seeded mlp spec."""

    def make(
        activation: str = "relu",
        dims: tuple[int, ...] = (16, 32, 24, 8),
        batch: int = 12,
        seed: int = 3,
    ) -> Spec:
        return parse_spec(
            {
                "version": 1,
                "kind": "mlp",
                "dtype": "fp32",
                "batch": batch,
                "dims": list(dims),
                "activation": activation,
                "inputs": {"seed": seed},
                "verify": {"mode": "full"},
            }
        )

    return make
