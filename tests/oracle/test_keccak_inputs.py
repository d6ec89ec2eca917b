"""oracle.compute.keccak_inputs: the compiled counter-mode kernel equals plain keccak line by
line (every tail length, seeds up to 2^64 − 1, line counts across the thread pool's split),
the fallback without numba gives the same bytes, B is the transpose of its generated columns,
fp32 elements are on the 2^24-point grid of [-1, 1), and a seed outside [0, 2^64) is refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracle.compute import keccak_inputs
from oracle.compute.keccak_inputs import keccak_line, keccak_lines, keccak_matmul_inputs


@pytest.mark.parametrize("nbytes", [1, 31, 32, 33, 100, 256])
@pytest.mark.parametrize("seed", [0, 12345, 2**64 - 1])
def test_kernel__equals_plain_keccak(seed: int, nbytes: int) -> None:
    lines = keccak_lines(seed, 1, 11, nbytes)
    assert lines.shape == (11, nbytes) and lines.dtype == np.uint8
    for r in range(11):
        assert lines[r].tobytes() == keccak_line(seed, 1, r, nbytes)


def test_kernel__many_lines_split_over_the_pool() -> None:
    lines = keccak_lines(5, 0, 1000, 40)
    for r in (0, 63, 64, 65, 511, 999):
        assert lines[r].tobytes() == keccak_line(5, 0, r, 40)
    assert len({lines[r].tobytes() for r in range(1000)}) == 1000


def test_fallback_without_numba__same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = keccak_lines(9, 1, 10, 70)
    monkeypatch.setattr(keccak_inputs, "_kernel", lambda: None)
    assert np.array_equal(keccak_lines(9, 1, 10, 70), fast)


def test_matmul_inputs__a_rows_b_columns() -> None:
    a, b = keccak_matmul_inputs(3, 5, 4, 37, "int8")
    assert a.shape == (5, 37) and b.shape == (37, 4) and a.dtype == b.dtype == np.int8
    assert a[2].tobytes() == keccak_line(3, 0, 2, 37)
    assert b[:, 3].tobytes() == keccak_line(3, 1, 3, 37)
    assert a.min() < -100 and a.max() > 100  # signed bytes over the whole range


def test_matmul_inputs__fp32_on_the_grid() -> None:
    a, b = keccak_matmul_inputs(4, 64, 64, 64, "fp32")
    assert a.dtype == np.float32 and b.shape == (64, 64)
    for x in (a, b):
        assert (x >= -1).all() and (x < 1).all()
        assert np.array_equal(x * 2.0**23, np.round(x * 2.0**23))
    raw = np.frombuffer(keccak_line(4, 0, 0, 4 * 64), dtype="<u4")
    assert np.array_equal(a[0], ((raw >> 8).astype(np.int64) - 2**23) * 2.0**-23)


def test_seed_outside_uint64__refused() -> None:
    with pytest.raises(ValueError, match="seed must be in"):
        keccak_lines(2**64, 0, 1, 1)
