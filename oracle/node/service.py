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
   the loop: a malformed spec or a spec whose work units differ from the job's is *given up* (no
   attestation: the worker is not at fault, the requester is refunded after the deadline); an
   unreachable worker is retried with exponential backoff until the reveal window has passed
   on-chain, then INVALID; an oversized result, a served root that does not open the commitment, or
   a result that fails the check is INVALID with its reason.
3. **Settle** — unsettled verdicts (those the followed events have not closed) form
   batches (``batch_size`` items, or fewer once the oldest has waited ``max_wait``
   seconds). Leadership rotates by job id: the node at rank ``(index - job_id) mod n`` in
   the oracle set waits ``rank * takeover`` extra seconds, so normally one node proposes
   each item and others step in only if it is down. The proposer signs the batch and
   POSTs it to each peer's ``/sign``; a peer signs the sub-list of items that match its
   own recorded verdicts exactly and returns the signature. Any sub-list with
   ``threshold`` signatures (own included) is settled in one transaction; the transaction
   is stored before it is broadcast and re-broadcast after a restart. No item is re-read
   from the chain first: the contract skips a stale one with ``AttestationSkipped``, and
   the receipt marks it moot (one SQLite transaction per receipt).

Restart safety: the checkpoint advances in the same transaction as the events it covers;
a verdict is never replaced (:class:`~oracle.exceptions.VerdictConflict`), so every signature
this node ever gives over an item has the same content; a settle transaction is recorded with
its nonce before broadcast and, after a crash, the same bytes are re-broadcast (never a second
transaction for that nonce). The contract skips items already settled, so racing nodes can
waste at most the transaction that lost the race, never pay twice.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from oracle.chain.client import Chain, SentTx, TxSender, rpc_int
from oracle.compute.freivalds import jit_warm_up as freivalds_warm_up
from oracle.compute.merkle import jit_warm_up as merkle_warm_up
from oracle.compute.verify import check_full, check_sampled, prepare
from oracle.exceptions import (
    BlobError,
    BlobTooLarge,
    ChainError,
    PeerError,
    SpecError,
    VerdictConflict,
)
from oracle.infra.httpapi import ApiServer, Reply, Request, Route
from oracle.infra.logs import event
from oracle.node.db import KEEP_BLOCKS, OracleDB, StoredVerdict, Unsettled
from oracle.protocol.announce import verify_announcement
from oracle.protocol.attestation import (
    Attestation,
    CompactSignature,
    order_signatures,
    recover_signer,
    settlement_digest,
    sign_settlement,
)
from oracle.protocol.challenge import challenge_block, challenge_seed
from oracle.protocol.commitment import commitment
from oracle.protocol.results import MAX_ANSWER_BYTES, result_layout
from oracle.protocol.spec import Spec, work_units
from oracle.protocol.verdict import Verdict, VerdictCode, VerdictKey, submission_invalid
from oracle.store.blobs import HttpBlobClient, post_for_bundle
from oracle.store.specs import SpecStore

__all__ = ["KILL_POINTS", "OracleConfig", "OracleNode"]

log = logging.getLogger("pouw.oracle")

#: Where a test may ask the node to SIGKILL itself (``OracleConfig.kill_at``).
KILL_POINTS = ("after_verdict", "after_sign", "after_tx_signed", "after_broadcast")
#: Jobs below this many work units prepare their seed-only part inline: for them a thread
#: handoff costs more than the overlap with the fetch saves.
INLINE_PREPARE_UNITS = 1 << 24
#: Bundled results up to this size are checked on the loop's thread, not the pool's.
INLINE_CHECK_BYTES = 64 << 10
#: Bundled fetches (``POST /results`` on a worker): full-mode results up to this size travel in
#: bundles of at most ``BUNDLE_BYTES`` payload bytes; larger ones are fetched one by one.
BUNDLE_ITEM_BYTES = 4 << 20
BUNDLE_BYTES = 32 << 20
#: What a sampled-mode answer may take in a bundle (a larger one makes the bundle fail and the
#: answers are fetched one by one, up to ``MAX_ANSWER_BYTES`` each).
BUNDLE_ANSWER_BYTES = 2 << 20
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
#: The one event ``settle`` logs per attestation, and the mark it gives the item.
_ITEM_MARKS = {"JobSettled": "settled", "WorkerSlashed": "slashed", "AttestationSkipped": "moot"}


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
    kill_at: str | None = None


#: The market events the node records (:meth:`OracleDB.record_range`); the rest are not read.
_FOLLOWED = (
    "JobCreated",
    "ResultSubmitted",
    "JobSettled",
    "WorkerSlashed",
    "JobRefunded",
    "JobCancelled",
)


