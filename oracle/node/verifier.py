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

import numpy as np
import requests

from oracle.compute.llm.answer import decode_llm_answer
from oracle.compute.verify import answer_limit, check_full, check_sampled, prepare
from oracle.exceptions import (
    BlobError,
    BlobHashMismatch,
    BlobNotFound,
    BlobTooLarge,
    BlobTransferError,
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
from oracle.protocol.results import decode_answer, result_layout
from oracle.protocol.spec import LlmSpec, Spec, work_units
from oracle.protocol.verdict import (
    NOT_DELIVERED,
    Verdict,
    VerdictCode,
    VerdictKey,
    submission_invalid,
)
from oracle.store.blobs import post_for_bundle
from oracle.store.results import ResultStores
from oracle.store.specs import InputStore, SpecStore

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
        #: Where workers deliver full results: the job stores (the spec stores).
        self.results = ResultStores(ctx.cfg.spec_stores, read_timeout=ctx.cfg.fetch_timeout)
        #: Where requesters publish blob inputs: the job stores too.
        self.inputs = InputStore(ctx.cfg.spec_stores)
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
        full: dict[bytes, tuple[VerdictKey, int]] = {}
        for sub in due:
            key = sub["key"]
            try:
                job = jobs[key.job_id]
                if job is None:
                    continue
                spec = self.specs.get(job["spec_hash"])
                if spec.mode == "full":  # delivered to the job stores
                    shape, dtype = result_layout(spec)
                    full[key.commitment] = (key, shape[0] * shape[1] * dtype.itemsize)
                    continue
                if isinstance(spec.params, LlmSpec):  # tens of MB: fetched alone
                    continue
                url = db.worker_url(key.worker)
                if url is None:
                    continue
                item: dict[str, Any] = {
                    "job_id": key.job_id,
                    "commitment": "0x" + key.commitment.hex(),
                }
                seed = challenge_seed(
                    self.confirmed_hash(challenge_block(sub["block_number"])),
                    key.job_id,
                    key.worker,
                )
                item["seed"] = "0x" + seed.hex()
                cost = bundle_cost(spec.mode)
                if cost is None:
                    continue
            except Exception:  # decide() meets the same problem and records it
                continue
            entries.append((url, BundleEntry(key, item, cost)))
        chunks = plan_bundles(entries, self.ctx.cfg.bundle_items)
        served: Served = {}
        if full:
            served.update(self._fetch_delivered(full))
        if chunks:
            for got in self._verify_pool.map(lambda c: self._fetch_bundle(*c), chunks):
                served.update(got)
        return served

    def _fetch_delivered(self, keys: dict[bytes, tuple[VerdictKey, int]]) -> Served:
        """Full-mode results from the job stores, in one request per store: only those whose
        bytes open their commitment (checked by :class:`ResultStores`), cut into the job's
        rows, come back; the rest are fetched one by one by :meth:`decide`."""
        served: Served = {}
        limit = max(size for _, size in keys.values())
        try:
            got = self.results.fetch_many(list(keys), limit)
        except Exception as exc:  # best effort: decide() meets it again and says so
            event(log, "store_fetch_failed", logging.WARNING, error=str(exc))
            return served
        for c, r in got.items():
            key, size = keys[c]
            if (
                r.root is not None
                and len(r.data) == size
                and r.worker.lower() == key.worker.lower()
            ):
                served[key] = (r.root, bytes(r.data))
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
                prepared_f.set_result(prepare(spec, seed, store=self.inputs))
            except Exception as exc:  # before anything is fetched from the worker
                self._unprepared(key, job, exc)
                return None
        else:
            prepared_f = self._pool.submit(prepare, spec, seed, store=self.inputs)
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
    ) -> Verdict | None:
        """Check a result (full mode: delivered, from the job stores, its root computed from
        these bytes) or a sampled answer (served by the worker): the root must open the
        commitment, the size fit the job, the content pass the check; a sampled answer's
        opened rows (an llm answer: its result) must also be in the job stores (None: not
        yet, retry)."""
        if len(root) != 32 or commitment(key.worker, root) != key.commitment:
            return submission_invalid(spec, seed, key, "served root does not open the commitment")
        if spec.mode == "full":
            return self._timed_check(lambda: check_full(prepared(), payload))
        if len(payload) > answer_limit(spec):
            return submission_invalid(spec, seed, key, "challenge answer oversized")
        verdict = self._timed_check(lambda: check_sampled(prepared(), payload, root))
        if verdict.verdict != VerdictCode.VALID:
            return verdict
        if isinstance(spec.params, LlmSpec):
            return self._check_delivered_llm(key, spec, seed, payload, verdict)
        return self._check_delivered_rows(key, spec, seed, payload, verdict)

    def _check_delivered_llm(
        self, key: VerdictKey, spec: Spec, seed: bytes, payload: bytes, verdict: Verdict
    ) -> Verdict | None:
        """An llm answer carries its result: the job stores must hold the same bytes (the
        requester's completion), else INVALID once the reveal window is over (None before)."""
        shape, dtype = result_layout(spec)
        size = shape[0] * shape[1] * dtype.itemsize
        try:
            got = self.results.fetch(key.commitment, size)
            delivered = bytes(got.data) == decode_llm_answer(spec, payload).result
        except (BlobNotFound, BlobHashMismatch, BlobTooLarge):
            delivered = False
        except BlobError as exc:
            raise _Unprepared(exc) from exc
        if delivered:
            return verdict
        if self._reveal_window_over(key.submission_block):
            return submission_invalid(spec, seed, key, NOT_DELIVERED)
        self._retry_fetch(key, "result not in the job stores yet")
        return None

    def _check_delivered_rows(
        self, key: VerdictKey, spec: Spec, seed: bytes, payload: bytes, verdict: Verdict
    ) -> Verdict | None:
        """Sampled mode: the rows the answer opened (proven against the root) must be the
        job stores' rows of the delivered result, so the whole result is there for its
        requester; else INVALID once the reveal window is over (None before: retry)."""
        (_, cols), dtype = result_layout(spec)
        row_bytes = cols * dtype.itemsize
        rounds = int(verdict.transcript["rounds"])
        y_dtype = np.dtype("<i8") if dtype.kind == "i" else np.dtype("<f4")
        answer = decode_answer(
            payload,
            rows=result_layout(spec)[0][0],
            rounds=rounds,
            y_dtype=y_dtype,
            row_bytes=row_bytes,
        )
        wanted = [o.index for o in answer.openings]
        try:
            rows = self.results.rows(key.commitment, wanted, row_bytes)
            delivered = rows == [o.row for o in answer.openings]
        except BlobNotFound:
            delivered = False
        except BlobTransferError as exc:
            raise _Unprepared(exc) from exc
        if delivered:
            return verdict
        if self._reveal_window_over(key.submission_block):
            return submission_invalid(spec, seed, key, NOT_DELIVERED)
        self._retry_fetch(key, "result not in the job stores yet")
        return None

    def _fetch_and_check(
        self,
        key: VerdictKey,
        spec: Spec,
        seed: bytes,
        prepared: Callable[[], Any],
        submission_block: int,
    ) -> Verdict | None:
        if spec.mode == "full":
            return self._fetch_delivered_one(key, spec, seed, prepared, submission_block)
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
            resp = http.get(f"{base}/answer", params={"seed": "0x" + seed.hex()}, timeout=timeout)
            if resp.status_code != HTTPStatus.OK:
                raise PeerError(f"GET answer: HTTP {resp.status_code}")
            payload = resp.content
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
                return submission_invalid(spec, seed, key, NOT_DELIVERED)
            self._retry_fetch(key, f"{type(exc).__name__}: {exc}")
            return None
        return self._check_served(key, spec, seed, prepared, root, payload)

    def _fetch_delivered_one(
        self,
        key: VerdictKey,
        spec: Spec,
        seed: bytes,
        prepared: Callable[[], Any],
        submission_block: int,
    ) -> Verdict | None:
        """A full-mode result from the job stores: INVALID if none has it (or a copy that
        checks) once the reveal window is over; stores that do not answer are this node's
        problem, not the worker's (retried as an unprepared job, never INVALID)."""
        shape, dtype = result_layout(spec)
        size = shape[0] * shape[1] * dtype.itemsize
        try:
            got = self.results.fetch(key.commitment, size)
        except BlobTooLarge:
            return submission_invalid(spec, seed, key, f"result oversized (limit {size} bytes)")
        except (BlobNotFound, BlobHashMismatch) as exc:
            self.ctx.metrics.inc("fetch_errors")
            if self._reveal_window_over(submission_block):
                return submission_invalid(spec, seed, key, NOT_DELIVERED)
            self._retry_fetch(key, f"{type(exc).__name__}: {exc}")
            return None
        except BlobError as exc:
            raise _Unprepared(exc) from exc
        if got.row_bytes != shape[1] * dtype.itemsize or got.root is None:
            return submission_invalid(
                spec,
                seed,
                key,
                f"result delivered in rows of {got.row_bytes} bytes, the job's have "
                f"{shape[1] * dtype.itemsize}",
            )
        return self._check_served(key, spec, seed, prepared, got.root, bytes(got.data))

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
