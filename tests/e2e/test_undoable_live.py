"""Jobs no worker can do, and dependencies that come and go, on a real anvil.

* Jobs that can never be done (a spec whose blob inputs do not match their row roots; a
  malformed spec under a valid hash) posted between two ordinary ones: the worker
  records each skipped with its reason, once, and goes on; the ordinary jobs are paid; a
  commitment a cheater makes for the undoable job is given up by the oracle at its first
  attempt and blamed on no one; ``pouw audit`` reports what it cannot re-run, and retries a
  spec store that is down before it reports that.
* The spec store down when the worker and the oracle start: both say so (one log line, gauge
  0), the jobs wait with backoff (more tries than the old give-up allowed, never skipped);
  a blob server comes up on the same port and the jobs are computed and paid, each service
  saying once that the store is back.
* An oracle whose only peer is down at threshold 2: ``threshold_unreachable`` once (gauge 0)
  however often it proposes; the peer comes up, ``threshold_reachable`` once, the job is paid.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from oracle.chain.client import STATUS_PAID, Chain, TxSender
from oracle.client.audit import UNVERIFIED, ResultSource, audit_job
from oracle.compute.blob_inputs import matmul_blobs
from oracle.exceptions import AuditInputError, InputError
from oracle.node.service import OracleConfig, OracleNode
from oracle.protocol.commitment import commitment
from oracle.protocol.spec import parse_spec, work_units
from oracle.protocol.verdict import VerdictKey
from oracle.store.blobs import LocalBlobStore
from oracle.store.server import BlobServer
from oracle.worker.service import Worker, WorkerConfig
from tests.e2e.conftest import PRICE, ZERO, matmul, post_jobs, wait_until, worker_and_node
from tests.e2e.test_live_loop import Cluster


class Events(logging.Handler):
    """Every pouw log record, as (logger, event, fields): attached to the ``pouw`` logger
    itself, so a CLI test that stopped its propagation earlier in the session changes
    nothing."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, record.getMessage(), dict(getattr(record, "fields", {}))))

    def named(self, name: str, logger: str | None = None) -> list[dict[str, Any]]:
        return [f for lg, n, f in list(self.seen) if n == name and logger in (None, lg)]


