"""Leadership takeover on a real anvil: 3 oracles at threshold 2, one of them down. The jobs it
would have proposed (its rank is 0 for them) are proposed by the next node after ``takeover``
seconds; every job is paid exactly once and each settle transaction comes from a live node."""

from __future__ import annotations

import socket
from collections import Counter

from oracle.chain.client import Chain
from oracle.node.decisions import rank
from oracle.node.service import OracleConfig, OracleNode
from oracle.node.settler import attestation
from oracle.store.blobs import LocalBlobStore
from tests.e2e.conftest import matmul, post_jobs, wait_until
from tests.e2e.test_live_loop import Cluster, settled_events, start_worker


def _rank(node: OracleNode, job_id: int) -> int:
    """The node's place in the proposer order of ``job_id`` (0: it leads)."""
    return rank(node.ctx.index, job_id, len(node.ctx.oracles))


def test_leader_down__next_node_takes_over__each_job_paid_once(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(2, 3)
    chain = Chain(anvil.url, rec)
    with socket.socket() as sock:  # the down node's address: nothing listens there
        sock.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    nodes = [
        OracleNode(
            OracleConfig(
                rpc_url=anvil.url,
                db_path=str(tmp_path / f"o{i}.db"),
                spec_stores=[spec_server.url],
                confirmations=1,
                poll_interval=0.1,
                max_wait=0.2,
                takeover=1.0,
                batch_size=16,
                fetch_timeout=1.0,
            ),
            Chain(anvil.url, rec),
            keys["oracles"][i],
        )
        for i in range(3)
    ]
    down, live = nodes[0], nodes[1:]
    cluster = Cluster()
    try:
        urls = [dead_url] + [n.start_server() for n in live]
        for i, node in enumerate(nodes):
            node.cfg.peers = [u for j, u in enumerate(urls) if j != i]
        for node in live:
            cluster.run(node)
        jobs = post_jobs(
            chain,
            keys["requester"],
            [matmul(i) for i in range(6)],
            LocalBlobStore(tmp_path / "specs"),
        )
        led_by_down = [j for j in jobs if _rank(down, j) == 0]
        assert led_by_down and len(led_by_down) < len(jobs)
        start_worker(anvil, rec, keys["honest"], tmp_path, "w", spec_server.url, urls[1:], cluster)
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
        nxt = next(n for n in live if _rank(n, j) == 1)
        assert settled_by[j] == nxt.account.address
    assert sum(n.metrics["peer_errors"] for n in live) >= 1  # the down peer was asked, failed


def test_proposer_asks_peers_in_turn__stops_at_threshold(
    anvil, deploy, keys, tmp_path, spec_server
):
    """3 oracles at threshold 2: one peer's signature over the whole batch is enough, so the
    second peer is not asked (no signature it would spend CPU on); the first peer asked
    rotates with the batch; a peer that agrees with nothing is passed over."""
    from oracle.node.db import StoredVerdict
    from oracle.protocol.verdict import VerdictKey

    rec = deploy(2, 3)
    nodes = [
        OracleNode(
            OracleConfig(
                rpc_url=anvil.url, db_path=str(tmp_path / f"o{i}.db"), spec_stores=[spec_server.url]
            ),
            Chain(anvil.url, rec),
            keys["oracles"][i],
        )
        for i in range(3)
    ]
    try:
        urls = [n.start_server() for n in nodes]
        for i, node in enumerate(nodes):
            node.cfg.peers = [u for j, u in enumerate(urls) if j != i]
        worker = keys["honest"].address

        def verdicts(first: int) -> list[StoredVerdict]:
            return [
                StoredVerdict(
                    key=VerdictKey(j, worker, bytes([j]) * 32, 5),
                    seed=b"\x01" * 32,
                    challenge_block=1,
                    challenge_hash=b"\x02" * 32,
                    work_units=64,
                    verdict=1,
                    reason="ok",
                    transcript={},
                    transcript_hash=bytes([j]) * 32,
                )
                for j in range(first, first + 4)
            ]

        proposer, peers = nodes[0], nodes[1:]
        for first in (10, 11):  # batches whose first job picks a different first peer
            vs = verdicts(first)
            for node in nodes:
                node.db.record_verdicts(vs)
            before = [p.metrics["signatures_given"] for p in peers]
            batch = [attestation(v) for v in vs]
            chosen, sigs = proposer.settler._collect(batch, proposer.ctx.chain.now() + 900)
            assert chosen == batch and len(sigs) == 2
            given = [p.metrics["signatures_given"] - b for p, b in zip(peers, before, strict=True)]
            assert sorted(given) == [0, 1]  # exactly one peer signed
            asked_first = urls.index(proposer.cfg.peers[first % 2])
            assert given[asked_first - 1] == 1
        vs = verdicts(20)  # the peer asked first has no verdicts on this batch: the other signs
        first_peer = nodes[urls.index(proposer.cfg.peers[20 % 2])]
        for node in nodes:
            if node is not first_peer:
                node.db.record_verdicts(vs)
        other = next(p for p in peers if p is not first_peer)
        before = other.metrics["signatures_given"]
        chosen, sigs = proposer.settler._collect(
            [attestation(v) for v in vs], proposer.ctx.chain.now() + 900
        )
        assert chosen is not None and len(chosen) == 4 and len(sigs) == 2
        assert other.metrics["signatures_given"] == before + 1
    finally:
        for node in nodes:
            node.close()


def _verdicts_at(worker: str, jobs: range, decided_at: float) -> list:
    from oracle.node.db import StoredVerdict
    from oracle.protocol.verdict import VerdictKey

    return [
        StoredVerdict(
            key=VerdictKey(j, worker, bytes([j % 256]) * 32, 5),
            seed=b"\x01" * 32,
            challenge_block=1,
            challenge_hash=b"\x02" * 32,
            work_units=64,
            verdict=1,
            reason="ok",
            transcript={},
            transcript_hash=b"\x03" * 32,
            decided_at=decided_at,
        )
        for j in jobs
    ]


def _proposals(node) -> list[list[int]]:
    """Make ``node`` record what it would propose instead of asking peers (the verdicts here
    are synthetic, at synthetic times: the chain check of carried-over items, which would
    drop them as not on-chain, is tested in test_restart_settled.py)."""
    seen: list[list[int]] = []
    node.settler._drop_settled = lambda items, now: items

    def collect(batch, valid_until):
        seen.append([a.job_id for a in batch])
        return None, []

    node.settler._collect = collect
    return seen


def test_partial_batch__goes_once_its_oldest_item_waited_max_wait(
    anvil, deploy, keys, tmp_path, spec_server
):
    """max_wait bounds the wait of the oldest item: fresh verdicts arriving behind it do not
    hold a partial batch back (they did while the youngest item's age was compared)."""
    rec = deploy(1, 1)
    node = OracleNode(
        OracleConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "o.db"),
            spec_stores=[spec_server.url],
            batch_size=8,
            max_wait=2.0,
        ),
        Chain(anvil.url, rec),
        keys["oracles"][0],
    )
    try:
        now = 1_000_000.0
        worker = keys["honest"].address
        node.db.record_verdicts(_verdicts_at(worker, range(1, 3), now - 1.0))
        seen = _proposals(node)
        assert node.settler.settle_ready(now=now) == 0 and seen == []  # oldest waited 1 s < 2 s
        node.db.record_verdicts(_verdicts_at(worker, range(3, 5), now))  # fresh ones behind
        assert node.settler.settle_ready(now=now + 1.5) == 0 and seen == [[1, 2, 3, 4]]
    finally:
        node.close()


