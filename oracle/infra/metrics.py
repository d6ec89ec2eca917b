"""A service's metrics, kept by ``prometheus_client`` in a registry of the service's own.

Counters are named by what they count and exposed as ``<namespace>_<name>_total``; gauges as
``<namespace>_<name>``; histograms (seconds) as ``<namespace>_<name>_bucket/_sum/_count``, so a
dashboard gets quantiles. A counter is declared on first use (with the help text given for its
name, if any), so a service counts with one call and scrapes show only what happened; what
must read 0 from the start is declared up front. Each service has its own registry, so several
nodes in one test process never share a number.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "SECONDS_BUCKETS", "Metrics"]

# ``…_created`` samples (a timestamp per counter) would double every scrape for nothing here.
disable_created_metrics()

#: What a scrape answers: the Prometheus text format, as the library names it.
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Histogram buckets (seconds) from a millisecond check to a payout an hour late.
SECONDS_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip


class _Rows(Collector):
    """Gauges read at scrape time from a callable (e.g. row counts of a SQLite state)."""

    def __init__(self, prefix: str, help_prefix: str, read: Callable[[], Mapping[str, int]]):
        self.prefix = prefix
        self.help_prefix = help_prefix
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, value in sorted(self.read().items()):
            yield GaugeMetricFamily(
                f"{self.prefix}_{name}", f"{self.help_prefix}: {name.replace('_', ' ')}", value
            )


class Metrics:
    """Counters, gauges and histograms of one service under ``namespace`` (``pouw_oracle``).

    ``help`` gives the help text of known names; ``counters`` are declared at once (they read
    0 until counted); ``histograms`` maps a name to its help text."""

    def __init__(
        self,
        namespace: str,
        *,
        help: Mapping[str, str] | None = None,
        counters: Sequence[str] = (),
        gauges: Sequence[str] = (),
        histograms: Mapping[str, str] | None = None,
    ) -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self._help = dict(help or {})
        self._lock = threading.Lock()
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._histograms = {
            name: Histogram(
                name, text, namespace=namespace, registry=self.registry, buckets=SECONDS_BUCKETS
            )
            for name, text in (histograms or {}).items()
        }
        for name in counters:
            self._counter(name)
        for name in gauges:
            self._gauge(name)

    def _text(self, name: str) -> str:
        return self._help.get(name, name.replace("_", " "))

    def _counter(self, name: str) -> Counter:
        with self._lock:
            c = self._counters.get(name)
            if c is None:
                c = Counter(
                    name, self._text(name), namespace=self.namespace, registry=self.registry
                )
                self._counters[name] = c
            return c

    def _gauge(self, name: str) -> Gauge:
        with self._lock:
            g = self._gauges.get(name)
            if g is None:
                g = Gauge(name, self._text(name), namespace=self.namespace, registry=self.registry)
                self._gauges[name] = g
            return g

    def inc(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` (>= 0) to counter ``name``."""
        self._counter(name).inc(amount)

    def set(self, name: str, value: float) -> None:
        """Set gauge ``name``."""
        self._gauge(name).set(value)

    def read_from(self, name: str, read: Callable[[], float]) -> None:
        """Gauge ``name`` reads ``read()`` at each scrape (a value kept elsewhere)."""
        self._gauge(name).set_function(read)

    def observe(self, name: str, value: float) -> None:
        """Record one observation (seconds) in histogram ``name``."""
        self._histograms[name].observe(value)

    def add_rows(self, name: str, help_prefix: str, read: Callable[[], Mapping[str, int]]) -> None:
        """Expose ``read()``'s values as gauges ``<namespace>_<name>_<key>`` at each scrape."""
        self.registry.register(_Rows(f"{self.namespace}_{name}", help_prefix, read))

    def __getitem__(self, name: str) -> float:
        """A counter's total, a gauge's value or a histogram's sum (0 if never recorded)."""
        ns = self.namespace
        for sample in (f"{ns}_{name}_total", f"{ns}_{name}", f"{ns}_{name}_sum"):
            value = self.registry.get_sample_value(sample)
            if value is not None:
                return value
        return 0

    def count(self, name: str) -> float:
        """How many observations histogram ``name`` holds."""
        value = self.registry.get_sample_value(f"{self.namespace}_{name}_count")
        return 0 if value is None else value

    def snapshot(self) -> dict[str, float]:
        """Every counter, gauge and histogram sum/count by name (what a bench reports)."""
        out: dict[str, float] = {}
        for name in [*self._counters, *self._gauges]:
            out[name] = self[name]
        for name in self._histograms:
            out[name] = self[name]
            out[f"{name}_count"] = self.count(name)
        return out

    def render(self) -> bytes:
        """The Prometheus text exposition of everything registered."""
        return generate_latest(self.registry)
