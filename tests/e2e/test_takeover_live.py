"""Leadership takeover on a real anvil: 3 oracles at threshold 2, one of them down. The jobs it
would have proposed (its rank is 0 for them) are proposed by the next node after ``takeover``
seconds; every job is paid exactly once and each settle transaction comes from a live node."""

from __future__ import annotations

import socket
from collections import Counter

from oracle.blobstore import LocalBlobStore
from oracle.chain import Chain
from oracle.oracle_node import OracleConfig, OracleNode
from tests.e2e.conftest import matmul, post_jobs, wait_until
from tests.e2e.test_live_loop import Cluster, settled_events, start_worker


def test_leader_down__next_node_takes_over__each_job_paid_once(anvil, deploy, keys, tmp_path,
                                                              spec_server):
    rec = deploy(2, 3)
    chain = Chain(anvil.url, rec)
    with socket.socket() as sock:  # the down node's address: nothing listens there
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    nodes = [OracleNode(OracleConfig(rpc_url=anvil.url, db_path=str(tmp_path / f"o{i}.db"),
                                     spec_stores=[spec_server.url], confirmations=1,
                                     poll_interval=0.1, max_wait=0.2, takeover=1.0,
                                     batch_size=16, fetch_timeout=1.0),
                        Chain(anvil.url, rec), keys["oracles"][i]) for i in range(3)]
    down, live = nodes[0], nodes[1:]
    cluster = Cluster()
    try:
        urls = [dead_url] + [n.start_server() for n in live]
        for i, node in enumerate(nodes):
            node.cfg.peers = [u for j, u in enumerate(urls) if j != i]
        for node in live:
            cluster.run(node)
        jobs = post_jobs(chain, keys["requester"], [matmul(i) for i in range(6)],
                         LocalBlobStore(tmp_path / "specs"))
        led_by_down = [j for j in jobs if down._rank(j) == 0]
        assert led_by_down and len(led_by_down) < len(jobs)
        start_worker(anvil, rec, keys["honest"], tmp_path, "w", spec_server.url, urls[1:],
                     cluster)
        wait_until(lambda: all(settled_events(chain)[0][j] >= 1 for j in jobs), timeout=60)
    finally:
        cluster.shutdown()
        down.close()
    paid, _, slashed = settled_events(chain)
    assert [paid[j] for j in jobs] == [1] * len(jobs) and slashed == []
    senders: Counter[str] = Counter()
    settled_by: dict[int, str] = {}
    for e in chain.events(rec.block, chain.head()):
        if e.name == "JobSettled":
            tx = chain.w3.eth.get_transaction(e.tx_hash)
            senders[tx["from"]] += 1
            settled_by[int(e.args["job_id"])] = tx["from"]
    assert down.account.address not in senders
    for j in led_by_down:  # proposed by the node ranked next for that job, a live one
        nxt = next(n for n in live if n._rank(j) == 1)
        assert settled_by[j] == nxt.account.address
    assert sum(n.metrics["peer_errors"] for n in live) >= 1  # the down peer was asked, failed