def test_settle_limit__spent_on_own_due_items__not_on_peers_lead(
    anvil, deploy, keys, tmp_path, spec_server
):
    """With 3 oracles two thirds of the unsettled verdicts are led by peers (not due here for
    ``takeover`` seconds). However many of those are older, the node still proposes its own."""
    rec = deploy(2, 3)
    node = OracleNode(
        OracleConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "o.db"),
            spec_stores=[spec_server.url],
            batch_size=4,
            max_wait=0.0,
            takeover=60.0,
        ),
        Chain(anvil.url, rec),
        keys["oracles"][0],
    )
    try:
        now = 1_000_000.0
        worker = keys["honest"].address
        led_by_peers = [j for j in range(1, 400) if _rank(node, j) != 0][:300]
        own = [j for j in range(400, 420) if _rank(node, j) == 0][:3]
        for j in led_by_peers:  # older: decided 10 s ago, due here only after 60 or 120 s
            node.db.record_verdicts(_verdicts_at(worker, range(j, j + 1), now - 10.0))
        for j in own:
            node.db.record_verdicts(_verdicts_at(worker, range(j, j + 1), now))
        seen = _proposals(node)
        node.settler.settle_ready(now=now)
        assert seen == [own]
        seen.clear()
        node.settler.settle_ready(now=now + 60.0)  # past one takeover: rank-1 items are due too
        assert seen and all(_rank(node, j) in (0, 1) for j in seen[0])
    finally:
        node.close()
