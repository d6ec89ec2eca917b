"""Verifying: due submissions → verdicts, results fetched from workers (in bundles, or one by
one), retries with backoff, give-ups on bad input.

A submission whose job this node cannot prepare (no spec, inputs it cannot load) gets no
verdict from that: the worker is not at fault. What can never pass
(:func:`oracle.protocol.failures.classify_failure`: a malformed spec, blob inputs with no store
for them, stored bytes that do not hash to their name) is given up at once; what may pass (a
spec store down, a spec not published yet) is retried with backoff, however many times, until
the job's settlement window ends (deadline + refund grace), then given up. Neither ever holds
up another submission.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import requests

from oracle.compute.verify import check_full, check_sampled, prepare
from oracle.exceptions import (
    BlobError,
    BlobTooLarge,
    ChainError,
    PeerError,
    VerdictConflict,
)
from oracle.infra.logs import event
from oracle.node.context import NodeContext
from oracle.node.db import StoredVerdict
from oracle.node.decisions import (
    BundleEntry,
    bundle_cost,
    gives_up,
    plan_bundles,
    retry_delay,
    reveal_window_over,
    settle_window_over,
)
from oracle.protocol.challenge import challenge_block, challenge_seed
from oracle.protocol.commitment import commitment
from oracle.protocol.failures import classify_failure
from oracle.protocol.results import MAX_ANSWER_BYTES, result_layout
from oracle.protocol.spec import Spec, work_units
from oracle.protocol.verdict import Verdict, VerdictCode, VerdictKey, submission_invalid
from oracle.store.blobs import HttpBlobClient, post_for_bundle
from oracle.store.specs import SpecStore

__all__ = ["INLINE_CHECK_BYTES", "INLINE_PREPARE_UNITS", "Verifier"]

log = logging.getLogger("pouw.oracle")

#: Jobs below this many work units prepare their seed-only part inline: for them a thread
#: handoff costs more than the overlap with the fetch saves.
INLINE_PREPARE_UNITS = 1 << 24
#: Bundled results up to this size are checked on the loop's thread, not the pool's.
INLINE_CHECK_BYTES = 64 << 10

#: ``{key: (root, payload)}`` of results a bundle brought.
Served = dict[VerdictKey, tuple[bytes, bytes]]


class _Unprepared(Exception):
    """:func:`prepare` failed. Deliberately no ValueError or ConnectionError: the fetch path
    catches those as the worker's failure to serve, which could end in INVALID for a worker
    that served in time; this one reaches :meth:`Verifier.decide` instead."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _prepared(f: Future[Any]) -> Callable[[], Any]:
    """``f``'s result on demand, a failure raised as :class:`_Unprepared`."""

    def get() -> Any:
        try:
            return f.result()
        except Exception as exc:
            raise _Unprepared(exc) from exc

    return get


