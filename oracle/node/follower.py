"""Following the chain: market events up to the confirmed head, confirmed block hashes, and
deep reorgs (a recorded checkpoint hash the chain no longer has)."""

from __future__ import annotations

import logging
from typing import Any

from eth_utils import to_checksum_address

from oracle.chain.client import ChainEvent
from oracle.exceptions import ChainError
from oracle.infra.logs import event
from oracle.node.context import NodeContext
from oracle.node.db import KEEP_BLOCKS
from oracle.node.decisions import fork_point
from oracle.protocol.settled import SettledBatch

__all__ = ["FOLLOWED", "Follower"]

log = logging.getLogger("pouw.oracle")

#: The market events the node records (:meth:`OracleDB.record_range`); the rest are not read.
FOLLOWED = (
    "JobCreated",
    "ResultSubmitted",
    "JobSettled",
    "WorkerSlashed",
    "JobRefunded",
    "JobCancelled",
    "BatchSettled",
    "BatchFinalized",
    "Refuted",
    "Overturned",
)


class Follower:
    """Records the market's confirmed events and serves confirmed block hashes."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        # Hashes of confirmed blocks (number <= self._confirmed), read once each; emptied when
        # a deep reorg is detected. See :meth:`confirmed_hash`.
        self._hashes: dict[int, bytes] = {}
        self._confirmed = -1

    def follow(self, max_range: int = 2_000) -> int:
        """Record events up to the confirmed head; returns the confirmed head."""
        chain, db, metrics = self.ctx.chain, self.ctx.db, self.ctx.metrics
        safe = chain.safe_head(self.ctx.cfg.confirmations)
        self.check_reorg()
        cp = db.checkpoint()
        assert cp is not None
        while cp < safe:
            to = min(safe, cp + max_range)
            evs = chain.events(cp + 1, to, names=FOLLOWED)
            items: dict[bytes, list[tuple[str, dict]]] = {}
            for e in evs:
                if e.name == "JobCreated":
                    e.args["_block"] = e.block_number
                elif e.name in ("JobSettled", "WorkerSlashed"):
                    items.setdefault(e.tx_hash, []).append((e.name, e.args))
                elif e.name == "BatchSettled" and e.args["batch_id"] != 0:
                    # A settle transaction's items precede its BatchSettled (same block, so
                    # never split across ranges); jobs are known from their JobCreated.
                    e.args["_batch"] = self._batch(e.args, items.pop(e.tx_hash, []), evs)
            db.record_range(to, chain.block_hash(to), [(e.name, e.args) for e in evs])
            metrics.inc("events", len(evs))
            metrics.inc("jobs_seen", sum(e.name == "JobCreated" for e in evs))
            metrics.inc("submissions_seen", sum(e.name == "ResultSubmitted" for e in evs))
            cp = to
        self._confirmed = min(safe, cp)
        return safe

    def _batch(
        self, head: dict[str, Any], items: list[tuple[str, dict]], evs: list[ChainEvent]
    ) -> str:
        """The batch a ``BatchSettled`` recorded, as JSON (:class:`SettledBatch`)."""
        created = {int(e.args["job_id"]): e.args for e in evs if e.name == "JobCreated"}
        terms: dict[int, tuple[str, int, int]] = {}
        for _, a in items:
            job_id = int(a["job_id"])
            job = created.get(job_id) or self.ctx.db.job(job_id)
            if job is None:  # a job from before this node's deployment record: ask the chain
                job = self.ctx.chain.job(job_id)
            terms[job_id] = (
                to_checksum_address(job["asset"]),
                int(job["amount"]),
                int(job["work_units"]),
            )
        return SettledBatch.from_logs(head, items, terms).to_json()

    def confirmed_hash(self, number: int) -> bytes:
        """The hash of a confirmed block (at or below the checkpoint the last :meth:`follow`
        reached, so at or below ``head - confirmations``), read from the chain once.

        Safe to reuse: a reorg that changes a block at or below the checkpoint changes the
        checkpoint's own hash, which :meth:`check_reorg` compares with the chain at the start
        of every follow, before anything is verified; it empties this cache. A block above the
        confirmed head is refused (ChainError), never cached.
        """
        if number > self._confirmed:
            raise ChainError(f"block {number} is above the confirmed head {self._confirmed}")
        h = self._hashes.get(number)
        if h is None:
            h = self.ctx.chain.block_hash(number)
            if len(self._hashes) >= KEEP_BLOCKS:
                self._hashes.pop(min(self._hashes))
            self._hashes[number] = h
        return h

    def check_reorg(self) -> None:
        """Compare the checkpoint's recorded hash with the chain's; on a mismatch (a reorg
        deeper than the confirmation depth) rewind to the fork point and orphan the verdicts
        whose challenge block changed."""
        chain, db = self.ctx.chain, self.ctx.db
        cp = db.checkpoint()
        if cp is None or cp < 0:
            return
        recorded = db.block_hash(cp)
        try:
            if recorded is None or recorded == chain.block_hash(cp):
                return
        except ChainError:
            pass  # the checkpoint block is gone: the chain was cut below it
        self._hashes.clear()
        self._confirmed = -1
        # Blocks whose hash was never recorded prove nothing; none kept matches: re-read
        # everything since the deployment.
        fork = fork_point(db.recorded_blocks(below=cp), self._chain_hash, chain.deployment.block)
        self.ctx.metrics.inc("deep_reorgs")
        event(log, "deep_reorg", logging.ERROR, checkpoint=cp, fork_point=fork)
        for v in db.orphan_verdicts_after(fork):
            if chain.block_hash(v.challenge_block) != v.challenge_hash:
                db.orphan(v)
                event(
                    log, "verdict_orphaned", logging.WARNING, job=v.key.job_id, worker=v.key.worker
                )
        db.rewind(fork)

    def _chain_hash(self, number: int) -> bytes | None:
        try:
            return self.ctx.chain.block_hash(number)
        except ChainError:
            return None  # the chain is now shorter than that block
