"""The oracle's /metrics on a real anvil: valid Prometheus text whose numbers match what the
node did (jobs seen, verdicts, settle transactions, gas, verification seconds)."""

from __future__ import annotations

import re

import requests

from oracle.chain.client import Chain
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import matmul, post_jobs, wait_until, worker_and_node
from tests.e2e.test_live_loop import settled_events

SAMPLE = re.compile(r"^(pouw_oracle_[a-z0-9_]+) (-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)$")


def _scrape(url: str) -> dict[str, float]:
    resp = requests.get(f"{url}/metrics", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values: dict[str, float] = {}
    typed: dict[str, str] = {}
    for line in resp.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge")
            assert kind == "gauge" or name.endswith("_total")
            typed[name] = kind
        elif line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4
        else:
            m = SAMPLE.match(line)
            assert m is not None, line
            assert m[1] in typed and m[1] not in values  # declared first, once
            values[m[1]] = float(m[2])
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
    assert m["pouw_oracle_verify_checks_total"] == 3 and m["pouw_oracle_verify_seconds_total"] > 0
    assert m["pouw_oracle_settle_txs_total"] == len(rcpts) >= 1
    assert m["pouw_oracle_items_settled_total"] == 3
    assert m["pouw_oracle_gas_used_total"] == sum(int(r["gasUsed"]) for r in rcpts)
    submitted = [
        e.block_number for e in chain.events(rec.block, chain.head()) if e.name == "ResultSubmitted"
    ]
    assert m["pouw_oracle_checkpoint_block"] >= max(submitted) + 1  # challenge block followed
    assert m["pouw_oracle_db_txs_mined"] == len(rcpts)
