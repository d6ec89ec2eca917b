"""The loop every service runs: one body call per iteration until stopped, an iteration that
fails logged (``loop_error``) and counted (``loop_errors``) and the loop going on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from oracle.infra.logs import event
from oracle.infra.metrics import Metrics

__all__ = ["run_until_stopped"]


def run_until_stopped(
    stop: threading.Event,
    body: Callable[[], object],
    interval: float,
    metrics: Metrics,
    log: logging.Logger,
) -> None:
    """Call ``body`` every ``interval`` seconds until ``stop`` is set; an exception in one
    iteration is logged and counted, and the next iteration runs as usual."""
    while not stop.is_set():
        try:
            body()
        except Exception as exc:  # the loop must go on; the cause is logged
            metrics.inc("loop_errors")
            event(log, "loop_error", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
        stop.wait(interval)
