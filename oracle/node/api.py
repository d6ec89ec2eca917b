"""The oracle node's HTTP routes: ``POST /sign`` (a peer's proposal), ``POST /workers`` (a
worker's signed announcement), ``GET /metrics`` (Prometheus text) and ``GET /health``."""

from __future__ import annotations

import json
import logging

from oracle.exceptions import PeerError
from oracle.infra.httpapi import Reply, Request, Route
from oracle.infra.logs import event
from oracle.node.context import NodeContext
from oracle.node.settler import Settler, att_from_json, attestation
from oracle.protocol.announce import verify_announcement
from oracle.protocol.verdict import VerdictKey

__all__ = ["NodeApi"]

log = logging.getLogger("pouw.oracle")

#: /metrics help text of the main counters (others are named by what they count).
_METRIC_HELP = {
    "events": "market events followed",
    "jobs_seen": "JobCreated events followed",
    "submissions_seen": "ResultSubmitted events followed",
    "verify_checks": "results checked (held result to verdict)",
    "verify_seconds": "seconds spent checking results",
    "verdicts_valid": "VALID verdicts recorded",
    "verdicts_invalid": "INVALID verdicts recorded",
    "settle_txs": "settle transactions mined",
    "items_settled": "attestations settled (paid or slashed) by own transactions",
    "items_skipped": "attestations the contract skipped in own transactions",
    "gas_used": "gas used by own settle transactions",
}


class NodeApi:
    """The handlers of the node's routes (served by :class:`~oracle.infra.httpapi.ApiServer`
    on reader threads); a peer's proposal is signed through ``settler``."""

    def __init__(self, ctx: NodeContext, settler: Settler) -> None:
        self.ctx = ctx
        self.settler = settler

    def routes(self) -> list[Route]:
        """/sign, /workers, /metrics and /health."""
        return [
            ("POST", r"/sign", self.handle_sign),
            ("POST", r"/workers", self.handle_announce),
            ("GET", r"/metrics", self.handle_metrics),
            ("GET", r"/health", lambda _r: (200, "text/plain", b"ok\n")),
        ]

    def handle_sign(self, req: Request) -> Reply:
        """A peer's proposal: sign the sub-list of items matching this node's own verdicts."""
        try:
            items = [att_from_json(x) for x in json.loads(req.body)["items"]]
        except (ValueError, KeyError, TypeError) as exc:
            return 400, "text/plain", f"bad proposal: {exc}\n".encode()
        if not 0 < len(items) <= 128:
            return 400, "text/plain", b"bad proposal: 1 to 128 items\n"
        agreed = []
        for i, a in enumerate(items):
            v = self.ctx.db.verdict(VerdictKey(a.job_id, a.worker, a.commitment))
            if v is not None and attestation(v) == a:
                agreed.append(i)
        if not agreed:
            return 200, "application/json", json.dumps({"agreed": []}).encode()
        sig = self.settler.sign_own([items[i] for i in agreed], "peer")
        body = {"agreed": agreed, "signer": sig.signer, "r": hex(sig.r), "vs": hex(sig.vs)}
        return 200, "application/json", json.dumps(body).encode()

    def handle_announce(self, req: Request) -> Reply:
        """A worker's signed announcement of its result URL."""
        chain = self.ctx.chain
        try:
            worker, url, ts = verify_announcement(req.body, chain.chain_id, chain.market.address)
        except PeerError as exc:
            return 400, "text/plain", f"{exc}\n".encode()
        self.ctx.db.set_worker_url(worker, url, ts)
        event(log, "worker_announced", worker=worker, url=url)
        return 200, "text/plain", b"ok\n"

    def handle_metrics(self, _req: Request) -> Reply:
        """Prometheus text format: this process's counters (``…_total``), the followed
        checkpoint, and the durable state's row counts (``pouw_oracle_db_…``, kept across
        restarts)."""
        lines = []
        counters = dict(self.ctx.metrics)
        counters.pop("checkpoint", None)
        checkpoint = self.ctx.db.checkpoint()
        for name, value in sorted(counters.items()):
            metric = f"pouw_oracle_{name}_total"
            lines += [
                f"# HELP {metric} {_METRIC_HELP.get(name, name.replace('_', ' '))}",
                f"# TYPE {metric} counter",
                f"{metric} {value}",
            ]
        lines += [
            "# HELP pouw_oracle_checkpoint_block last block whose events are recorded",
            "# TYPE pouw_oracle_checkpoint_block gauge",
            f"pouw_oracle_checkpoint_block {checkpoint}",
        ]
        for name, value in sorted(self.ctx.db.counts().items()):
            metric = f"pouw_oracle_db_{name}"
            lines += [
                f"# HELP {metric} rows in the node's SQLite state: {name.replace('_', ' ')}",
                f"# TYPE {metric} gauge",
                f"{metric} {value}",
            ]
        return 200, "text/plain; version=0.0.4", ("\n".join(lines) + "\n").encode()
