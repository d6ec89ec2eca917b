"""oracle.infra.metrics: prometheus_client counters, gauges and histograms per service."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from oracle.infra.metrics import Metrics


def _families(m: Metrics) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(m.render().decode())}


def test_metrics__unread_counter__reads_zero_and_is_not_exposed():
    m = Metrics("pouw_t")
    assert m["never"] == 0
    assert "pouw_t_never" not in _families(m)  # /metrics lists only what was counted


def test_metrics__declared_counter__exposed_at_zero():
    m = Metrics("pouw_t", counters=("jobs",), help={"jobs": "jobs done"})
    assert _families(m) == {"pouw_t_jobs": "counter"}
    assert b"# HELP pouw_t_jobs_total jobs done" in m.render()
    assert b"pouw_t_jobs_total 0.0" in m.render()


def test_metrics__counts_add_up_and_two_services_do_not_share():
    a, b = Metrics("pouw_t"), Metrics("pouw_t")
    a.inc("jobs")
    a.inc("jobs", 2)
    b.inc("jobs")
    assert a["jobs"] == 3 and b["jobs"] == 1


def test_metrics__histogram__sum_count_and_buckets():
    m = Metrics("pouw_t", histograms={"verify_seconds": "seconds per check"})
    for s in (0.002, 0.2, 7.0):
        m.observe("verify_seconds", s)
    assert m["verify_seconds"] == 7.202 and m.count("verify_seconds") == 3
    fam = next(f for f in text_string_to_metric_families(m.render().decode()))
    assert fam.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name.endswith("_bucket")}
    assert buckets["0.005"] == 1 and buckets["0.25"] == 2 and buckets["10.0"] == 3
    assert m.snapshot() == {"verify_seconds": 7.202, "verify_seconds_count": 3}


def test_metrics__gauge_read_at_scrape_and_rows():
    state = {"checkpoint": 5, "rows": {"txs_mined": 2}}
    m = Metrics("pouw_t")
    m.read_from("checkpoint_block", lambda: state["checkpoint"])
    m.add_rows("db", "rows", lambda: state["rows"])
    state["checkpoint"], state["rows"] = 9, {"txs_mined": 4}
    assert m["checkpoint_block"] == 9 and m["db_txs_mined"] == 4
    assert _families(m) == {"pouw_t_checkpoint_block": "gauge", "pouw_t_db_txs_mined": "gauge"}


def test_metrics__negative_increment__refused():
    m = Metrics("pouw_t")
    with pytest.raises(ValueError, match="non-negative"):
        m.inc("jobs", -1)
    assert m["jobs"] == 0