class Verifier:
    """Decides pending submissions whose challenge block is confirmed (see :meth:`verify_due`).

    ``confirmed_hash`` gives the hash of a confirmed block (:meth:`Follower.confirmed_hash`).
    """

    def __init__(
        self, ctx: NodeContext, specs: SpecStore, confirmed_hash: Callable[[int], bytes]
    ) -> None:
        self.ctx = ctx
        self.specs = specs
        self.confirmed_hash = confirmed_hash
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, ctx.cfg.verify_threads), thread_name_prefix="pouw-prepare"
        )
        self._verify_pool = ThreadPoolExecutor(
            max_workers=ctx.cfg.verify_threads, thread_name_prefix="pouw-verify"
        )
        self._metrics_lock = threading.Lock()

    def close(self) -> None:
        """Stop the helper threads (work not started is cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._verify_pool.shutdown(wait=False, cancel_futures=True)

    def verify_due(self, safe: int) -> None:
        """Decide every pending submission whose challenge block is confirmed.

        Submissions are verified ``verify_threads`` at a time, ``batch_size`` per chunk; each
        chunk's verdicts are recorded in one transaction (nothing is signed before that, so a
        crash in between only means deriving the same verdicts again).
        """
        due = self.ctx.db.due_submissions(safe)
        # A settle batch at a time: each chunk's verdicts are recorded (and can be settled by
        # the settle thread) while the next chunk is fetched and checked.
        step = max(1, self.ctx.cfg.batch_size)
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
            self.ctx.db.record_verdicts(decided)
        except VerdictConflict:
            kept = []
            for v in decided:
                try:
                    self.ctx.db.record_verdict(v)
                    kept.append(v)
                except VerdictConflict as exc:
                    self._retry(v.key, f"VerdictConflict: {exc}")
            decided = kept
        for v in decided:
            name = VerdictCode(v.verdict).name
            self.ctx.metrics.inc(f"verdicts_{name.lower()}")
            event(
                log,
                "verdict",
                job=v.key.job_id,
                worker=v.key.worker,
                verdict=name,
                reason=v.reason,
                transcript_hash=v.transcript_hash,
            )
        self.ctx.kill("after_verdict")

    def _delay(self, key: VerdictKey) -> float:
        state = self.ctx.db.submission_state(key)
        cfg = self.ctx.cfg
        return retry_delay(state[1] if state else 0, cfg.backoff, cfg.max_backoff)

    def _retry(self, key: VerdictKey, error: str) -> None:
        delay = self._delay(key)
        n = self.ctx.db.retry_later(key, error, delay)
        self.ctx.metrics.inc("retries")
        if gives_up(n, self.ctx.cfg.max_attempts):
            self.ctx.db.give_up(key, error)
            self.ctx.metrics.inc("gave_up")
            event(log, "gave_up", logging.WARNING, job=key.job_id, worker=key.worker, error=error)
        else:
            event(
                log, "retry", job=key.job_id, worker=key.worker, attempt=n, delay=delay, error=error
            )

    def _fetch_bundles(self, due: list[dict[str, Any]]) -> Served:
        """Fetch the served results of due submissions from their workers in bundles
        (``POST /results``, one round trip per worker and up to ``bundle_items`` items):
        ``{key: (root, payload)}``. Only a transport: whatever is missing here (a worker
        without the endpoint, an item it did not serve, a large result, any error) is fetched
        by :meth:`decide` one by one, and every payload is checked exactly as if it had come
        alone."""
        db = self.ctx.db
        jobs = {sub["key"].job_id: db.job(sub["key"].job_id) for sub in due}
        self.specs.prefetch([j["spec_hash"] for j in jobs.values() if j is not None])
        entries: list[tuple[str, BundleEntry]] = []
        for sub in due:
            key = sub["key"]
            try:
                url = db.worker_url(key.worker)
                job = jobs[key.job_id]
                if url is None or job is None:
                    continue
                spec = self.specs.get(job["spec_hash"])
                item: dict[str, Any] = {
                    "job_id": key.job_id,
                    "commitment": "0x" + key.commitment.hex(),
                }
                if spec.mode == "sampled":
                    seed = challenge_seed(
                        self.confirmed_hash(challenge_block(sub["block_number"])),
                        key.job_id,
                        key.worker,
                    )
                    item["seed"] = "0x" + seed.hex()
                    cost = bundle_cost(spec.mode)
                else:
                    shape, dtype = result_layout(spec)
                    cost = bundle_cost(spec.mode, shape[0] * shape[1] * dtype.itemsize)
                if cost is None:
                    continue
            except Exception:  # decide() meets the same problem and records it
                continue
            entries.append((url, BundleEntry(key, item, cost)))
        chunks = plan_bundles(entries, self.ctx.cfg.bundle_items)
        served: Served = {}
        if chunks:
            for got in self._verify_pool.map(lambda c: self._fetch_bundle(*c), chunks):
                served.update(got)
        return served

    def _fetch_bundle(self, url: str, part: list[BundleEntry]) -> Served:
        limit = sum(e.cost for e in part) + (1 << 20)
        try:
            entries = post_for_bundle(
                self.ctx.http,
                f"{url}/results",
                {"items": [e.item for e in part]},
                limit=limit,
                timeout=self.ctx.cfg.fetch_timeout,
            )
        except PeerError as exc:
            self.ctx.metrics.inc("bundle_errors")
            event(log, "bundle_failed", logging.WARNING, worker_url=url, error=str(exc))
            return {}
        out: Served = {}
        wanted: dict[tuple[object, object], VerdictKey] = {
            (e.key.job_id, "0x" + e.key.commitment.hex()): e.key for e in part
        }
        for fields, payload in entries:
            key = wanted.get((fields.get("job_id"), fields.get("commitment")))
            if key is None or "error" in fields or not isinstance(fields.get("root"), str):
                continue
            try:
                out[key] = (bytes.fromhex(fields["root"].removeprefix("0x")), payload)
            except ValueError:
                continue
        self.ctx.metrics.inc("bundles")
        return out

    def decide(
        self, key: VerdictKey, submission_block: int, served: tuple[bytes, bytes] | None = None
    ) -> StoredVerdict | None:
        """Verify one submission; returns the verdict to record (None: a retry or a give-up
        was recorded instead). ``served`` is ``(root, payload)`` if a bundle brought them."""
        db, metrics = self.ctx.db, self.ctx.metrics
        job = db.job(key.job_id)
        if job is None:
            raise ChainError(f"job {key.job_id} not recorded yet")
        try:
            spec = self.specs.get(job["spec_hash"])
        except Exception as exc:  # classified: given up, or retried with backoff
            self._unprepared(key, job, exc)
            return None
        if work_units(spec) != job["work_units"]:
            db.give_up(key, "spec work units differ from the job's")
            metrics.inc("gave_up")
            return None
        cb = challenge_block(submission_block)
        cb_hash = self.confirmed_hash(cb)
        seed = challenge_seed(cb_hash, key.job_id, key.worker)
        prepared_f: Future[Any] = Future()
        if job["work_units"] < INLINE_PREPARE_UNITS:
            try:  # cheaper than a thread handoff
                prepared_f.set_result(prepare(spec, seed))
            except Exception as exc:  # before anything is fetched from the worker
                self._unprepared(key, job, exc)
                return None
        else:
            prepared_f = self._pool.submit(prepare, spec, seed)
        verdict: Verdict | None
        try:
            if served is not None:
                verdict = self._check_served(key, spec, seed, _prepared(prepared_f), *served)
            else:
                verdict = self._fetch_and_check(
                    key, spec, seed, _prepared(prepared_f), submission_block
                )
        except _Unprepared as exc:
            self._unprepared(key, job, exc.cause)
            return None
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

    def _unprepared(self, key: VerdictKey, job: dict[str, Any], exc: Exception) -> None:
        """A submission whose job could not be prepared (spec or inputs): given up at once if
        that can never pass, else retried with backoff until the job's settlement window
        ends. Never a verdict: the worker is not at fault."""
        db, metrics = self.ctx.db, self.ctx.metrics
        failure = classify_failure(exc)
        reason = failure.reason
        if not failure.permanent:
            chain = self.ctx.chain
            now = chain.block_timestamp(chain.head())
            if not settle_window_over(job["deadline"], now, self.ctx.refund_grace):
                delay = self._delay(key)
                n = db.retry_later(key, reason, delay)
                metrics.inc("prepare_retries")
                event(
                    log,
                    "prepare_retry",
                    logging.INFO if failure.unreachable else logging.WARNING,
                    job=key.job_id,
                    worker=key.worker,
                    attempt=n,
                    delay=delay,
                    reason=reason,
                )
                return
            reason = f"settlement window over; last error: {reason}"
        db.give_up(key, reason)
        metrics.inc("gave_up")
        event(log, "gave_up", logging.WARNING, job=key.job_id, worker=key.worker, reason=reason)

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
            return submission_invalid(spec, seed, key, "served root does not open the commitment")
        if spec.mode == "sampled":
            if len(payload) > MAX_ANSWER_BYTES:
                return submission_invalid(spec, seed, key, "challenge answer oversized")
            return self._timed_check(lambda: check_sampled(prepared(), payload, root))
        shape, dtype = result_layout(spec)
        size = shape[0] * shape[1] * dtype.itemsize
        if len(payload) > size:
            return submission_invalid(spec, seed, key, f"result oversized (limit {size} bytes)")
        return self._timed_check(lambda: check_full(prepared(), payload, expected_root=root))

    def _fetch_and_check(
        self,
        key: VerdictKey,
        spec: Spec,
        seed: bytes,
        prepared: Callable[[], Any],
        submission_block: int,
    ) -> Verdict | None:
        http, timeout = self.ctx.http, self.ctx.cfg.fetch_timeout
        url = self.ctx.db.worker_url(key.worker)
        try:
            if url is None:
                raise PeerError(f"no endpoint known for worker {key.worker}")
            base = f"{url}/results/{key.job_id}/{key.worker}/0x{key.commitment.hex()}"
            resp = http.get(base, timeout=timeout)
            if resp.status_code != HTTPStatus.OK:
                raise PeerError(f"GET {base}: HTTP {resp.status_code}")
            manifest = resp.json()
            root = bytes.fromhex(str(manifest["root"]).removeprefix("0x"))
            if len(root) != 32 or commitment(key.worker, root) != key.commitment:
                return submission_invalid(
                    spec, seed, key, "served root does not open the commitment"
                )
            if spec.mode == "sampled":
                resp = http.get(
                    f"{base}/answer", params={"seed": "0x" + seed.hex()}, timeout=timeout
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
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    session=http,
                )
                try:  # the root check below binds the content: no second hash of it
                    payload = client.get(str(manifest["blob"]), check_hash=False)
                except BlobTooLarge:
                    return submission_invalid(
                        spec, seed, key, f"result oversized (limit {size} bytes)"
                    )
            return self._check_served(key, spec, seed, prepared, root, payload)
        except (
            requests.RequestException,
            PeerError,
            BlobError,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            self.ctx.metrics.inc("fetch_errors")
            if self._reveal_window_over(submission_block):
                return submission_invalid(
                    spec, seed, key, "result not served within the reveal window"
                )
            self._retry_fetch(key, f"{type(exc).__name__}: {exc}")
            return None

    def _timed_check(self, check: Callable[[], Verdict]) -> Verdict:
        # "verify" seconds: from holding the result to the verdict (a wait for the seed-only
        # preparation still running on the helper thread included), as DESIGN.md counts them.
        t0 = time.perf_counter()
        verdict = check()
        with self._metrics_lock:
            self.ctx.metrics.observe("verify_seconds", time.perf_counter() - t0)
            self.ctx.metrics.inc("verify_checks")
        return verdict

    def _retry_fetch(self, key: VerdictKey, error: str) -> None:
        # Before the reveal window ends a worker may still serve: back off, never give up.
        delay = self._delay(key)
        self.ctx.db.retry_later(key, error, delay)
        event(log, "fetch_retry", job=key.job_id, worker=key.worker, delay=delay, error=error)

    def _reveal_window_over(self, submission_block: int) -> bool:
        chain = self.ctx.chain
        submitted = chain.block_timestamp(submission_block)
        now = chain.block_timestamp(chain.head())
        return reveal_window_over(submitted, now, self.ctx.reveal_window)