class OracleNode:
    """One oracle node; :meth:`step` runs one loop iteration, :meth:`run` loops until stopped."""

    def __init__(self, config: OracleConfig, chain: Chain, account: LocalAccount) -> None:
        self.cfg = config
        self.chain = chain
        self.account = account
        self.db = OracleDB(config.db_path)
        self.specs = SpecStore(config.spec_stores)
        self.metrics: Counter[str] = Counter()
        self.oracles = sorted(
            (to_checksum_address(o) for o in chain.call("oracles")), key=lambda a: int(a, 16)
        )
        self.threshold = int(chain.call("threshold"))
        self.reveal_window = int(chain.call("reveal_window"))
        if account.address not in self.oracles:
            raise ChainError(f"{account.address} is not in the market's oracle set")
        self.index = self.oracles.index(account.address)
        self.sender = TxSender(
            chain, account, on_signed=self._on_signed, next_nonce=self.db.next_nonce()
        )
        self._pending_digest: bytes | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, config.verify_threads), thread_name_prefix="pouw-prepare"
        )
        self._verify_pool = ThreadPoolExecutor(
            max_workers=config.verify_threads, thread_name_prefix="pouw-verify"
        )
        self._metrics_lock = threading.Lock()
        self._cooldown: dict[bytes, float] = {}
        # Hashes of confirmed blocks (number <= self._confirmed), read once each; emptied when
        # a deep reorg is detected. See :meth:`confirmed_hash`.
        self._hashes: dict[int, bytes] = {}
        self._confirmed = -1
        self._http = requests.Session()
        self.server: ApiServer | None = None
        for addr, url in config.worker_urls.items():
            self.db.set_worker_url(to_checksum_address(addr), url.rstrip("/"), 0)
        if self.db.checkpoint() is None:
            self.db.rewind(chain.deployment.block - 1)
        # Load (or compile into the on-disk cache) the verifier's kernels now, at start-up,
        # rather than on the first job's clock.
        freivalds_warm_up()
        merkle_warm_up()

    # -- lifecycle -------------------------------------------------------------------------

    def start_server(self) -> str:
        """Serve /sign, /workers, /metrics and /health; returns the base URL."""
        routes: list[Route] = [
            ("POST", r"/sign", self._handle_sign),
            ("POST", r"/workers", self._handle_announce),
            ("GET", r"/metrics", self._handle_metrics),
            ("GET", r"/health", lambda _r: (200, "text/plain", b"ok\n")),
        ]
        self.server = ApiServer(routes, self.cfg.host, self.cfg.port).start()
        event(log, "listening", url=self.server.url, oracle=self.account.address)
        return self.server.url

    def close(self) -> None:
        """Stop the HTTP server and the helper threads."""
        if self.server is not None:
            self.server.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._verify_pool.shutdown(wait=False, cancel_futures=True)
        self.db.close()

    def run(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set: follow and verify on this thread, settle on a second
        one (a settle transaction's round trips never hold up verification, nor the other
        way round); an error in one iteration is logged and retried."""
        self.resume_transactions()
        settler = threading.Thread(
            target=self._loop, args=(stop, self.settle_backlog), name="pouw-settle", daemon=True
        )
        settler.start()
        try:
            self._loop(stop, lambda: self.verify_due(self.follow()))
        finally:
            settler.join(timeout=30)

    def _loop(self, stop: threading.Event, body: Callable[[], object]) -> None:
        while not stop.is_set():
            try:
                body()
            except Exception as exc:  # the loop must go on; the cause is logged
                self.metrics["loop_errors"] += 1
                event(log, "loop_error", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            stop.wait(self.cfg.poll_interval)

    def step(self) -> None:
        """Follow, verify, settle: one iteration (what :meth:`run` does on two threads)."""
        self.verify_due(self.follow())
        self.settle_backlog()

    def settle_backlog(self, max_batches: int = 8) -> int:
        """Settle ready batches until none is left (at most ``max_batches``): a backlog of
        full batches goes out now, not one per iteration. Returns the items settled."""
        total = 0
        for _ in range(max_batches):
            settled = self.settle_ready()
            if settled == 0:
                break
            total += settled
        return total

    def _kill(self, point: str) -> None:
        if self.cfg.kill_at == point:
            event(log, "kill_point", point=point)
            os.kill(os.getpid(), signal.SIGKILL)

    # -- 1. follow -------------------------------------------------------------------------

    def follow(self, max_range: int = 2_000) -> int:
        """Record events up to the confirmed head; returns the confirmed head."""
        safe = self.chain.safe_head(self.cfg.confirmations)
        self._check_reorg()
        cp = self.db.checkpoint()
        assert cp is not None
        while cp < safe:
            to = min(safe, cp + max_range)
            evs = self.chain.events(cp + 1, to, names=_FOLLOWED)
            for e in evs:
                if e.name == "JobCreated":
                    e.args["_block"] = e.block_number
            self.db.record_range(to, self.chain.block_hash(to), [(e.name, e.args) for e in evs])
            self.metrics["events"] += len(evs)
            self.metrics["jobs_seen"] += sum(e.name == "JobCreated" for e in evs)
            self.metrics["submissions_seen"] += sum(e.name == "ResultSubmitted" for e in evs)
            cp = to
        self.metrics["checkpoint"] = cp
        self._confirmed = min(safe, cp)
        return safe

    def confirmed_hash(self, number: int) -> bytes:
        """The hash of a confirmed block (at or below the checkpoint the last :meth:`follow`
        reached, so at or below ``head - confirmations``), read from the chain once.

        Safe to reuse: a reorg that changes a block at or below the checkpoint changes the
        checkpoint's own hash, which :meth:`_check_reorg` compares with the chain at the start
        of every follow, before anything is verified; it empties this cache. A block above the
        confirmed head is refused (ChainError), never cached.
        """
        if number > self._confirmed:
            raise ChainError(f"block {number} is above the confirmed head {self._confirmed}")
        h = self._hashes.get(number)
        if h is None:
            h = self.chain.block_hash(number)
            if len(self._hashes) >= KEEP_BLOCKS:
                self._hashes.pop(min(self._hashes))
            self._hashes[number] = h
        return h

    def _check_reorg(self) -> None:
        cp = self.db.checkpoint()
        if cp is None or cp < 0:
            return
        recorded = self.db.block_hash(cp)
        try:
            if recorded is None or recorded == self.chain.block_hash(cp):
                return
        except ChainError:
            pass  # the checkpoint block is gone: the chain was cut below it
        self._hashes.clear()
        self._confirmed = -1
        # The fork point is the newest kept block whose recorded hash the chain still has (a
        # block's hash fixes every block below it); blocks whose hash was never recorded
        # prove nothing. None kept matches: re-read everything since the deployment.
        fork = self.chain.deployment.block - 1
        for number, recorded_hash in self.db.recorded_blocks(below=cp):
            try:
                same = recorded_hash == self.chain.block_hash(number)
            except ChainError:
                same = False  # the chain is now shorter than that block
            if same:
                fork = number
                break
        self.metrics["deep_reorgs"] += 1
        event(log, "deep_reorg", logging.ERROR, checkpoint=cp, fork_point=fork)
        for v in self.db.orphan_verdicts_after(fork):
            if self.chain.block_hash(v.challenge_block) != v.challenge_hash:
                self.db.orphan(v)
                event(
                    log, "verdict_orphaned", logging.WARNING, job=v.key.job_id, worker=v.key.worker
                )
        self.db.rewind(fork)

    # -- 2. verify -------------------------------------------------------------------------

    def verify_due(self, safe: int) -> None:
        """Decide every pending submission whose challenge block is confirmed.

        Submissions are verified ``verify_threads`` at a time, ``batch_size`` per chunk; each
        chunk's verdicts are recorded in one transaction (nothing is signed before that, so a
        crash in between only means deriving the same verdicts again).
        """
        due = self.db.due_submissions(safe)
        # A settle batch at a time: each chunk's verdicts are recorded (and can be settled by
        # the settle thread) while the next chunk is fetched and checked.
        step = max(1, self.cfg.batch_size)
        for lo in range(0, len(due), step):
            self._verify_chunk(due[lo : lo + step])

    def _verify_chunk(self, due: list[dict[str, Any]]) -> None:
        served = self._fetch_bundles(due)

        def one(sub: dict[str, Any]) -> tuple[VerdictKey, StoredVerdict | None, str | None]:
            try:
                key = sub["key"]
                return key, self.decide(key, sub["block_number"], served.get(key)), None
            except Exception as exc:  # bad input never stops the loop
                return sub["key"], None, f"{type(exc).__name__}: {exc}"

        decided = []
        # Results in hand (bundled) of small jobs are checked on this thread: for them the
        # pool's handoffs cost more than its parallelism gains. The rest (fetches, big checks)
        # run on the pool.
        inline = [
            sub
            for sub in due
            if sub["key"] in served and len(served[sub["key"]][1]) <= INLINE_CHECK_BYTES
        ]
        pooled = [
            sub
            for sub in due
            if not (sub["key"] in served and len(served[sub["key"]][1]) <= INLINE_CHECK_BYTES)
        ]
        results = [
            *map(one, inline),
            *(self._verify_pool.map(one, pooled) if len(pooled) > 1 else map(one, pooled)),
        ]
        for key, stored, error in results:
            if error is not None:
                self._retry(key, error)
            elif stored is not None:
                decided.append(stored)
        self._record(decided)

    def _record(self, decided: list[StoredVerdict]) -> None:
        if not decided:
            return
        try:
            self.db.record_verdicts(decided)
        except VerdictConflict:
            kept = []
            for v in decided:
                try:
                    self.db.record_verdict(v)
                    kept.append(v)
                except VerdictConflict as exc:
                    self._retry(v.key, f"VerdictConflict: {exc}")
            decided = kept
        for v in decided:
            name = VerdictCode(v.verdict).name
            self.metrics[f"verdicts_{name.lower()}"] += 1
            event(
                log,
                "verdict",
                job=v.key.job_id,
                worker=v.key.worker,
                verdict=name,
                reason=v.reason,
                transcript_hash=v.transcript_hash,
            )
        self._kill("after_verdict")

    def _retry(self, key: VerdictKey, error: str) -> None:
        state = self.db.submission_state(key)
        attempts = state[1] if state else 0
        delay = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempts)
        n = self.db.retry_later(key, error, delay)
        self.metrics["retries"] += 1
        if n >= self.cfg.max_attempts:
            self.db.give_up(key, error)
            self.metrics["gave_up"] += 1
            event(log, "gave_up", logging.WARNING, job=key.job_id, worker=key.worker, error=error)
        else:
            event(
                log, "retry", job=key.job_id, worker=key.worker, attempt=n, delay=delay, error=error
            )

    def _fetch_bundles(self, due: list[dict[str, Any]]) -> dict[VerdictKey, tuple[bytes, bytes]]:
        """Fetch the served results of due submissions from their workers in bundles
        (``POST /results``, one round trip per worker and up to ``bundle_items`` items):
        ``{key: (root, payload)}``. Only a transport: whatever is missing here (a worker
        without the endpoint, an item it did not serve, a large result, any error) is fetched
        by :meth:`decide` one by one, and every payload is checked exactly as if it had come
        alone."""
        jobs = {sub["key"].job_id: self.db.job(sub["key"].job_id) for sub in due}
        self.specs.prefetch([j["spec_hash"] for j in jobs.values() if j is not None])
        groups: dict[str, list[tuple[VerdictKey, dict[str, Any], int]]] = {}
        for sub in due:
            key = sub["key"]
            try:
                url = self.db.worker_url(key.worker)
                job = jobs[key.job_id]
                if url is None or job is None:
                    continue
                spec = self.specs.get(job["spec_hash"])
                item: dict[str, Any] = {
                    "job_id": key.job_id,
                    "commitment": "0x" + key.commitment.hex(),
                }
                cost = BUNDLE_ANSWER_BYTES
                if spec.mode == "sampled":
                    seed = challenge_seed(
                        self.confirmed_hash(challenge_block(sub["block_number"])),
                        key.job_id,
                        key.worker,
                    )
                    item["seed"] = "0x" + seed.hex()
                else:
                    shape, dtype = result_layout(spec)
                    cost = shape[0] * shape[1] * dtype.itemsize
                    if cost > BUNDLE_ITEM_BYTES:
                        continue
            except Exception:  # decide() meets the same problem and records it
                continue
            groups.setdefault(url, []).append((key, item, cost))
        chunks: list[tuple[str, list[tuple[VerdictKey, dict[str, Any], int]]]] = []
        for url, entries in groups.items():
            parts: list[list[tuple[VerdictKey, dict[str, Any], int]]] = [[]]
            size = 0
            for entry in entries:
                if parts[-1] and (
                    len(parts[-1]) >= self.cfg.bundle_items or size + entry[2] > BUNDLE_BYTES
                ):
                    parts.append([])
                    size = 0
                parts[-1].append(entry)
                size += entry[2]
            chunks += [(url, part) for part in parts if len(part) > 1]  # one item: no bundle
        served: dict[VerdictKey, tuple[bytes, bytes]] = {}
        if chunks:
            for got in self._verify_pool.map(lambda c: self._fetch_bundle(*c), chunks):
                served.update(got)
        return served

    def _fetch_bundle(
        self, url: str, part: list[tuple[VerdictKey, dict[str, Any], int]]
    ) -> dict[VerdictKey, tuple[bytes, bytes]]:
        limit = sum(cost for *_, cost in part) + (1 << 20)
        try:
            entries = post_for_bundle(
                self._http,
                f"{url}/results",
                {"items": [item for _, item, _ in part]},
                limit=limit,
                timeout=self.cfg.fetch_timeout,
            )
        except PeerError as exc:
            self.metrics["bundle_errors"] += 1
            event(log, "bundle_failed", logging.WARNING, worker_url=url, error=str(exc))
            return {}
        out: dict[VerdictKey, tuple[bytes, bytes]] = {}
        wanted = {(k.job_id, "0x" + k.commitment.hex()): k for k, _, _ in part}
        for fields, payload in entries:
            key = wanted.get((fields.get("job_id"), fields.get("commitment")))
            if key is None or "error" in fields or not isinstance(fields.get("root"), str):
                continue
            try:
                out[key] = (bytes.fromhex(fields["root"].removeprefix("0x")), payload)
            except ValueError:
                continue
        self.metrics["bundles"] += 1
        return out

    def decide(
        self, key: VerdictKey, submission_block: int, served: tuple[bytes, bytes] | None = None
    ) -> StoredVerdict | None:
        """Verify one submission; returns the verdict to record (None: a retry or a give-up
        was recorded instead). ``served`` is ``(root, payload)`` if a bundle brought them."""
        job = self.db.job(key.job_id)
        if job is None:
            raise ChainError(f"job {key.job_id} not recorded yet")
        try:
            spec = self.specs.get(job["spec_hash"])
        except SpecError as exc:
            self.db.give_up(key, f"malformed spec: {exc}")
            self.metrics["gave_up"] += 1
            event(log, "gave_up", logging.WARNING, job=key.job_id, reason=f"bad spec: {exc}")
            return None
        if work_units(spec) != job["work_units"]:
            self.db.give_up(key, "spec work units differ from the job's")
            self.metrics["gave_up"] += 1
            return None
        cb = challenge_block(submission_block)
        cb_hash = self.confirmed_hash(cb)
        seed = challenge_seed(cb_hash, key.job_id, key.worker)
        prepared_f: Future[Any] = Future()
        if job["work_units"] < INLINE_PREPARE_UNITS:
            prepared_f.set_result(prepare(spec, seed))  # cheaper than a thread handoff
        else:
            prepared_f = self._pool.submit(prepare, spec, seed)
        try:
            if served is not None:
                verdict = self._check_served(key, spec, seed, prepared_f.result, *served)
            else:
                verdict = self._fetch_and_check(
                    key, spec, seed, prepared_f.result, submission_block
                )
        finally:
            prepared_f.cancel()
        if verdict is None:
            return None
        return StoredVerdict(
            key=key,
            seed=seed,
            challenge_block=cb,
            challenge_hash=cb_hash,
            work_units=job["work_units"],
            verdict=int(verdict.verdict),
            reason=verdict.reason,
            transcript=verdict.transcript,
            transcript_hash=verdict.transcript_hash,
        )

    def _invalid(self, spec: Spec, seed: bytes, key: VerdictKey, reason: str) -> Verdict:
        return submission_invalid(spec, seed, key, reason)

    def _check_served(
        self,
        key: VerdictKey,
        spec: Spec,
        seed: bytes,
        prepared: Callable[[], Any],
        root: bytes,
        payload: bytes,
    ) -> Verdict:
        """Check a served result (from a bundle or from :meth:`_fetch_and_check`): its root
        must open the commitment, its size fit the job, its content pass the check."""
        if len(root) != 32 or commitment(key.worker, root) != key.commitment:
            return self._invalid(spec, seed, key, "served root does not open the commitment")
        if spec.mode == "sampled":
            if len(payload) > MAX_ANSWER_BYTES:
                return self._invalid(spec, seed, key, "challenge answer oversized")
            return self._timed_check(lambda: check_sampled(prepared(), payload, root))
        shape, dtype = result_layout(spec)
        size = shape[0] * shape[1] * dtype.itemsize
        if len(payload) > size:
            return self._invalid(spec, seed, key, f"result oversized (limit {size} bytes)")
        return self._timed_check(lambda: check_full(prepared(), payload, expected_root=root))

    def _fetch_and_check(
        self,
        key: VerdictKey,
        spec: Spec,
        seed: bytes,
        prepared: Callable[[], Any],
        submission_block: int,
    ) -> Verdict | None:
        url = self.db.worker_url(key.worker)
        try:
            if url is None:
                raise PeerError(f"no endpoint known for worker {key.worker}")
            base = f"{url}/results/{key.job_id}/{key.worker}/0x{key.commitment.hex()}"
            resp = self._http.get(base, timeout=self.cfg.fetch_timeout)
            if resp.status_code != HTTPStatus.OK:
                raise PeerError(f"GET {base}: HTTP {resp.status_code}")
            manifest = resp.json()
            root = bytes.fromhex(str(manifest["root"]).removeprefix("0x"))
            if len(root) != 32 or commitment(key.worker, root) != key.commitment:
                return self._invalid(spec, seed, key, "served root does not open the commitment")
            if spec.mode == "sampled":
                resp = self._http.get(
                    f"{base}/answer",
                    params={"seed": "0x" + seed.hex()},
                    timeout=self.cfg.fetch_timeout,
                )
                if resp.status_code != HTTPStatus.OK:
                    raise PeerError(f"GET answer: HTTP {resp.status_code}")
                payload = resp.content
            else:
                shape, dtype = result_layout(spec)
                size = shape[0] * shape[1] * dtype.itemsize
                client = HttpBlobClient(
                    url,
                    max_size=size,
                    connect_timeout=self.cfg.fetch_timeout,
                    read_timeout=self.cfg.fetch_timeout,
                    session=self._http,
                )
                try:  # the root check below binds the content: no second hash of it
                    payload = client.get(str(manifest["blob"]), check_hash=False)
                except BlobTooLarge:
                    return self._invalid(spec, seed, key, f"result oversized (limit {size} bytes)")
            return self._check_served(key, spec, seed, prepared, root, payload)
        except (
            requests.RequestException,
            PeerError,
            BlobError,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            self.metrics["fetch_errors"] += 1
            if self._reveal_window_over(submission_block):
                return self._invalid(spec, seed, key, "result not served within the reveal window")
            self._retry_fetch(key, f"{type(exc).__name__}: {exc}")
            return None

    def _timed_check(self, check: Callable[[], Verdict]) -> Verdict:
        # "verify" seconds: from holding the result to the verdict (a wait for the seed-only
        # preparation still running on the helper thread included), as DESIGN.md counts them.
        t0 = time.perf_counter()
        verdict = check()
        with self._metrics_lock:
            self.metrics["verify_seconds"] += time.perf_counter() - t0
            self.metrics["verify_checks"] += 1
        return verdict

    def _retry_fetch(self, key: VerdictKey, error: str) -> None:
        # Before the reveal window ends a worker may still serve: back off, never give up.
        state = self.db.submission_state(key)
        attempts = state[1] if state else 0
        delay = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempts)
        self.db.retry_later(key, error, delay)
        event(log, "fetch_retry", job=key.job_id, worker=key.worker, delay=delay, error=error)

    def _reveal_window_over(self, submission_block: int) -> bool:
        submitted = self.chain.block_timestamp(submission_block)
        now = self.chain.block_timestamp(self.chain.head())
        return now > submitted + self.reveal_window

    # -- 3. settle -------------------------------------------------------------------------

    def _rank(self, job_id: int) -> int:
        return (self.index - job_id) % len(self.oracles)

    def _attestation(self, v: StoredVerdict | Unsettled) -> Attestation:
        return Attestation(
            v.key.job_id, v.key.worker, v.key.commitment, v.work_units, v.verdict, v.transcript_hash
        )

    def settle_ready(self, now: float | None = None) -> int:
        """Propose and settle one batch if one is due; returns the number of items settled."""
        now = time.time() if now is None else now
        due = self.db.unsettled(
            limit=4 * self.cfg.batch_size,
            now=now,
            due_for=(self.index, len(self.oracles), self.cfg.takeover),
        )
        if not due:
            return 0
        # A partial batch goes once its oldest item has waited max_wait past its due time.
        oldest = max(now - v.decided_at - self._rank(v.key.job_id) * self.cfg.takeover for v in due)
        if len(due) < self.cfg.batch_size and oldest < self.cfg.max_wait:
            return 0
        # No per-item chain reads here: verdicts whose submission was settled, slashed,
        # refunded or cancelled are marked by the followed events (:meth:`follow`), and an item
        # that went stale since is skipped by the contract with ``AttestationSkipped``, which
        # :meth:`_apply_receipt` marks moot — the same test the contract applies, at the moment
        # that counts.
        items = sorted(due, key=lambda v: (v.key.job_id, v.key.worker))[: self.cfg.batch_size]
        batch = [self._attestation(v) for v in items]
        digest = settlement_digest(self.chain.chain_id, self.chain.market.address, batch)
        if self._cooldown.get(digest, 0) > now:
            return 0
        chosen, sigs = self._collect(batch)
        if chosen is None:
            self._cooldown[digest] = now + self.cfg.max_wait
            return 0
        self._kill("after_sign")
        return self._send_settle(chosen, sigs)

    def _sign_own(self, batch: list[Attestation], role: str) -> CompactSignature:
        digest = settlement_digest(self.chain.chain_id, self.chain.market.address, batch)
        sig = sign_settlement(self.account, self.chain.chain_id, self.chain.market.address, batch)
        keys = [VerdictKey(a.job_id, a.worker, a.commitment) for a in batch]
        self.db.record_signed(digest, keys, role, sig.signer, sig.r, sig.vs)
        self.metrics["signatures_given"] += 1
        return sig

    def _collect(
        self, batch: list[Attestation]
    ) -> tuple[list[Attestation] | None, list[CompactSignature]]:
        """Gather ``threshold`` signatures over the batch or a sub-list of it."""
        own = self._sign_own(batch, "proposer")
        if self.threshold <= 1:
            return batch, [own]
        groups: dict[tuple[int, ...], list[CompactSignature]] = {}
        body = json.dumps({"items": [_att_json(a) for a in batch]}).encode()
        whole = tuple(range(len(batch)))
        # Peers in turn, starting at one that rotates with the batch (no peer signs every
        # batch), until threshold - 1 of them agree on the whole batch: signatures beyond the
        # threshold cost the peers' CPU and add nothing on-chain.
        peers = self.cfg.peers
        start = batch[0].job_id % len(peers) if peers else 0
        for peer in peers[start:] + peers[:start]:
            got = self._ask_peer(peer, body, batch)
            if got is not None:
                groups.setdefault(got[0], []).append(got[1])
                if len(groups.get(whole, ())) + 1 >= self.threshold:
                    break
        best: tuple[int, ...] | None = None
        for idx, sigs in groups.items():
            if idx and len(sigs) + 1 >= self.threshold and (best is None or len(idx) > len(best)):
                best = idx
        if best is None:
            return None, []
        sub = [batch[i] for i in best]
        mine = own if len(sub) == len(batch) else self._sign_own(sub, "proposer")
        sigs = order_signatures([mine, *groups[best]])[: max(self.threshold, 1)]
        return sub, order_signatures(sigs)

    def _ask_peer(
        self, peer: str, body: bytes, batch: list[Attestation]
    ) -> tuple[tuple[int, ...], CompactSignature] | None:
        try:
            resp = self._http.post(
                f"{peer.rstrip('/')}/sign",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.cfg.fetch_timeout,
            )
            if resp.status_code != HTTPStatus.OK:
                raise PeerError(f"HTTP {resp.status_code}")
            data = resp.json()
            idx = tuple(int(i) for i in data["agreed"])
            if not idx:
                return None
            if any(not 0 <= i < len(batch) for i in idx) or list(idx) != sorted(set(idx)):
                raise PeerError("bad agreed index list")
            sig = CompactSignature(
                to_checksum_address(data["signer"]), int(data["r"], 16), int(data["vs"], 16)
            )
            sub = [batch[i] for i in idx]
            signer = recover_signer(self.chain.chain_id, self.chain.market.address, sub, sig)
            if signer != sig.signer or signer not in self.oracles or signer == self.account.address:
                raise PeerError(f"signature recovers to {signer}, not an eligible peer")
            digest = settlement_digest(self.chain.chain_id, self.chain.market.address, sub)
            self.db.record_signed(
                digest,
                [VerdictKey(a.job_id, a.worker, a.commitment) for a in sub],
                "collected",
                sig.signer,
                sig.r,
                sig.vs,
            )
            return idx, sig
        except (requests.RequestException, PeerError, ValueError, KeyError, TypeError) as exc:
            self.metrics["peer_errors"] += 1
            event(log, "peer_error", logging.WARNING, peer=peer, error=str(exc))
            return None

    def _on_signed(self, sent: SentTx, label: str) -> None:
        self.db.record_tx(sent.nonce, sent.tx_hash, sent.raw, label, self._pending_digest)
        self._kill("after_tx_signed")

    def _send_settle(self, batch: list[Attestation], sigs: list[CompactSignature]) -> int:
        if not batch or len(sigs) < max(self.threshold, 1):
            return 0
        digest = settlement_digest(self.chain.chain_id, self.chain.market.address, batch)
        fn = self.chain.market.functions.settle(
            [a.as_tuple() for a in batch], [s.as_tuple() for s in sigs]
        )
        self._pending_digest = digest
        try:
            sent = self.sender.sign(fn, gas=400_000 + 60_000 * len(batch))
            self._on_signed(sent, "settle")
            self.sender.broadcast(sent.raw)
            self._kill("after_broadcast")
            rcpt = self.sender.wait(sent.tx_hash, decoded=False)
        except ChainError as exc:
            self.metrics["settle_failures"] += 1
            event(log, "settle_failed", logging.WARNING, error=str(exc))
            return 0
        finally:
            self._pending_digest = None
        return self._apply_receipt(sent.tx_hash, rcpt, digest)

    def _apply_receipt(self, tx_hash: bytes, rcpt: Any, digest: bytes | None) -> int:
        """Record a mined settle transaction and the fate of each of its items, in one
        SQLite transaction.

        The contract logs exactly one of ``JobSettled``, ``WorkerSlashed`` or
        ``AttestationSkipped`` per attestation, in batch order, so the i-th such log is the
        i-th item of the batch recorded under ``digest``: settled, slashed, or moot (a VALID
        item whose job is no longer open, an item that is not the worker's live submission,
        or one whose work units differ: none of these can become settleable again).
        """
        evs = self.chain.receipt_events(rcpt, tuple(_ITEM_MARKS))
        items = self.db.batch_items(digest) if digest is not None else None
        marks: list[tuple[VerdictKey, str]] = []
        if (
            items is not None
            and len(items) == len(evs)
            and all(
                (k.job_id, k.worker)
                == (int(e.args["job_id"]), to_checksum_address(e.args["worker"]))
                for k, e in zip(items, evs, strict=True)
            )
        ):
            marks = [(k, _ITEM_MARKS[e.name]) for k, e in zip(items, evs, strict=True)]
        else:  # no recorded batch to line up with: mark by (job, worker) and verdict
            for e in evs:
                worker = to_checksum_address(e.args["worker"])
                for v in self.db.verdicts_for_job(int(e.args["job_id"])):
                    if v.key.worker != worker:
                        continue
                    if (e.name == "JobSettled" and v.verdict == VerdictCode.VALID) or (
                        e.name == "WorkerSlashed" and v.verdict == VerdictCode.INVALID
                    ):
                        marks.append((v.key, _ITEM_MARKS[e.name]))
        settled = sum(e.name != "AttestationSkipped" for e in evs)
        skipped = len(evs) - settled
        self.db.apply_settlement(
            tx_hash, "mined" if rpc_int(rcpt["status"]) == 1 else "failed", digest, marks
        )
        self.metrics["settle_txs"] += 1
        self.metrics["items_settled"] += settled
        self.metrics["items_skipped"] += skipped
        gas = rpc_int(rcpt["gasUsed"])
        self.metrics["gas_used"] += gas
        event(log, "settled", tx=tx_hash, settled=settled, skipped=skipped, gas=gas)
        return settled

    def resume_transactions(self) -> None:
        """After a restart: settle the fate of every transaction signed but not known mined.

        A mined one is applied; a missing one is re-broadcast with the same bytes and nonce.
        """
        for tx in self.db.txs("signed"):
            rcpt = self.sender.receipt(tx["tx_hash"])
            if rcpt is None:
                event(log, "rebroadcast", nonce=tx["nonce"], tx=tx["tx_hash"])
                self.sender.broadcast(tx["raw"])
                try:
                    rcpt = self.sender.wait(tx["tx_hash"])
                except ChainError as exc:
                    event(log, "rebroadcast_failed", logging.WARNING, error=str(exc))
                    self.db.set_tx_state(tx["tx_hash"], "failed")
                    continue
            self._apply_receipt(tx["tx_hash"], rcpt, tx["digest"])

    # -- HTTP ------------------------------------------------------------------------------

    def _handle_sign(self, req: Request) -> Reply:
        """A peer's proposal: sign the sub-list of items matching this node's own verdicts."""
        try:
            items = [_att_from_json(x) for x in json.loads(req.body)["items"]]
        except (ValueError, KeyError, TypeError) as exc:
            return 400, "text/plain", f"bad proposal: {exc}\n".encode()
        if not 0 < len(items) <= 128:
            return 400, "text/plain", b"bad proposal: 1 to 128 items\n"
        agreed = []
        for i, a in enumerate(items):
            v = self.db.verdict(VerdictKey(a.job_id, a.worker, a.commitment))
            if v is not None and self._attestation(v) == a:
                agreed.append(i)
        if not agreed:
            return 200, "application/json", json.dumps({"agreed": []}).encode()
        sig = self._sign_own([items[i] for i in agreed], "peer")
        body = {"agreed": agreed, "signer": sig.signer, "r": hex(sig.r), "vs": hex(sig.vs)}
        return 200, "application/json", json.dumps(body).encode()

    def _handle_announce(self, req: Request) -> Reply:
        try:
            worker, url, ts = verify_announcement(
                req.body, self.chain.chain_id, self.chain.market.address
            )
        except PeerError as exc:
            return 400, "text/plain", f"{exc}\n".encode()
        self.db.set_worker_url(worker, url, ts)
        event(log, "worker_announced", worker=worker, url=url)
        return 200, "text/plain", b"ok\n"

    def _handle_metrics(self, _req: Request) -> Reply:
        """Prometheus text format: this process's counters (``…_total``), the followed
        checkpoint, and the durable state's row counts (``pouw_oracle_db_…``, kept across
        restarts)."""
        lines = []
        counters = dict(self.metrics)
        counters.pop("checkpoint", None)
        checkpoint = self.db.checkpoint()
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
        for name, value in sorted(self.db.counts().items()):
            metric = f"pouw_oracle_db_{name}"
            lines += [
                f"# HELP {metric} rows in the node's SQLite state: {name.replace('_', ' ')}",
                f"# TYPE {metric} gauge",
                f"{metric} {value}",
            ]
        return 200, "text/plain; version=0.0.4", ("\n".join(lines) + "\n").encode()


def _att_json(a: Attestation) -> dict[str, Any]:
    return {
        "job_id": a.job_id,
        "worker": a.worker,
        "commitment": "0x" + a.commitment.hex(),
        "work_units": a.work_units,
        "verdict": int(a.verdict),
        "transcript_hash": "0x" + a.transcript_hash.hex(),
    }


def _att_from_json(x: dict[str, Any]) -> Attestation:
    c = bytes.fromhex(str(x["commitment"]).removeprefix("0x"))
    t = bytes.fromhex(str(x["transcript_hash"]).removeprefix("0x"))
    if len(c) != 32 or len(t) != 32:
        raise ValueError("commitment and transcript hash must be 32 bytes")
    return Attestation(
        int(x["job_id"]),
        to_checksum_address(x["worker"]),
        c,
        int(x["work_units"]),
        int(x["verdict"]),
        t,
    )
