"""oracle.infra.metrics: counters that read 0 until counted and keep ints as ints."""

from __future__ import annotations

from oracle.infra.metrics import Metrics


def test_metrics__unread_counter__reads_zero_and_is_not_added():
    m = Metrics()
    assert m["never"] == 0
    assert "never" not in m  # /metrics lists only what was counted
    assert dict(m) == {}


def test_metrics__counts_stay_ints_and_seconds_add_up():
    m = Metrics()
    m["jobs"] += 1
    m["jobs"] += 2
    m["seconds"] += 0.25
    m["seconds"] += 0.5
    assert m == {"jobs": 3, "seconds": 0.75}
    assert isinstance(m["jobs"], int)
