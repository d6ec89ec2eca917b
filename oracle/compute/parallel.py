"""A lazily created, process-wide thread pool for GIL-releasing numpy / keccak work, and lazily
compiled numba kernels (``nogil``) to run on it."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import types
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["jit", "parallel_for", "parallel_map", "workers"]

T = TypeVar("T")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_jit_lock = threading.Lock()
_kernels: dict[Callable[..., Any], Callable[..., Any] | None] = {}
_helpers: dict[Callable[..., Any], Callable[..., Any]] = {}  # compiled helpers ``calls`` names
_numba_module: list[Any] = []  # [] until first tried, then [numba or None]
log = logging.getLogger("pouw.parallel")


@functools.cache
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


def parallel_for(fn: Callable[[int], object], count: int) -> None:
    """``fn(i)`` for every i in ``range(count)``, for calls that write disjoint outputs.

    The calling thread takes part (it is running already; a pool thread may first have to be
    woken), and each participant takes the next index when it finishes one, so a core that is
    slower at the moment (shared machine, clocked down after idling) simply does fewer. The
    first exception stops the handing out of indices and is raised once every thread is done.
    """
    helpers = min(workers(), count) - 1
    if helpers <= 0:
        for i in range(count):
            fn(i)
        return
    indices = itertools.count()  # next() on it is atomic under the GIL
    failed = threading.Event()

    def drain() -> None:
        for i in indices:
            if i >= count or failed.is_set():
                return
            try:
                fn(i)
            except BaseException:
                failed.set()
                raise

    pool = _get_pool()
    futures = [pool.submit(drain) for _ in range(helpers)]
    try:
        drain()
    finally:
        for future in futures:
            future.exception()  # wait for it; its own error (if any) is raised below
    for future in futures:
        future.result()


def jit(
    py_func: Callable[..., Any],
    signatures: Callable[[Any], list[Any]],
    calls: Sequence[Callable[..., Any]] = (),
) -> Callable[..., Any] | None:
    """``py_func`` compiled by numba (``nogil``, no fastmath, on-disk cache), or None without numba.

    Compiled once per process, on the first call for that function, for every signature
    ``signatures(numba.types)`` returns (explicit signatures: later calls with other types fail
    instead of compiling on a hot path). numba's cache (``__pycache__`` beside the module, or
    its user-wide fallback) makes later processes load the machine code instead of compiling.
    Kernels run on the caller's thread (or this module's pool): numba's own parallel layer is
    not used, as its default "workqueue" layer must not be entered from two threads at once.

    ``calls`` lists the plain module-level functions ``py_func`` calls by their global names
    (shared helpers that several kernels use): numba can only call compiled functions, so
    ``py_func`` is compiled against a copy of its module's globals in which each such name is
    the helper compiled lazily (one dispatcher per helper and process, typed by its callers,
    with the same options). The module itself keeps the plain functions, so nothing changes
    for Python callers or without numba. A kernel loaded from the cache does not compile its
    helpers at all (their code is in the kernel's); the cache is invalidated by any change to
    the source file, so a helper must live in the same file as the kernels that call it.
    """
    with _jit_lock:
        if py_func not in _kernels:
            numba = _numba()
            if numba is None:
                _kernels[py_func] = None
            else:
                target = py_func
                if calls:
                    scope = dict(py_func.__globals__)
                    for helper in calls:
                        if helper not in _helpers:
                            _helpers[helper] = numba.njit(nogil=True, cache=True, fastmath=False)(
                                helper
                            )
                        scope[helper.__name__] = _helpers[helper]
                    target = types.FunctionType(
                        py_func.__code__,
                        scope,
                        py_func.__name__,
                        py_func.__defaults__,
                        py_func.__closure__,
                    )
                _kernels[py_func] = numba.njit(
                    signatures(numba.types), nogil=True, cache=True, fastmath=False
                )(target)
        return _kernels[py_func]


def _numba() -> Any:
    """The numba module, or None (logged once) if it cannot be imported.

    Besides a missing install, a script run from a folder holding a ``coverage.py`` shadows the
    coverage package that numba imports (AttributeError): the exact numpy paths then serve.
    """
    if not _numba_module:
        try:
            import numba
        except (ImportError, AttributeError) as exc:  # pragma: no cover - environment
            log.warning("numba unavailable (%s); using the slower numpy paths", exc)
            _numba_module.append(None)
        else:
            _numba_module.append(numba)
    return _numba_module[0]
