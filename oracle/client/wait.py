"""Following jobs to settlement (``pouw job wait``, ``job create --wait``).

:class:`JobWatch` folds the market's events into one state per job — open (with how many live
submissions and slashes so far), paid, refunded or cancelled — without any chain access, so
its rules are tested on plain events. :func:`follow` polls the chain (one ``eth_getLogs`` per
round for every followed job) and hands each round's states to a callback (the CLI draws them
with rich) until every job has ended or the time is up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from oracle.chain.client import Chain
from oracle.client.jobs import require_jobs

__all__ = ["WAIT_EVENTS", "JobState", "JobWatch", "follow"]

#: The events that move a followed job.
WAIT_EVENTS = (
    "ResultSubmitted",
    "JobSettled",
    "WorkerSlashed",
    "JobRefunded",
    "JobCancelled",
)
_ENDED = {"JobSettled": "paid", "JobRefunded": "refunded", "JobCancelled": "cancelled"}


@dataclass
class JobState:
    """One followed job as its events tell it."""

    job_id: int
    state: str = "open"
    submissions: int = 0
    slashed: int = 0
    worker: str | None = None  # who was paid
    ended_at: float | None = None  # seconds since following began
    log: list[str] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.state != "open"


class JobWatch:
    """The state of each followed job, from events in chain order."""

    def __init__(self, job_ids: Sequence[int]) -> None:
        self.jobs = {j: JobState(j) for j in job_ids}

    def apply(self, name: str, args: dict[str, Any], elapsed: float) -> None:
        """Fold one event in (events of other jobs are ignored)."""
        job = self.jobs.get(int(args["job_id"]))
        if job is None or job.ended:
            return
        if name == "ResultSubmitted":
            job.submissions += 1
        elif name == "WorkerSlashed":
            job.slashed += 1
            job.log.append(f"slashed {args['worker']} ({int(args['amount']):,} wei)")
        elif name in _ENDED:
            job.state = _ENDED[name]
            job.ended_at = elapsed
            if name == "JobSettled":
                job.worker = str(args["worker"])

    @property
    def done(self) -> bool:
        return all(j.ended for j in self.jobs.values())

    def exit_code(self) -> int:
        """0 when every job was paid, else 1 (refunded, cancelled, or still open)."""
        return 0 if all(j.state == "paid" for j in self.jobs.values()) else 1


def follow(
    chain: Chain,
    job_ids: Sequence[int],
    *,
    timeout: float,
    poll: float = 1.0,
    on_round: Callable[[JobWatch, float], None] | None = None,
) -> JobWatch:
    """Follow ``job_ids`` until each has ended or ``timeout`` seconds passed; ConfigError for
    a job id this market never gave out (nothing is followed then)."""
    require_jobs(chain, job_ids)
    watch = JobWatch(job_ids)
    start = time.monotonic()
    seen = chain.deployment.block - 1
    while True:
        elapsed = time.monotonic() - start
        head = chain.head()
        for e in chain.events(seen + 1, head, names=WAIT_EVENTS):
            watch.apply(e.name, e.args, elapsed)
        seen = head
        if on_round is not None:
            on_round(watch, elapsed)
        if watch.done or elapsed >= timeout:
            return watch
        time.sleep(poll)