@pytest.fixture
def events() -> Iterator[Events]:
    root = logging.getLogger("pouw")
    handler, level = Events(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[str, float]:
    resp = requests.get(f"{url}/metrics", timeout=5)
    assert resp.status_code == 200
    return {s.name: s.value for f in text_string_to_metric_families(resp.text) for s in f.samples}


def _create(chain: Chain, requester: Any, entries: list[tuple[bytes, int]]) -> list[int]:
    """Escrow one job per (spec hash, work units), whatever the hash names."""
    deadline = chain.block_timestamp(chain.head()) + 3_600
    fn = chain.market.functions.create_jobs(
        [(h, units, ZERO, PRICE, deadline) for h, units in entries]
    )
    rcpt = TxSender(chain, requester).send(fn, "create_jobs", value=PRICE * len(entries))
    return [
        int(e["args"]["job_id"]) for e in chain.market.events.JobCreated().process_receipt(rcpt)
    ]


def test_undoable_jobs_between_ordinary_ones__skipped_with_reason__others_paid(
    anvil, deploy, keys, tmp_path, spec_server, events, monkeypatch
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    store = LocalBlobStore(tmp_path / "specs")  # what spec_server serves
    # Blob inputs whose bytes are in the store but are not what the spec's root commits to.
    made = matmul_blobs(np.ones((32, 32), np.int8), np.full((32, 32), 2, np.int8))
    for data in made.blobs.values():
        store.put(data)
    wrong_root = {**made.inputs, "b": {**made.inputs["b"], "root": made.inputs["a"]["root"]}}
    blob_inputs = parse_spec({**matmul(5), "inputs": wrong_root})
    malformed = store.put(b'{"version": 1, "kind": "matmul", "m": 32}')
    ok1, ok2 = (parse_spec(matmul(s)) for s in (1, 2))
    for spec in (ok1, blob_inputs, ok2):
        store.put(spec.canonical)
    jobs = _create(
        chain,
        keys["requester"],
        [
            (ok1.hash, work_units(ok1)),
            (blob_inputs.hash, work_units(blob_inputs)),  # valid on-chain, no worker can do it
            (bytes.fromhex(malformed), 65_536),
            (ok2.hash, work_units(ok2)),
        ],
    )
    j_ok1, j_blob, j_bad, j_ok2 = jobs
    # A cheater commits to a result for the undoable job: the oracle must not be stuck on it,
    # nor blame the worker for what the oracle itself cannot prepare.
    cheater = keys["cheater"]
    tx = TxSender(chain, cheater)
    tx.send(chain.market.functions.register(), "register", value=int(chain.call("min_bond")))
    c_blob = commitment(cheater.address, b"\x07" * 32)
    tx.send(chain.market.functions.submit_results([(j_blob, c_blob)]), "submit")
    block = int(chain.call("submissions", j_blob, cheater.address)[1])
    k_blob = VerdictKey(j_blob, cheater.address, c_blob, block)

    w, node = worker_and_node(anvil, rec, keys, tmp_path, spec_server.url)
    try:

        def stepped() -> bool:
            w.step()
            node.step()
            state = node.db.submission_state(k_blob)
            return (
                all(chain.job_status(j) == STATUS_PAID for j in (j_ok1, j_ok2))
                and state is not None
                and state[0] == "gave_up"
            )

        wait_until(stepped, timeout=30, every=0.05)
        for _ in range(5):  # more steps: a skipped job stays skipped, said once
            w.step()
        scraped = _scrape(w.server.url if w.server else "")

        # The worker: both undoable jobs skipped with their reasons, the loop never failed.
        blob_job, bad_job = w.db.job(j_blob), w.db.job(j_bad)
        assert blob_job is not None and bad_job is not None
        assert blob_job["state"] == "skipped"
        assert "spec.inputs.b: blob 0x" in blob_job["reason"]
        assert "has row root" in blob_job["reason"]
        assert bad_job["state"] == "skipped" and bad_job["reason"].startswith("malformed spec")
        skipped = events.named("job_skipped", "pouw.worker")
        assert sorted((f["job"], f["reason"]) for f in skipped) == sorted(
            [(j_blob, blob_job["reason"]), (j_bad, bad_job["reason"])]
        )
        assert w.metrics["jobs_skipped"] == 2 == scraped["pouw_worker_jobs_skipped_total"]
        assert scraped["pouw_worker_jobs_computed_total"] == 2
        assert events.named("loop_error") == []

        # The oracle: given up at the first attempt, no verdict, nobody slashed.
        state, attempts, reason = node.db.submission_state(k_blob)
        assert (state, attempts) == ("gave_up", 0)
        assert "spec.inputs.b: blob 0x" in reason and "has row root" in reason
        assert node.db.verdict(k_blob) is None
        assert not [e for e in chain.events(rec.block, chain.head()) if e.name == "WorkerSlashed"]
        assert node.metrics["gave_up"] == 1

        # `pouw audit`: a settled job re-derives; one it cannot re-run is reported, not raised
        # (no job with blob inputs can be settled here, so the auditor's prepare is made to
        # fail the way it would for one); a spec store that is down is tried, then reported.
        source = ResultSource(worker_url=w.server.url if w.server else "")
        [finding] = audit_job(chain, j_ok1, [spec_server.url], source)
        assert finding.match and finding.verified

        def no_store(*_a: Any, **_k: Any) -> Any:
            raise InputError("spec.inputs.a: blob inputs need a blob store")

        with monkeypatch.context() as mp:
            mp.setattr("oracle.client.audit.prepare", no_store)
            [finding] = audit_job(chain, j_ok1, [spec_server.url], source)
        assert not finding.verified and not finding.match
        assert finding.derived_verdict == UNVERIFIED and finding.posted_verdict == "VALID"
        assert finding.derived_reason.startswith("inputs unusable: spec.inputs.a: blob inputs")
        down = f"http://127.0.0.1:{_free_port()}"
        t0 = time.monotonic()
        with pytest.raises(AuditInputError, match=r"after 3 tries"):
            audit_job(chain, j_ok1, [down], source, retries=3, retry_pause=0.1)
        assert time.monotonic() - t0 >= 0.3  # two pauses: 0.1 s, then 0.2 s
    finally:
        w.close()
        node.close()


def test_spec_store_down_at_start__said_once__jobs_wait__store_back__paid(
    anvil, deploy, keys, tmp_path, events
):
    rec = deploy(1, 1)
    chain = Chain(anvil.url, rec)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"  # nothing listens there yet
    later = LocalBlobStore(tmp_path / "specs")
    jobs = post_jobs(chain, keys["requester"], [matmul(11), matmul(12)], later)
    w = Worker(
        WorkerConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "w.db"),
            store_dir=str(tmp_path / "w-blobs"),
            spec_stores=[url],
            poll_interval=0.05,
            retry_backoff=0.05,
            max_retry_backoff=0.2,
            store_probe_interval=0.3,
        ),
        Chain(anvil.url, rec),
        keys["honest"],
    )
    node = OracleNode(
        OracleConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / "o.db"),
            spec_stores=[url],
            confirmations=1,
            poll_interval=0.1,
            max_wait=0.2,
        ),
        Chain(anvil.url, rec),
        keys["oracles"][0],
    )
    cluster = Cluster()
    try:
        node.db.set_worker_url(w.address, w.start_server(), 0)
        node.start_server()
        cluster.run(w)
        cluster.run(node)

        def waiting_long() -> bool:
            rows = w.db.jobs("new")
            return len(rows) == 2 and min(r["attempts"] for r in rows) >= 6

        # More tries than the old give-up (5) allowed, and the jobs still wait.
        wait_until(waiting_long, timeout=15)
        worker_down = events.named("spec_store_down", "pouw.worker")
        assert len(worker_down) == 1 and worker_down[0]["stores"] == [url]
        assert url in worker_down[0]["error"]
        assert w.spec_store.up is False and w.metrics["spec_store_up"] == 0
        scraped = _scrape(w.server.url if w.server else "")
        assert scraped["pouw_worker_spec_store_up"] == 0
        assert scraped["pouw_worker_jobs_waiting"] == 2
        assert scraped["pouw_worker_jobs_skipped_total"] == 0
        assert all(r["reason"].startswith("unreachable") for r in w.db.jobs("new"))
        assert len(events.named("spec_store_down", "pouw.oracle")) == 1  # the node's probe
        assert node.spec_store.up is False

        with BlobServer(later, port=port):  # the store comes back on the same address
            wait_until(lambda: all(chain.job_status(j) == STATUS_PAID for j in jobs), timeout=20)
        assert all(w.db.job(j)["state"] in ("committed", "settled") for j in jobs)
        assert len(events.named("spec_store_up", "pouw.worker")) == 1
        assert len(events.named("spec_store_down", "pouw.worker")) == 1  # still said once
        assert w.spec_store.up is True and w.metrics["spec_store_up"] == 1
        assert w.metrics["jobs_waiting"] == 0 and w.metrics["jobs_skipped"] == 0
        assert len(events.named("spec_store_up", "pouw.oracle")) == 1
        assert node.metrics["spec_store_up"] == 1
    finally:
        cluster.shutdown()


