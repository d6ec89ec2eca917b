"""A service's counters by name (what ``/metrics`` serves)."""

from __future__ import annotations

__all__ = ["Metrics"]


class Metrics(dict[str, float]):
    """Counters and second totals by name. As with ``collections.Counter``, a counter never
    incremented reads 0 without being added, and counting in ints keeps ints; unlike it, a
    counter may also add up float seconds."""

    def __missing__(self, key: str) -> float:
        return 0
