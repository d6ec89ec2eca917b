"""The oracle's /metrics on a real anvil: valid Prometheus text whose numbers match what the
node did (jobs seen, verdicts, settle transactions, gas, histograms of verification seconds
and of the latency from commitment to settlement)."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from oracle.chain.client import Chain
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import matmul, post_jobs, wait_until, worker_and_node
from tests.e2e.test_live_loop import settled_events


def _scrape(url: str) -> dict[str, float]:
    """Every sample of the node's /metrics by name (histogram buckets by ``name{le}``), parsed
    with prometheus_client's own parser (a malformed exposition raises)."""
    resp = requests.get(f"{url}/metrics", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        assert family.name.startswith("pouw_oracle_") and family.documentation
        assert family.type in ("counter", "gauge", "histogram"), family
        for sample in family.samples:
            key = sample.name + (f"{{{sample.labels['le']}}}" if "le" in sample.labels else "")
            assert key not in values  # once each
            values[key] = sample.value
    return values


def test_metrics__prometheus_text_matches_what_happened(anvil, deploy, keys, tmp_path, spec_server):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    jobs = post_jobs(
        chain, keys["requester"], [matmul(i) for i in range(3)], LocalBlobStore(tmp_path / "specs")
    )
    w, node = worker_and_node(anvil, rec, keys, tmp_path, spec_server.url)
    try:
        url = node.start_server()
        before = _scrape(url)
        assert before["pouw_oracle_checkpoint_block"] == rec.block - 1

        def settled() -> bool:
            w.step()
            node.step()
            return all(settled_events(chain)[0][j] == 1 for j in jobs)

        wait_until(settled, timeout=30, every=0.05)
        m = _scrape(url)
    finally:
        w.close()
        node.close()
    rcpts = [chain.w3.eth.get_transaction_receipt(tx["tx_hash"]) for tx in node.db.txs()]
    assert m["pouw_oracle_jobs_seen_total"] == 3
    assert m["pouw_oracle_submissions_seen_total"] == 3
    assert m["pouw_oracle_verdicts_valid_total"] == 3 == m["pouw_oracle_db_verdicts_valid"]
    assert m["pouw_oracle_verify_checks_total"] == 3
    assert m["pouw_oracle_verify_seconds_count"] == 3 and m["pouw_oracle_verify_seconds_sum"] > 0
    assert m["pouw_oracle_verify_seconds_bucket{+Inf}"] == 3
    # each paid result's latency from first seen to its settlement, in a histogram
    assert m["pouw_oracle_settle_latency_seconds_count"] == 3
    assert 0 < m["pouw_oracle_settle_latency_seconds_sum"] < 3 * 30
    assert m["pouw_oracle_settle_txs_total"] == len(rcpts) >= 1
    assert m["pouw_oracle_items_settled_total"] == 3
    assert m["pouw_oracle_gas_used_total"] == sum(int(r["gasUsed"]) for r in rcpts)
    submitted = [
        e.block_number for e in chain.events(rec.block, chain.head()) if e.name == "ResultSubmitted"
    ]
    assert m["pouw_oracle_checkpoint_block"] >= max(submitted) + 1  # challenge block followed
    assert m["pouw_oracle_db_txs_mined"] == len(rcpts)
