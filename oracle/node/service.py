"""The oracle node: follow the chain, verify submissions, sign, aggregate k-of-n, settle.

One loop, one thread, every state change one SQLite transaction (:mod:`oracle.node.db`):

1. **Follow** — read market events of ``(checkpoint, head - confirmations]`` and record them
   with the new checkpoint atomically. Before that, the recorded hash of the checkpoint block
   is compared with the chain's: a mismatch is a reorg deeper than the confirmation depth
   (a shallower one never reaches the node). *Deep reorg behaviour*: the node walks back to
   the newest block whose recorded hash still matches (the fork point), rewinds its
   checkpoint there, re-reads the events after it (idempotent), and orphans every verdict
   whose challenge block hash changed; those submissions are verified again under the new
   seed if they are still on the chain. Signatures already given over orphaned verdicts are
   harmless: the contract skips attestations that no longer match a live submission.
2. **Verify** — for each pending submission whose challenge block (submission block + 1) is
   confirmed: derive the seed from that block's hash, start :func:`oracle.compute.verify.prepare` on
   a helper thread while the result is fetched from the worker, then check. Bad input never stops
   the loop: a malformed spec, blob inputs the node has no store for, or a spec whose work units
   differ from the job's is *given up* at once (no attestation: the worker is not at fault, the
   requester is refunded after the deadline); a spec store that is down, or a spec not published
   yet, is retried with exponential backoff until the job's settlement window ends (then given
   up), and the stores' state is a gauge and a log line per change; an unreachable worker is
   retried with exponential backoff until the reveal window has passed on-chain, then INVALID;
   an oversized result, a served root that does not open the commitment, or a result that fails
   the check is INVALID with its reason.
3. **Settle** — unsettled verdicts (those the followed events have not closed) form
   batches (``batch_size`` items, or fewer once the oldest has waited ``max_wait``
   seconds). Leadership rotates by job id: the node at rank ``(index - job_id) mod n`` in
   the oracle set waits ``rank * takeover`` extra seconds, so normally one node proposes
   each item and others step in only if it is down. The proposer signs the batch and
   POSTs it to each peer's ``/sign``; a peer signs the sub-list of items that match its
   own recorded verdicts exactly and returns the signature. Any sub-list with
   ``threshold`` signatures (own included) is settled in one transaction; the transaction
   is stored before it is broadcast and re-broadcast after a restart. Too few peers answering
   to reach the threshold is said once (``threshold_unreachable``, gauge
   ``threshold_reachable``), at start-up too, and once when it is over. No item is re-read
   from the chain first: the contract skips a stale one with ``AttestationSkipped``, and
   the receipt marks it moot (one SQLite transaction per receipt).

Restart safety: the checkpoint advances in the same transaction as the events it covers;
a verdict is never replaced (:class:`~oracle.exceptions.VerdictConflict`), so every signature
this node ever gives over an item has the same content; a settle transaction is recorded with
its nonce before broadcast and, after a crash, the same bytes are re-broadcast (never a second
transaction for that nonce). The contract skips items already settled, so racing nodes can
waste at most the transaction that lost the race, never pay twice.

Layout: :class:`OracleNode` composes one collaborator per job, sharing a
:class:`~oracle.node.context.NodeContext` — :class:`~oracle.node.follower.Follower` (1),
:class:`~oracle.node.verifier.Verifier` (2), :class:`~oracle.node.settler.Settler` (3) and
:class:`~oracle.node.api.NodeApi` (the HTTP routes); their decisions are plain functions in
:mod:`oracle.node.decisions`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from oracle.chain.client import Chain
from oracle.compute.freivalds import jit_warm_up as freivalds_warm_up
from oracle.compute.merkle import jit_warm_up as merkle_warm_up
from oracle.exceptions import ChainError
from oracle.infra.health import spec_store_reachability
from oracle.infra.logs import event
from oracle.infra.loop import run_until_stopped
from oracle.infra.metrics import Metrics
from oracle.infra.web import WebServer
from oracle.node.api import NodeApi
from oracle.node.context import NodeContext
from oracle.node.db import OracleDB
from oracle.node.follower import Follower
from oracle.node.settler import Settler
from oracle.node.verifier import Verifier
from oracle.protocol.attestation import SIGNATURE_TTL
from oracle.store.specs import SpecStore

__all__ = ["KILL_POINTS", "OracleConfig", "OracleNode"]

log = logging.getLogger("pouw.oracle")

#: /metrics help text of the node's counters (others are named by what they count).
METRIC_HELP = {
    "events": "market events followed",
    "jobs_seen": "JobCreated events followed",
    "submissions_seen": "ResultSubmitted events followed",
    "verify_checks": "results checked (held result to verdict)",
    "verdicts_valid": "VALID verdicts recorded",
    "verdicts_invalid": "INVALID verdicts recorded",
    "settle_txs": "settle transactions mined",
    "items_settled": "attestations settled (paid or slashed) by own transactions",
    "items_skipped": "attestations the contract skipped in own transactions",
    "gas_used": "gas used by own settle transactions",
    "checkpoint_block": "last block whose events are recorded",
    "gave_up": "submissions given up without a verdict (logged as gave_up, with the reason)",
    "prepare_retries": "submissions whose spec or inputs were not available yet, retried with "
    "backoff (logged as prepare_retry)",
    "spec_store_up": "1 if a spec store answered the last request, 0 if none did",
    "peers_reachable": "peers that answered the last request for signatures or health probe",
    "threshold_reachable": "1 if those peers and this node can make the threshold of signatures",
}
#: The node's histograms (seconds).
METRIC_HISTOGRAMS = {
    "verify_seconds": "seconds from a held result to its verdict",
    "settle_latency_seconds": "seconds from a result's commitment (first seen) to its "
    "settlement by an own transaction",
}

#: Where a test may ask the node to SIGKILL itself (``OracleConfig.kill_at``).
KILL_POINTS = ("after_verdict", "after_sign", "after_tx_signed", "after_broadcast")


@dataclass
class OracleConfig:
    """Everything an oracle node needs; the CLI builds it from flags."""

    rpc_url: str
    db_path: str
    spec_stores: Sequence[str]
    confirmations: int = 2
    poll_interval: float = 0.5
    batch_size: int = 32
    max_wait: float = 2.0
    takeover: float = 8.0
    #: Seconds a settlement signature stays valid on-chain (``validUntil`` = chain now + this);
    #: a peer refuses to sign a proposal valid for longer (plus a minute of clock skew).
    signature_ttl: int = SIGNATURE_TTL
    peers: Sequence[str] = ()
    host: str = "127.0.0.1"
    port: int = 0
    worker_urls: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 8
    backoff: float = 0.5
    max_backoff: float = 30.0
    fetch_timeout: float = 5.0
    verify_threads: int = 4
    #: Submissions asked of one worker per bundle (``POST /results``); 1 disables bundles.
    bundle_items: int = 64
    #: Seconds between ``/health`` probes of the peers while too few answer for the threshold.
    peer_probe_interval: float = 5.0
    kill_at: str | None = None


class OracleNode:
    """One oracle node; :meth:`step` runs one loop iteration, :meth:`run` loops until stopped.

    Its collaborators: :attr:`follower` (``follow``, ``confirmed_hash``), :attr:`verifier`
    (``verify_due``, ``decide``), :attr:`settler` (``settle_ready``, ``resume_transactions``)
    and :attr:`api` (the HTTP handlers :meth:`start_server` serves).
    """

    def __init__(self, config: OracleConfig, chain: Chain, account: LocalAccount) -> None:
        self.cfg = config
        self.chain = chain
        self.account = account
        self.db = OracleDB(config.db_path)
        self.metrics = Metrics(
            "pouw_oracle",
            help=METRIC_HELP,
            counters=("jobs_seen", "submissions_seen", "verify_checks", "settle_txs"),
            histograms=METRIC_HISTOGRAMS,
        )
        self.spec_store = spec_store_reachability(log, self.metrics)
        self.specs = SpecStore(config.spec_stores, watch=self._spec_store_seen)
        self.metrics.read_from("checkpoint_block", lambda: self.db.checkpoint() or 0)
        self.metrics.add_rows("db", "rows in the node's SQLite state", self.db.counts)
        oracles: list[str] = sorted(
            (to_checksum_address(o) for o in chain.oracle_set_call("oracles")),
            key=lambda a: int(a, 16),
        )
        threshold = int(chain.oracle_set_call("threshold"))
        reveal_window = int(chain.call("reveal_window"))
        refund_grace = int(chain.call("refund_grace"))
        if account.address not in oracles:
            raise ChainError(f"{account.address} is not in the market's oracle set")
        self.ctx = NodeContext(
            cfg=config,
            chain=chain,
            account=account,
            db=self.db,
            metrics=self.metrics,
            http=requests.Session(),
            oracles=oracles,
            index=oracles.index(account.address),
            threshold=threshold,
            reveal_window=reveal_window,
            refund_grace=refund_grace,
            kill=self._kill,
        )
        self.settler = Settler(self.ctx)
        self.follower = Follower(self.ctx)
        self.verifier = Verifier(self.ctx, self.specs, self.follower.confirmed_hash)
        self.api = NodeApi(self.ctx, self.settler)
        self.server: WebServer | None = None
        for addr, url in config.worker_urls.items():
            self.db.set_worker_url(to_checksum_address(addr), url.rstrip("/"), 0)
        if self.db.checkpoint() is None:
            self.db.rewind(chain.deployment.block - 1)
        # Load (or compile into the on-disk cache) the verifier's kernels now, at start-up,
        # rather than on the first job's clock.
        freivalds_warm_up()
        merkle_warm_up()

    def start_server(self) -> str:
        """Serve /sign, /workers, /metrics and /health; returns the base URL."""
        self.server = WebServer(self.api.routes(), self.cfg.host, self.cfg.port).start()
        event(log, "listening", url=self.server.url, oracle=self.account.address)
        return self.server.url

    def close(self) -> None:
        """Stop the HTTP server and the helper threads."""
        if self.server is not None:
            self.server.stop()
        self.verifier.close()
        self.db.close()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set: follow and verify on this thread, settle on a second
        one (a settle transaction's round trips never hold up verification, nor the other
        way round); an error in one iteration is logged and retried. The spec stores and the
        peers are probed first, so a node that cannot read specs or cannot reach the threshold
        says so at start-up."""
        self.specs.probe()
        self.settler.check_peers()
        self.settler.resume_transactions()
        settler = threading.Thread(
            target=self._loop, args=(stop, self.settle_backlog), name="pouw-settle", daemon=True
        )
        settler.start()
        try:
            self._loop(stop, lambda: self.verifier.verify_due(self.follower.follow()))
        finally:
            settler.join(timeout=30)

    def _loop(self, stop: threading.Event, body: Callable[[], object]) -> None:
        run_until_stopped(stop, body, self.cfg.poll_interval, self.metrics, log)

    def step(self) -> None:
        """Follow, verify, settle: one iteration (what :meth:`run` does on two threads)."""
        self.verifier.verify_due(self.follower.follow())
        self.settle_backlog()

    def settle_backlog(self, max_batches: int = 8) -> int:
        """Finalize the settled batches whose challenge window is over, then settle ready
        batches until none is left (at most ``max_batches``): a backlog of full batches goes
        out now, not one per iteration. Returns the items settled. (Peers are probed first
        while too few answered: see :meth:`Settler.check_peers`.)"""
        self.settler.check_peers()
        self.settler.finalize_due()
        total = 0
        for _ in range(max_batches):
            settled = self.settler.settle_ready()
            if settled == 0:
                break
            total += settled
        return total

    def _spec_store_seen(self, up: bool, error: str) -> None:
        self.spec_store.observe(
            up, stores=list(self.cfg.spec_stores), **({"error": error} if error else {})
        )

    def _kill(self, point: str) -> None:
        if self.cfg.kill_at == point:
            event(log, "kill_point", point=point)
            os.kill(os.getpid(), signal.SIGKILL)
