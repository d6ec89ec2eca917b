"""The worker client: bond, pick jobs, compute, commit, serve, claim.

One loop (:meth:`Worker.step`):

1. bond: each live submission holds ``min_bond`` of the bond at stake, so the worker keeps
   ``stake_slots × min_bond`` bonded (``register`` tops it up when the free bond cannot back
   one more submission and nothing it has committed will return a stake);
2. record new ``JobCreated`` events (up to the head; a worker needs no confirmations to
   *start* work) and the epochs of its own ``WorkRecorded``;
3. for each new job that is due: skip it (recorded, with a reason; ``job_skipped``) if it is
   no longer open (refunded or cancelled as followed, or past its deadline), its kind is
   filtered out, it is larger than ``max_work_units``, it pays less than
   ``min_price_per_unit`` wei per work unit, or it can never be done here (a malformed spec,
   blob inputs this worker has no store for: :mod:`oracle.protocol.failures`); a failure
   that may pass (a spec store down, a spec not published yet) makes the job wait with capped
   exponential backoff (``job_retry``) until its deadline, and the loop goes on with the next
   job either way; otherwise compute it and store the result in the local blob store; then
   record every (blob, root, commitment) of the batch in one transaction — all before
   sending; then deliver each full result to the job stores (``--spec-store``), which keep it
   under its commitment for the requester, the oracles and auditors;
4. commit up to ``commit_batch`` computed and delivered results (what is not delivered yet is
   delivered first; what cannot be waits) in one ``submit_results`` transaction; a
   computed job whose commitment may have been sent before (after a restart, or a failed
   send) is first looked up on-chain, so a commitment already mined is never sent again;
5. withdraw credited escrow and claim ended epochs; ``release`` the stakes of committed jobs
   that closed without paying this worker (paid to another, refunded, cancelled, expired).

It serves its committed results to oracles and auditors (:mod:`oracle.worker.api`) and
announces its URL to the oracles (:mod:`oracle.protocol.announce`).

The spec stores' state is a gauge (``spec_store_up``) and one log line per change
(``spec_store_down``, at start-up too; ``spec_store_up``). While they are down, jobs whose spec
is not cached wait without a request each, a probe asks the stores every
``store_probe_interval`` seconds, and when they answer again every waiting job is due at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests
from eth_account.signers.local import LocalAccount

from oracle.chain.client import STATUS_OPEN, ZERO_ADDRESS, Chain, TxSender
from oracle.compute.backend import select_backend
from oracle.compute.kinds import KINDS
from oracle.compute.merkle import jit_warm_up as merkle_warm_up
from oracle.compute.work import compute, result_root
from oracle.exceptions import BlobError, BlobTransferError, ChainError
from oracle.infra.health import spec_store_reachability, transition
from oracle.infra.logs import event
from oracle.infra.loop import run_until_stopped
from oracle.infra.metrics import Metrics
from oracle.infra.web import WebServer
from oracle.protocol.announce import make_announcement
from oracle.protocol.commitment import commitment
from oracle.protocol.params import MAX_BATCH
from oracle.protocol.results import encode_result, result_layout
from oracle.protocol.spec import Spec
from oracle.store.blobs import BlobBatch, LocalBlobStore
from oracle.store.results import ResultStores, StoredResult
from oracle.store.specs import InputStore, SpecStore
from oracle.worker.api import WorkerApi
from oracle.worker.db import WorkerDB
from oracle.worker.decisions import Skip, accept_reason, after_failure, closed_reason

__all__ = ["KILL_POINTS", "Worker", "WorkerConfig"]

log = logging.getLogger("pouw.worker")

#: /metrics help text of the worker's counters (others are named by what they count).
METRIC_HELP = {
    "jobs_computed": "results computed",
    "jobs_skipped": "jobs set aside for good, with the reason in the state (logged as job_skipped)",
    "job_retries": "failed attempts at a job that may pass, retried with backoff (job_retry)",
    "jobs_waiting": "new jobs waiting for a retry after a failure that may pass",
    "spec_store_up": "1 if a spec store answered the last request, 0 if none did",
    "loop_errors": "loop iterations that failed (logged as loop_error)",
    "results_delivered": "full results put in the job stores before their commitment was sent",
}

#: Where a test may ask the worker to SIGKILL itself (``WorkerConfig.kill_at``): results
#: stored and recorded, nothing sent; the commit transaction signed, not broadcast; broadcast,
#: its receipt not yet seen.
KILL_POINTS = ("after_compute", "after_commit_signed", "after_commit_broadcast")


@dataclass
class WorkerConfig:
    """Everything a worker needs; the CLI builds it from flags."""

    rpc_url: str
    db_path: str
    store_dir: str
    spec_stores: Sequence[str]
    oracle_urls: Sequence[str] = ()
    kinds: Sequence[str] = tuple(KINDS)
    max_work_units: int = 1 << 50
    min_price_per_unit: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    poll_interval: float = 0.3
    claim_interval: float = 2.0
    #: Backoff of a job after a failure that may pass: ``retry_backoff`` seconds, doubling
    #: per failure up to ``max_retry_backoff``; retried until the job's deadline.
    retry_backoff: float = 1.0
    max_retry_backoff: float = 60.0
    #: Seconds between probes of the spec stores while none answers.
    store_probe_interval: float = 2.0
    commit_batch: int = 64
    #: Submissions this worker can have live at once: it keeps ``stake_slots × min_bond``
    #: bonded (each live submission holds ``min_bond`` at stake until it is settled).
    stake_slots: int = 64
    #: Seconds between announcements to an oracle that already has this worker's URL (so a
    #: restarted or new oracle learns it); one that failed is retried every few seconds.
    announce_interval: float = 60.0
    announce_retry: float = 2.0
    #: Seconds between reads of the bond and ``min_bond`` (two calls) while nothing followed
    #: suggests a change; a slash of this worker or a failed commit forces the next read.
    bond_check_interval: float = 10.0
    #: Tests only: SIGKILL this process at one of ``KILL_POINTS``.
    kill_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: The market events a worker acts on (others, such as every ``ResultSubmitted``, are not read).
_FOLLOWED = (
    "JobCreated",
    "WorkRecorded",
    "JobRefunded",
    "JobCancelled",
    "JobSettled",
    "WorkerSlashed",
)


class Worker:
    """One worker. ``tamper(job_id, result)`` (tests only) may return a corrupted result."""

    def __init__(
        self,
        config: WorkerConfig,
        chain: Chain,
        account: LocalAccount,
        *,
        tamper: Callable[[int, np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.cfg = config
        self.chain = chain
        self.account = account
        self.address = account.address
        self.db = WorkerDB(config.db_path)
        self.store = LocalBlobStore(config.store_dir)
        self.store.remove_stale_temps()  # what a killed batch wrote and never renamed
        self.metrics = Metrics(
            "pouw_worker",
            help=METRIC_HELP,
            counters=("jobs_computed", "jobs_skipped"),
            histograms={
                "compute_seconds": "seconds computing one job's result",
                "deliver_seconds": "seconds delivering one batch of results to the job stores",
            },
        )
        self.metrics.read_from("jobs_waiting", self.db.waiting)
        self.spec_store = spec_store_reachability(log, self.metrics)
        self.specs = SpecStore(config.spec_stores, watch=self._spec_store_seen)
        self._probed = -float("inf")
        self.sender = TxSender(chain, account)
        self.tamper = tamper
        self.results = ResultStores(config.spec_stores)
        self.inputs = InputStore(config.spec_stores)
        # Chosen once (a GPU backend if one is usable): probing on every job cost more than
        # a small job's product.
        self.backend = select_backend()
        # The compiled Merkle kernels, loaded once here (~0.3 s from numba's cache): a 32-row
        # result's root then takes ~11 µs instead of ~64 µs one keccak call per hash.
        merkle_warm_up()
        self.server: WebServer | None = None
        self.api = WorkerApi(
            self.address, self.db, self.store, self.specs, self.metrics, inputs=self.inputs
        )
        # One commit thread: transactions leave in nonce order; _send_lock guards the sender
        # (nonces) against the loop's own register / withdraw / claim transactions.
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pouw-commit")
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._inflight: set[int] = set()
        self._last_claim = 0.0
        self._bond_checked = -float("inf")
        self._min_bond = 0
        # Jobs computed by this process whose commitment was never sent: committing them
        # needs no on-chain look-up (after a restart every computed job is looked up).
        self._fresh: set[int] = set()
        #: Commitments whose results this process delivered to the job stores, until committed.
        self._delivered: set[bytes] = set()
        # Jobs seen refunded or cancelled; the chain time of the last followed head.
        self._closed: set[int] = set()
        self._now = 0
        # Endpoint announcements: the URL, and per oracle the last success and last attempt.
        self._url: str | None = None
        self._announced: dict[str, float] = {}
        self._announce_tried: dict[str, float] = {}
        if self.db.checkpoint() is None:
            self.db.add_jobs([], chain.deployment.block - 1)

    # -- lifecycle -------------------------------------------------------------------------

    def start_server(self) -> str:
        """Serve results; announce the URL to every oracle. Returns the public URL."""
        self.server = WebServer(self.api.routes(), self.cfg.host, self.cfg.port).start()
        url = self.cfg.public_url or self.server.url
        self.announce(url)
        event(log, "listening", url=url, worker=self.address)
        return url

    def announce(self, url: str) -> None:
        """POST a signed endpoint announcement to every oracle now; those that fail (not up
        yet, say) are retried from :meth:`step` every ``announce_retry`` seconds, and every
        oracle hears it again every ``announce_interval`` seconds."""
        self._url = url
        self._announce(force=True)

    def _announce(self, force: bool = False) -> None:
        if self._url is None:
            return
        now = time.time()
        due = [
            o
            for o in self.cfg.oracle_urls
            if force
            or (
                o not in self._announced
                and now - self._announce_tried.get(o, 0.0) >= self.cfg.announce_retry
            )
            or (o in self._announced and now - self._announced[o] >= self.cfg.announce_interval)
        ]
        if not due:
            return
        body = make_announcement(
            self.account, self.chain.chain_id, self.chain.market.address, self._url, int(now * 1000)
        )
        for o in due:
            self._announce_tried[o] = now
            try:
                requests.post(f"{o.rstrip('/')}/workers", json=body, timeout=5).raise_for_status()
            except requests.RequestException as exc:
                self._announced.pop(o, None)
                event(log, "announce_failed", logging.WARNING, oracle=o, error=str(exc))
            else:
                self._announced[o] = now

    def _kill(self, point: str) -> None:
        if self.cfg.kill_at == point:
            event(log, "kill_point", point=point)
            os.kill(os.getpid(), signal.SIGKILL)

    def close(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.stop()
        self._committer.shutdown(wait=True)
        self.db.close()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set; one failing iteration is logged and retried. The spec
        stores are probed first, so a worker that cannot read any spec says so at start-up."""
        self.specs.probe()
        run_until_stopped(stop, self.step, self.cfg.poll_interval, self.metrics, log)

    def step(self, wait: bool = False) -> None:
        """Announce (when due), bond, follow, compute, commit, claim: one iteration
        (``wait``: until this iteration's commit is mined or failed)."""
        self._announce()
        self.ensure_bond()
        self.follow()
        self.compute_new()
        self.commit_computed(wait=wait)
        if time.time() - self._last_claim >= self.cfg.claim_interval:
            self._last_claim = time.time()
            self.release_stakes()
            self.claim()

    # -- steps -----------------------------------------------------------------------------

    def ensure_bond(self, force: bool = False) -> None:
        """Bond ``stake_slots × min_bond`` when the free bond cannot back one more submission
        and no committed job of this worker holds a stake that will come back (after a slash,
        or the first time); read at most every ``bond_check_interval`` seconds unless
        ``force`` (or a slash or failed commit since)."""
        now = time.monotonic()
        if not force and now - self._bond_checked < self.cfg.bond_check_interval:
            return
        self._bond_checked = now
        bond = int(self.chain.call("bonds", self.address))
        need = self._min_bond = int(self.chain.call("min_bond"))
        target = need * max(self.cfg.stake_slots, 1)
        if bond < need and not self.db.jobs("committed", limit=1) and bond < target:
            self._send(self.chain.market.functions.register(), value=target - bond)
            event(log, "bonded", amount=target - bond, slots=self.cfg.stake_slots)

    def follow(self) -> None:
        """Record new jobs and epochs with own verified work."""
        cp = self.db.checkpoint()
        assert cp is not None
        head = self.chain.head()
        if head <= cp:
            return
        jobs, epochs, settled, slashed, closed = [], [], [], [], []
        for e in self.chain.events(cp + 1, head, names=_FOLLOWED):
            if e.name == "JobCreated":
                jobs.append(e.args)
            elif e.name == "WorkRecorded" and e.args["worker"] == self.address:
                epochs.append(int(e.args["epoch"]))
            elif e.name in ("JobRefunded", "JobCancelled"):
                self._closed.add(int(e.args["job_id"]))
                closed.append(int(e.args["job_id"]))
            elif e.name == "JobSettled":
                settled.append((int(e.args["job_id"]), e.args["worker"] == self.address))
            elif e.name == "WorkerSlashed" and e.args["worker"] == self.address:
                self._bond_checked = -float("inf")  # re-read the bond next step
                slashed.append(int(e.args["job_id"]))
        self.db.add_jobs(jobs, head, epochs=epochs, settled=settled, slashed=slashed, closed=closed)
        self._now = self.chain.block_timestamp(head)

    def compute_new(self) -> None:
        """Compute acceptable new jobs (up to ``commit_batch`` per call); store every result
        (one durability barrier for the batch) and record (blob, root, commitment) in one
        transaction before anything is sent; then deliver the batch's results to the job
        stores (here, off the commit thread: committing waits on the chain meanwhile)."""
        batch = self.store.batch()
        computed: list[tuple[int, str, bytes, bytes]] = []
        payloads: list[StoredResult] = []
        try:
            self._compute_new(computed, batch, payloads)
        finally:
            try:
                batch.commit()  # a result counts once its blob is durable
            except OSError as exc:
                event(
                    log,
                    "store_failed",
                    logging.ERROR,
                    jobs=[c[0] for c in computed],
                    error=str(exc),
                )
                computed = []
            if computed:
                self.db.set_computed_many(computed)
                self._fresh.update(c[0] for c in computed)
                event(log, "computed", jobs=[c[0] for c in computed])
                self._kill("after_compute")
        if computed:
            self._deliver_results(payloads, [c[0] for c in computed])

    def _compute_new(
        self,
        computed: list[tuple[int, str, bytes, bytes]],
        batch: BlobBatch,
        payloads: list[StoredResult],
    ) -> None:
        # A window of the oldest due new jobs: those waiting for a retry are left out until
        # their time, so no number of them crowds the others out; those skipped or failing
        # leave room on later steps.
        self._probe_spec_store()
        new = self.db.jobs("new", limit=4 * self.cfg.commit_batch, due_by=time.time())
        if self.spec_store.up is not False:
            self.specs.prefetch([j["spec_hash"] for j in new])
        for job in new:
            if len(computed) >= self.cfg.commit_batch:
                return
            jid = job["job_id"]
            reason = closed_reason(job, self._closed, self._now, last_error=job["reason"])
            if reason is not None:
                self._skip(jid, reason)
                continue
            try:
                spec = self._spec(job["spec_hash"])
                reason = accept_reason(
                    job,
                    spec,
                    kinds=self.cfg.kinds,
                    max_work_units=self.cfg.max_work_units,
                    min_price_per_unit=self.cfg.min_price_per_unit,
                )
                if reason is not None:
                    self._skip(jid, reason)
                    continue
                t0 = time.perf_counter()
                result = compute(spec, self.backend, store=self.inputs)
            except Exception as exc:  # one job's failure never holds up the others
                self._failed(job, exc)
                continue
            self.metrics.observe("compute_seconds", time.perf_counter() - t0)
            self.metrics.inc("jobs_computed")
            if self.tamper is not None:
                result = self.tamper(jid, result)
            data = encode_result(result)
            try:
                blob = batch.add(data)
            except (OSError, BlobError) as exc:
                event(log, "store_failed", logging.ERROR, job=jid, error=str(exc))
                continue
            root = result_root(spec, result)
            c = commitment(self.address, root)
            computed.append((jid, blob, root, c))
            row_bytes = result.shape[1] * result.dtype.itemsize
            payloads.append(StoredResult(c, self.address, row_bytes, data))

    def _spec(self, spec_hash: bytes) -> Spec:
        """The job's spec; while the spec stores are down, only a cached one (no request per
        job: the probe finds out when they are back)."""
        if self.spec_store.up is False:
            spec = self.specs.cached(spec_hash)
            if spec is None:
                raise BlobTransferError("no spec store answers (probing until one does)")
            return spec
        return self.specs.get(spec_hash)

    def _skip(self, job_id: int, reason: str) -> None:
        """Set a job aside for good, with its reason."""
        self.db.set_state(job_id, "skipped", reason)
        self.metrics.inc("jobs_skipped")
        event(log, "job_skipped", job=job_id, reason=reason)

    def _failed(self, job: dict[str, Any], exc: Exception) -> None:
        """Apply :func:`~oracle.worker.decisions.after_failure`: skip the job, or let it wait."""
        jid = job["job_id"]
        decision = after_failure(
            exc,
            job["attempts"],
            time.time(),
            backoff=self.cfg.retry_backoff,
            max_backoff=self.cfg.max_retry_backoff,
        )
        if isinstance(decision, Skip):
            self._skip(jid, decision.reason)
            return
        n = self.db.retry_later(jid, decision.reason, decision.at)
        self.metrics.inc("job_retries")
        event(
            log,
            "job_retry",
            # A store that is down says so once (spec_store_down); its jobs' retries are detail.
            logging.INFO if decision.unreachable else logging.WARNING,
            job=jid,
            attempt=n,
            delay=decision.delay,
            reason=decision.reason,
        )

    def _spec_store_seen(self, up: bool, error: str) -> None:
        """What each round of spec store requests reports: log and gauge the changes; when the
        stores answer again, every job waiting for a retry is due now."""
        if transition(self.spec_store.up, up) is None:
            self.spec_store.observe(up)
            return
        change = self.spec_store.observe(
            up,
            stores=list(self.cfg.spec_stores),
            jobs_waiting=self.db.waiting(),
            **({"error": error} if error else {}),
        )
        if change == "up":
            self.db.release_waiting()

    def _probe_spec_store(self) -> None:
        """While no spec store answers, ask them every ``store_probe_interval`` seconds."""
        now = time.monotonic()
        if self.spec_store.up is False and now - self._probed >= self.cfg.store_probe_interval:
            self._probed = now
            self.specs.probe()

    def commit_computed(self, wait: bool = False) -> None:
        """Commit computed results in one transaction, skipping any already on-chain.

        The transaction is signed and broadcast, and its receipt awaited, on the commit
        thread, so the next batch computes meanwhile (``wait``: return only once it is
        settled, as tests and the last step before stopping want). Jobs in flight are left out
        of later batches; a failed commit returns them to the next one (looked up first)."""
        todo: list[dict[str, Any]] = []
        mined: list[int] = []
        lost: list[int] = []
        with self._lock:
            inflight = set(self._inflight)
        computed = self.db.jobs("computed", limit=4 * self.cfg.commit_batch)
        if not computed:
            return
        # Each commitment moves min_bond of the free bond into its stake: commit no more than
        # the free bond backs (the rest waits for stakes to come back with their payouts).
        slots = self.cfg.commit_batch
        if self._min_bond:
            slots = min(slots, int(self.chain.call("bonds", self.address)) // self._min_bond)
        if slots <= 0:
            self._bond_checked = -float("inf")
            return
        for job in computed:
            if len(todo) >= slots:
                break
            if job["job_id"] in inflight:
                continue
            if job["job_id"] in self._fresh and job["job_id"] not in self._closed:
                todo.append(job)  # computed by this process, never sent: nothing to look up
                continue
            onchain, _ = self.chain.submission(job["job_id"], self.address)
            if onchain == job["commitment"]:
                mined.append(job["job_id"])
            elif self.chain.job_status(job["job_id"]) != STATUS_OPEN:
                lost.append(job["job_id"])
            else:
                todo.append(job)
        if mined:
            self.db.set_states(mined, "committed")
        if lost:
            self.db.set_states(lost, "lost", "job closed before commit")
        if todo:
            ids = [j["job_id"] for j in todo]
            with self._lock:
                self._inflight.update(ids)
            self._fresh.difference_update(ids)  # sent (maybe) from here on
            done = self._committer.submit(self._commit, todo)
            if wait:
                done.result()

    def _deliver_results(self, results: list[StoredResult], jobs: list[int]) -> set[bytes]:
        """Put ``results`` in the job stores under their commitments; returns the commitments
        at least one store now holds (remembered: only those are committed)."""
        if not results:
            return set()
        t0 = time.perf_counter()
        held, errors = self.results.deliver(results)
        self.metrics.observe("deliver_seconds", time.perf_counter() - t0)
        for error in errors:
            event(log, "deliver_failed", logging.WARNING, error=error)
        missing = [j for j, r in zip(jobs, results, strict=True) if r.commitment not in held]
        if missing:
            event(log, "not_delivered", logging.WARNING, jobs=missing)
        self.metrics.inc("results_delivered", len(results) - len(missing))
        with self._lock:
            self._delivered.update(held)
        return held

    def _deliver(self, todo: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The jobs of ``todo`` whose results are in the job stores, delivering (from the
        local blob store) those not delivered by this process yet: after a restart, or a
        store that was down. A result not in a store by the reveal window is INVALID, so
        nothing else is committed; the rest stay computed and are tried again later."""
        with self._lock:
            missing = [j for j in todo if j["commitment"] not in self._delivered]
        results: list[StoredResult] = []
        jobs: list[int] = []
        for job in missing:
            try:
                shape, dtype = result_layout(self.specs.get(job["spec_hash"]))
                data = self.store.get(job["blob"])
            except Exception as exc:  # the spec store down, or the local blob gone
                event(log, "deliver_failed", logging.WARNING, job=job["job_id"], error=str(exc))
                continue
            results.append(
                StoredResult(job["commitment"], self.address, shape[1] * dtype.itemsize, data)
            )
            jobs.append(job["job_id"])
        self._deliver_results(results, jobs)
        with self._lock:
            return [j for j in todo if j["commitment"] in self._delivered]

    def _commit(self, todo: list[dict[str, Any]]) -> None:
        ids = [j["job_id"] for j in todo]
        try:
            todo = self._deliver(todo)
            if not todo:
                return
            fn = self.chain.market.functions.submit_results(
                [(j["job_id"], j["commitment"]) for j in todo]
            )
            with self._send_lock:
                sent = self.sender.sign(fn, gas=150_000 + 90_000 * len(todo))
                self._kill("after_commit_signed")
                self.sender.broadcast(sent.raw)
            self._kill("after_commit_broadcast")
            self.sender.wait(sent.tx_hash, decoded=False)
        except ChainError as exc:
            event(log, "commit_failed", logging.WARNING, error=str(exc))
            self._bond_checked = -float("inf")  # a slashed bond is one reason: re-read it
            with self._send_lock:
                self.sender.nonce = self.chain.w3.eth.get_transaction_count(self.address, "pending")
        except Exception as exc:  # on the commit thread: nobody else would see it
            event(log, "commit_failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
        else:
            done = [j["job_id"] for j in todo]
            self.db.set_states(done, "committed")
            with self._lock:
                self._delivered.difference_update(j["commitment"] for j in todo)
            event(log, "committed", jobs=done)
        finally:
            with self._lock:
                self._inflight.difference_update(ids)

    def _send(self, fn: Any, value: int = 0) -> Any:
        """Sign and broadcast under the sender lock (the commit thread sends too); wait."""
        with self._send_lock:
            sent = self.sender.sign(fn, value=value)
            self.sender.broadcast(sent.raw)
        return self.sender.wait(sent.tx_hash, decoded=False)

    def release_stakes(self) -> None:
        """Return to the bond the stakes of committed jobs that closed without paying this
        worker (paid to another, refunded, cancelled) or whose deadline passed unsettled."""
        ids = [
            j["job_id"]
            for j in self.db.jobs("committed", limit=4 * MAX_BATCH)
            if j["job_id"] in self._closed or j["reason"] == "closed" or j["deadline"] < self._now
        ]
        ids = [j for j in ids if self.chain.stake(j, self.address) > 0][:MAX_BATCH]
        if not ids:
            return
        try:
            self._send(self.chain.market.functions.release(ids))
        except ChainError as exc:
            event(log, "release_failed", logging.WARNING, error=str(exc))
            return
        self.db.set_states(ids, "lost", "stake released")
        event(log, "stakes_released", jobs=ids)

    def claim(self) -> None:
        """Withdraw credited ETH (escrow of batches finalized after their challenge window);
        claim every ended epoch with own work whose batches are all final."""
        credited = int(self.chain.call("credited", self.address, ZERO_ADDRESS))
        if credited > 0:
            self._send(self.chain.market.functions.withdraw(ZERO_ADDRESS))
            event(log, "withdrawn", amount=credited)
        current = int(self.chain.call("current_epoch"))
        now = self.chain.now()
        due = [
            e
            for e in self.db.pending_claims()
            if e < current and int(self.chain.call("epoch_final_at", e)) <= now
        ]
        if due:
            self._send(self.chain.market.functions.claim(due))
            self.db.set_claimed(due)
            event(log, "claimed", epochs=due)