def test_peer_down__threshold_unreachable_said_once__peer_up__reachable_and_paid(
    anvil, deploy, keys, tmp_path, spec_server, events
):
    rec = deploy(2, 2)
    chain = Chain(anvil.url, rec)
    port_b = _free_port()

    def config(name: str, **kw: Any) -> OracleConfig:
        return OracleConfig(
            rpc_url=anvil.url,
            db_path=str(tmp_path / f"{name}.db"),
            spec_stores=[spec_server.url],
            confirmations=1,
            poll_interval=0.1,
            max_wait=0.2,
            takeover=0.5,
            fetch_timeout=1.0,
            peer_probe_interval=0.3,
            **kw,
        )

    a = OracleNode(
        config("a", peers=[f"http://127.0.0.1:{port_b}"]), Chain(anvil.url, rec), keys["oracles"][0]
    )
    b = OracleNode(config("b", port=port_b), Chain(anvil.url, rec), keys["oracles"][1])
    cluster = Cluster()
    try:
        url_a = a.start_server()
        b.cfg.peers = [url_a]
        w = Worker(
            WorkerConfig(
                rpc_url=anvil.url,
                db_path=str(tmp_path / "w.db"),
                store_dir=str(tmp_path / "w-blobs"),
                spec_stores=[spec_server.url],
                poll_interval=0.1,
            ),
            Chain(anvil.url, rec),
            keys["honest"],
        )
        worker_url = w.start_server()
        for n in (a, b):
            n.db.set_worker_url(w.address, worker_url, 0)
        cluster.run(a)
        cluster.run(w)
        [job] = post_jobs(
            chain, keys["requester"], [matmul(21)], LocalBlobStore(tmp_path / "specs")
        )

        # A decides, proposes, and cannot reach the threshold, again and again.
        wait_until(lambda: a.metrics["peer_errors"] >= 3, timeout=20)
        down = events.named("threshold_unreachable")
        assert len(down) == 1
        assert down[0] == {"answered": 0, "needed": 1, "threshold": 2, "peers": 1}
        assert a.metrics["threshold_reachable"] == 0 and a.metrics["peers_reachable"] == 0
        assert chain.job_status(job) != STATUS_PAID

        b.start_server()
        cluster.run(b)
        wait_until(lambda: chain.job_status(job) == STATUS_PAID, timeout=20)
        assert len(events.named("threshold_reachable")) == 1
        assert len(events.named("threshold_unreachable")) == 1
        assert a.metrics["threshold_reachable"] == 1 and a.metrics["peers_reachable"] == 1
        assert b.metrics["threshold_reachable"] == 1
    finally:
        cluster.shutdown()
