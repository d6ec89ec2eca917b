"""The thread pool helpers the verifier's kernels run on."""

from __future__ import annotations

import threading

import pytest

from oracle.compute.parallel import parallel_for, parallel_map, workers


@pytest.mark.parametrize("count", [0, 1, 2, 3, 17, 200])
def test_parallel_for__every_index_once(count: int) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def record(i: int) -> None:
        with lock:
            seen.append(i)

    parallel_for(record, count)
    assert sorted(seen) == list(range(count))


def test_parallel_for__error__raised_after_all_threads_stop() -> None:
    done: list[int] = []

    def work(i: int) -> None:
        if i == 3:
            raise ValueError("boom")
        done.append(i)

    with pytest.raises(ValueError, match="boom"):
        parallel_for(work, 1000)
    assert 3 not in done and len(done) < 999  # handing out stopped early


def test_parallel_map__keeps_order() -> None:
    assert parallel_map(lambda x: x * x, list(range(50))) == [x * x for x in range(50)]
    assert workers() >= 1
