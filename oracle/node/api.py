"""The oracle node's HTTP routes: ``POST /sign`` (a peer's proposal), ``POST /workers`` (a
worker's signed announcement), ``GET /metrics`` (Prometheus text) and ``GET /health``.

Bodies are decoded into the typed messages of :mod:`oracle.node.wire` and
:mod:`oracle.protocol.announce`; anything else is a ``400`` naming the field (see
:mod:`oracle.infra.web` for the limits every route has)."""

from __future__ import annotations

import logging

from aiohttp import web

from oracle.exceptions import PeerError
from oracle.infra.logs import event
from oracle.infra.web import (
    blocking,
    decode_json,
    error,
    json_response,
    metrics_response,
    read_body,
    text,
)
from oracle.node.context import NodeContext
from oracle.node.decisions import CLOCK_SKEW, acceptable_expiry
from oracle.node.settler import Settler, attestation
from oracle.node.wire import Proposal, SignReply, from_item
from oracle.protocol.announce import verify_announcement
from oracle.protocol.attestation import Attestation
from oracle.protocol.verdict import VerdictKey

__all__ = ["NodeApi"]

log = logging.getLogger("pouw.oracle")


class NodeApi:
    """The handlers of the node's routes (served by :class:`~oracle.infra.web.WebServer`);
    a peer's proposal is signed through ``settler``."""

    def __init__(self, ctx: NodeContext, settler: Settler) -> None:
        self.ctx = ctx
        self.settler = settler

    def routes(self) -> list[web.RouteDef]:
        """/sign, /workers, /metrics and /health."""
        return [
            web.post("/sign", self.handle_sign),
            web.post("/workers", self.handle_announce),
            web.get("/metrics", self.handle_metrics),
            web.get("/health", self.handle_health),
        ]

    async def handle_health(self, _req: web.Request) -> web.Response:
        return text(200, "ok")

    async def handle_sign(self, req: web.Request) -> web.Response:
        """A peer's proposal: sign the sub-list of items matching this node's own verdicts."""
        proposal = await decode_json(req, Proposal)
        try:
            items = [from_item(x) for x in proposal.items]
        except ValueError as exc:  # a worker address that is not a valid checksum
            raise error(400, f"bad proposal: {exc}") from None
        ttl = self.ctx.cfg.signature_ttl
        now = await blocking(req, self.ctx.chain.now)
        if not acceptable_expiry(proposal.valid_until, now, ttl):
            raise error(
                400,
                f"valid_until {proposal.valid_until} outside [{now}, {now + ttl + CLOCK_SKEW}] "
                "(the chain's now plus this node's signature_ttl)",
            )
        return json_response(await blocking(req, self.sign, items, proposal.valid_until))

    def sign(self, items: list[Attestation], valid_until: int) -> SignReply:
        """The answer to a proposal of ``items`` signed until ``valid_until``."""
        agreed = []
        for i, a in enumerate(items):
            v = self.ctx.db.verdict(
                VerdictKey(a.job_id, a.worker, a.commitment, a.submission_block)
            )
            if v is not None and attestation(v) == a:
                agreed.append(i)
        if not agreed:
            return SignReply(agreed=[])
        sig = self.settler.sign_own([items[i] for i in agreed], valid_until, "peer")
        return SignReply(agreed=agreed, signer=sig.signer, r=hex(sig.r), vs=hex(sig.vs))

    async def handle_announce(self, req: web.Request) -> web.Response:
        """A worker's signed announcement of its result URL."""
        chain = self.ctx.chain
        body = await read_body(req)
        try:
            worker, url, ts = verify_announcement(body, chain.chain_id, chain.market.address)
        except PeerError as exc:
            raise error(400, str(exc)) from None
        await blocking(req, self.ctx.db.set_worker_url, worker, url, ts)
        event(log, "worker_announced", worker=worker, url=url)
        return text(200, "ok")

    async def handle_metrics(self, req: web.Request) -> web.Response:
        """Prometheus text format: this process's counters (``…_total``), the followed
        checkpoint, the histograms of verification seconds and of the latency from a
        result's commitment to its settlement, and the durable state's row counts
        (``pouw_oracle_db_…``, kept across restarts)."""
        return await metrics_response(req, self.ctx.metrics)
