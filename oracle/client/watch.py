"""`pouw watch`: a watcher that re-derives every matmul verdict while it can still be undone,
and disputes a wrong one itself.

Safety of a settled matmul verdict needs one honest party online within the batch's challenge
window (``contracts/Disputes.vy``); this is that party, as a daemon. One loop
(:meth:`Watcher.step`):

1. follow the market's ``BatchSettled`` / ``JobSettled`` / ``WorkerSlashed`` / ``Refuted`` /
   ``Overturned`` / ``BatchFinalized`` events up to ``head - confirmations`` and record every
   VALID and INVALID item of a batch in a window (``job_id``, ``batch_id``, the worker, the
   verdict, ``final_at``) in its own SQLite file, with the block it has read up to, in one
   transaction: a restart reads on from there and loses nothing;
2. check each ``pending`` item whose retry time has come from public data only (the spec and
   inputs from the job stores, the result the worker delivered under its commitment): a VALID
   one with :func:`oracle.client.dispute.dispute_job` (is an entry wrong?), an INVALID one with
   :func:`oracle.client.dispute.overturn_job` (is the entry it names right?); the outcome is
   recorded: ``right``, ``refuted`` / ``overturned`` (this watcher sent the dispute: its
   transaction), ``refutable`` / ``overturnable`` (wrong, but no key to dispute with: an
   alert), ``not_disputable`` (a committee-only kind, or an INVALID verdict that names no
   entry), ``closed`` (undone by someone else, or final before it could be checked:
   ``missed`` counts those never checked);
3. a check that fails for a reason that may pass (a job store down, a result not delivered
   yet) is retried with capped exponential backoff until the window ends.

A ``Refuted`` / ``Overturned`` event closes its item whoever sent the dispute, and the dispute
contract refuses a second dispute of the same verdict: a crash between sending a dispute and
recording it sends nothing twice. ``GET /metrics`` (Prometheus text) counts verdicts seen
and checked by outcome, disputes sent, check errors and seconds per check, and gauges the
items by state; ``GET /health`` answers ``ok``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from eth_account.signers.local import LocalAccount

from oracle.chain.client import Chain
from oracle.client.dispute import dispute_job, overturn_job
from oracle.exceptions import PouwError
from oracle.infra.logs import event
from oracle.infra.loop import run_until_stopped
from oracle.infra.metrics import Metrics
from oracle.infra.sqlite import SqliteFile
from oracle.infra.web import WebServer, metrics_response, text

__all__ = ["WatchConfig", "WatchDB", "Watcher"]

log = logging.getLogger("pouw.watch")

#: Events the watcher follows.
FOLLOWED = (
    "BatchSettled", "JobSettled", "WorkerSlashed", "Refuted", "Overturned", "BatchFinalized",
)  # fmt: skip
#: The most blocks one ``eth_getLogs`` asks for.
LOG_RANGE = 5_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts (
    job_id INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    worker TEXT NOT NULL,
    verdict INTEGER NOT NULL,
    settled_block INTEGER NOT NULL,
    final_at INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    checked INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    entry TEXT NOT NULL DEFAULT '',
    tx_hash TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, job_id, worker, verdict)
);
CREATE INDEX IF NOT EXISTS verdicts_pending ON verdicts (status, next_try);
"""
SCHEMA_VERSION = 2
STATUSES = (
    "pending", "right", "refuted", "refutable", "overturned", "overturnable", "not_disputable",
    "closed",
)  # fmt: skip
#: An item: (batch_id, job_id, worker, verdict), verdict 1 VALID, 2 INVALID.
Key = tuple[int, int, str, int]
#: What a dispute that this watcher sent leaves as its item's status.
SENT = ("refuted", "overturned")

METRIC_HELP = {
    "verdicts_seen": "VALID and INVALID verdicts followed in a challenge window",
    "verdicts_checked": "verdicts re-derived from public data",
    "verdicts_right": "verdicts checked and found right",
    "verdicts_wrong": "verdicts found wrong (disputed, or disputable without a key)",
    "disputes_sent": "disputes (refutations and overturns) this watcher sent and saw mined",
    "verdicts_missed": "verdicts closed (final or refuted by another) before this watcher "
    "could check them",
    "check_errors": "checks that failed for a reason that may pass (retried)",
    "loop_errors": "loop iterations that failed (logged, retried)",
}


