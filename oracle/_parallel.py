"""A lazily created, process-wide thread pool for GIL-releasing numpy / keccak work."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["parallel_map", "workers"]

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def workers() -> int:
    """Number of worker threads used for parallel loops (CPU count, capped at 8)."""
    return max(1, min(os.cpu_count() or 1, 8))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="pouw")
        return _pool


def parallel_map(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, spread over the pool when there is more than one item.

    Results are returned in input order, so the output never depends on scheduling.
    """
    if len(items) <= 1 or workers() == 1:
        return [fn(x) for x in items]
    return list(_get_pool().map(fn, items))
