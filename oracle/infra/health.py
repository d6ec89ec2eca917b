"""Whether a dependency a service cannot work without is there: a gauge, and one log line per
change.

A worker whose spec store is down, or an oracle that cannot reach enough peers to settle, used
to say so only as a stream of per-request errors (or not at all). :class:`Reachability` turns
the observations each call makes anyway (answered, or not) into a state: a 0/1 gauge that a
scrape reads, one warning when the dependency goes down (also when it is found down at
start-up), one line when it comes back — never one line per failed call.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from oracle.infra.logs import event
from oracle.infra.metrics import Metrics

__all__ = [
    "Reachability",
    "spec_store_reachability",
    "transition",
]


def transition(was: bool | None, now: bool) -> Literal["down", "up"] | None:
    """What to log when a dependency observed ``was`` (None: not observed yet) is now ``now``:
    ``"down"`` when it is first found down (at start-up too) or goes down, ``"up"`` when it
    comes back, nothing otherwise (found up at start-up is the normal case, not news)."""
    if not now and was is not False:
        return "down"
    if now and was is False:
        return "up"
    return None


class Reachability:
    """The state of one dependency: gauge ``gauge`` (1 up, 0 down), event ``down_event`` (a
    warning) or ``up_event`` on each change. Thread-safe: HTTP threads report too."""

    def __init__(
        self,
        log: logging.Logger,
        metrics: Metrics,
        gauge: str,
        *,
        down_event: str,
        up_event: str,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.gauge = gauge
        self.down_event = down_event
        self.up_event = up_event
        self._lock = threading.Lock()
        self._up: bool | None = None

    @property
    def up(self) -> bool | None:
        """The last observation (None before the first)."""
        return self._up

    def observe(self, up: bool, **fields: Any) -> Literal["down", "up"] | None:
        """Record one observation; log the change if it is one (``fields`` go with the line).
        Returns the change, if any."""
        with self._lock:
            change = transition(self._up, up)
            self._up = up
            self.metrics.set(self.gauge, 1 if up else 0)
        if change == "down":
            event(self.log, self.down_event, logging.WARNING, **fields)
        elif change == "up":
            event(self.log, self.up_event, **fields)
        return change


def spec_store_reachability(log: logging.Logger, metrics: Metrics) -> Reachability:
    """The spec stores' state as every service reports it: gauge ``spec_store_up``, events
    ``spec_store_down`` / ``spec_store_up``."""
    return Reachability(
        log, metrics, "spec_store_up", down_event="spec_store_down", up_event="spec_store_up"
    )
