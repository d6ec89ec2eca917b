"""The worker's decisions about one new job, as plain functions: no chain, no SQLite, no HTTP.

Each returns a value that :class:`oracle.worker.service.Worker` applies: whether a job is
still worth looking at before its spec is even read (:func:`closed_reason`), whether a job
the worker can read is one it takes (:func:`accept_reason`), and what a failed attempt leads
to (:func:`after_failure`): a :class:`Skip` for a job that can never be done by this worker
(recorded with its reason; the loop goes on to the next job), or a :class:`Retry` with capped
exponential backoff for a failure that may pass — until the job's deadline, never after a
fixed number of tries.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oracle.protocol.failures import classify_failure, retry_delay
from oracle.protocol.spec import Spec, work_units

__all__ = ["Retry", "Skip", "accept_reason", "after_failure", "closed_reason"]


@dataclass(frozen=True)
class Skip:
    """Set the job aside for good (state ``skipped``) with ``reason``."""

    reason: str


@dataclass(frozen=True)
class Retry:
    """Try the job again at ``at`` (Unix seconds; ``delay`` from now): it failed for
    ``reason``, which may pass; ``unreachable``: a store did not answer at all."""

    reason: str
    delay: float
    at: float
    unreachable: bool


def closed_reason(
    job: Mapping[str, Any], closed: Collection[int], chain_now: int, *, last_error: str | None
) -> str | None:
    """Why a new job is no longer worth any work, read before its spec (so a job waiting on a
    store that never comes back ends at its deadline): refunded or cancelled, or past its
    deadline on-chain (with the error it last waited on, if any). None: it is still open."""
    if job["job_id"] in closed:
        return "job no longer open"
    if job["deadline"] <= chain_now:
        return "job past its deadline" + (f" (last waited on: {last_error})" if last_error else "")
    return None


def accept_reason(
    job: Mapping[str, Any],
    spec: Spec,
    *,
    kinds: Sequence[str],
    max_work_units: int,
    min_price_per_unit: float,
) -> str | None:
    """Why this worker does not take a job whose spec it read (its own policy, or a job whose
    on-chain work units differ from its spec's); None: take it."""
    if spec.kind not in kinds:
        return f"kind {spec.kind} not accepted"
    if job["work_units"] > max_work_units:
        return f"{job['work_units']} work units above the limit"
    if job["amount"] < min_price_per_unit * job["work_units"]:
        return "price per work unit below the minimum"
    if work_units(spec) != job["work_units"]:
        return "job's work units differ from its spec"
    return None


def after_failure(
    exc: BaseException, attempts: int, now: float, *, backoff: float, max_backoff: float
) -> Skip | Retry:
    """What a failed attempt at a job leads to (``attempts``: its failures before this one):
    :class:`Skip` if it can never pass (:func:`oracle.protocol.failures.classify_failure`),
    else :class:`Retry` after ``backoff * 2**attempts`` seconds, at most ``max_backoff``."""
    failure = classify_failure(exc)
    if failure.permanent:
        return Skip(failure.reason)
    delay = retry_delay(attempts, backoff, max_backoff)
    return Retry(failure.reason, delay, now + delay, failure.unreachable)