@dataclass(frozen=True)
class WatchConfig:
    """What a watcher reads, where it keeps its state, how often it looks."""

    db_path: str
    spec_stores: tuple[str, ...]
    confirmations: int = 0
    poll_interval: float = 2.0
    retry_base: float = 1.0
    retry_max: float = 30.0
    host: str = "127.0.0.1"
    port: int = 0


class WatchDB(SqliteFile):
    """The watcher's durable state: the block followed up to, one row per VALID / INVALID item."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA, SCHEMA_VERSION)

    def followed_to(self) -> int | None:
        row = self._one("SELECT value FROM meta WHERE key = 'followed_to'")
        return None if row is None else int(row[0])

    def record(
        self,
        to_block: int,
        settled: Sequence[tuple[int, int, str, int, int, int]],
        undone: Sequence[tuple[Key, str]],
        finalized: Sequence[int],
    ) -> int:
        """Add items ``(job, batch, worker, verdict, block, final_at)``, close the items a
        dispute undid (``(key, tx)``: refuted or overturned) and the pending items of finalized
        batches, and move the checkpoint to ``to_block``, in one transaction. Returns how many
        items were new."""
        with self.tx() as c:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO verdicts (job_id, batch_id, worker, verdict, "
                "settled_block, final_at) VALUES (?, ?, ?, ?, ?, ?)",
                settled,
            )
            new = c.total_changes - before
            c.executemany(
                "UPDATE verdicts SET reason = 'undone on-chain', tx_hash = ?, status = 'closed' "
                "WHERE batch_id = ? AND job_id = ? AND worker = ? AND verdict = ? "
                f"AND status NOT IN ('closed', {', '.join(repr(x) for x in SENT)})",
                [(tx, *key) for key, tx in undone],
            )
            c.executemany(
                "UPDATE verdicts SET status = 'closed', reason = 'final before it was checked' "
                "WHERE batch_id = ? AND status = 'pending'",
                [(b,) for b in finalized],
            )
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('followed_to', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (to_block,),
            )
        return int(new)

    def due(self, now: float, limit: int = 64) -> list[tuple[Key, int]]:
        """Pending items whose retry time has come, oldest first: (key, attempts so far)."""
        rows = self._all(
            "SELECT batch_id, job_id, worker, verdict, attempts FROM verdicts "
            "WHERE status = 'pending' AND next_try <= ? ORDER BY settled_block, job_id LIMIT ?",
            (now, limit),
        )
        return [((int(r[0]), int(r[1]), str(r[2]), int(r[3])), int(r[4])) for r in rows]

    def decide(self, key: Key, status: str, reason: str, entry: str, tx_hash: str) -> bool:
        """Record an outcome of a pending item; False if it was closed meanwhile."""
        with self.tx() as c:
            cur = c.execute(
                "UPDATE verdicts SET status = ?, checked = ?, reason = ?, entry = ?, tx_hash = ? "
                "WHERE batch_id = ? AND job_id = ? AND worker = ? AND verdict = ? "
                "AND status = 'pending'",
                (status, int(status != "closed"), reason, entry, tx_hash, *key),
            )
            return bool(cur.rowcount)

    def retry(self, key: Key, at: float, reason: str) -> None:
        with self.tx() as c:
            c.execute(
                "UPDATE verdicts SET attempts = attempts + 1, next_try = ?, reason = ? "
                "WHERE batch_id = ? AND job_id = ? AND worker = ? AND verdict = ? "
                "AND status = 'pending'",
                (at, reason, *key),
            )

    def counts(self) -> dict[str, int]:
        """Items by state (every state present, 0 if none)."""
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._all("SELECT status, COUNT(*) FROM verdicts GROUP BY status"):
            out[str(status)] = int(n)
        return out

    def items(self) -> list[dict[str, Any]]:
        """Every item, in settlement order (``pouw watch --once --json`` prints them)."""
        cols = (
            "job_id", "batch_id", "worker", "verdict", "status", "checked", "reason", "entry",
            "tx_hash",
        )  # fmt: skip
        rows = self._all(f"SELECT {', '.join(cols)} FROM verdicts ORDER BY settled_block, job_id")
        return [dict(zip(cols, r, strict=True)) for r in rows]


class Watcher:
    """One watcher over one deployment; disputes with ``account`` (None: reports only)."""

    def __init__(self, config: WatchConfig, chain: Chain, account: LocalAccount | None) -> None:
        self.cfg = config
        self.chain = chain
        self.account = account
        self.db = WatchDB(config.db_path)
        self.metrics = Metrics(
            "pouw_watch",
            help=METRIC_HELP,
            counters=tuple(METRIC_HELP),
            histograms={"check_seconds": "seconds re-deriving one verdict"},
        )
        self.metrics.add_rows("verdicts", "verdicts by state", self.db.counts)
        self.server: WebServer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start_server(self) -> str:
        """Serve ``/metrics`` and ``/health``; returns the URL."""

        async def metrics(req: web.Request) -> web.Response:
            return await metrics_response(req, self.metrics)

        async def health(_req: web.Request) -> web.Response:
            return text(200, "ok")

        routes = [web.get("/metrics", metrics), web.get("/health", health)]
        self.server = WebServer(routes, self.cfg.host, self.cfg.port).start()
        event(log, "listening", url=self.server.url)
        return self.server.url

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.db.close()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; a failing iteration is logged and retried."""
        run_until_stopped(stop, self.step, self.cfg.poll_interval, self.metrics, log)

    def step(self) -> None:
        """Follow the chain, then check what is due."""
        self.follow()
        self.check_due()

    # -- steps -----------------------------------------------------------------------------

    def follow(self) -> None:
        """Record the VALID and INVALID items, the disputes that undid them and the
        finalizations, up to the safe head."""
        head = self.chain.safe_head(self.cfg.confirmations)
        done = self.db.followed_to()
        start = self.chain.deployment.block if done is None else done + 1
        while start <= head:
            end = min(head, start + LOG_RANGE - 1)
            evs = self.chain.events(start, end, names=FOLLOWED)
            batches = {
                e.tx_hash: e.args for e in evs if e.name == "BatchSettled" and e.args["batch_id"]
            }
            settled = [
                (
                    int(e.args["job_id"]),
                    int(batches[e.tx_hash]["batch_id"]),
                    str(e.args["worker"]),
                    1 if e.name == "JobSettled" else 2,
                    e.block_number,
                    int(batches[e.tx_hash]["final_at"]),
                )
                for e in evs
                if e.name in ("JobSettled", "WorkerSlashed") and e.tx_hash in batches
            ]
            undone: list[tuple[Key, str]] = [
                (
                    (
                        int(e.args["batch_id"]),
                        int(e.args["job_id"]),
                        str(e.args["worker"]),
                        1 if e.name == "Refuted" else 2,
                    ),
                    "0x" + e.tx_hash.hex(),
                )
                for e in evs
                if e.name in ("Refuted", "Overturned")
            ]
            finalized = [int(e.args["batch_id"]) for e in evs if e.name == "BatchFinalized"]
            new = self.db.record(end, settled, undone, finalized)
            if new:
                self.metrics.inc("verdicts_seen", new)
                event(log, "verdicts_seen", count=new, to_block=end)
            start = end + 1

    def check_due(self) -> None:
        """Re-derive each due pending verdict; dispute a wrong one."""
        for key, attempts in self.db.due(time.time()):
            self._check(key, attempts)

    def _check(self, key: Key, attempts: int) -> None:
        batch_id, job_id, worker, verdict = key
        t0 = time.perf_counter()
        stores, account = self.cfg.spec_stores, self.account
        try:
            outcome = (
                dispute_job(self.chain, job_id, stores, account)
                if verdict == 1
                else overturn_job(self.chain, job_id, worker, stores, account)
            )
        except PouwError as exc:
            delay = min(self.cfg.retry_max, self.cfg.retry_base * 2**attempts)
            self.db.retry(key, time.time() + delay, str(exc))
            self.metrics.inc("check_errors")
            event(log, "check_failed", logging.WARNING, job_id=job_id, error=str(exc))
            return
        self.metrics.observe("check_seconds", time.perf_counter() - t0)
        status = outcome.status
        if status == "no_pending_verdict" or outcome.batch_id not in (0, batch_id):
            status = "closed"
            self.metrics.inc("verdicts_missed")
        else:
            self.metrics.inc("verdicts_checked")
        entry = ",".join(str(x) for x in outcome.entry)
        if not self.db.decide(key, status, outcome.reason, entry, outcome.tx_hash):
            return
        wrong = ("refuted", "refutable", "overturned", "overturnable")
        if status == "right":
            self.metrics.inc("verdicts_right")
        elif status in wrong:
            self.metrics.inc("verdicts_wrong")
            if status in SENT:
                self.metrics.inc("disputes_sent")
        level = logging.WARNING if status in (*wrong, "closed") else logging.INFO
        event(
            log,
            f"verdict_{status}",
            level,
            job_id=job_id,
            batch_id=batch_id,
            worker=worker,
            verdict=verdict,
            reason=outcome.reason,
            tx=outcome.tx_hash,
        )
