"""Settled batches read from an Ape settle receipt (the in-process demo, the simulation, the
contract tests): what ``finalize`` takes back once the challenge window is over."""

from __future__ import annotations

from typing import Any

from oracle.protocol.settled import SettledBatch

__all__ = ["finalize_batches", "settled_batch"]


def settled_batch(market: Any, tx: Any) -> SettledBatch | None:
    """The batch a ``settle`` receipt recorded, or None when every item was skipped."""
    [head] = tx.decode_logs(market.BatchSettled)
    if head.batch_id == 0:
        return None
    logs = sorted(
        [*tx.decode_logs(market.JobSettled), *tx.decode_logs(market.WorkerSlashed)],
        key=lambda log: log.log_index,
    )
    terms = {}
    for log in logs:
        job = market.job(log.job_id)
        terms[log.job_id] = (str(job.asset), int(job.amount), int(job.work_units))
    return SettledBatch.from_logs(
        dict(head.event_arguments),
        [(log.event_name, dict(log.event_arguments)) for log in logs],
        terms,
    )


def finalize_batches(market: Any, chain: Any, batches: list[SettledBatch], sender: Any) -> int:
    """Finalize every batch whose challenge window is over (the chain's pending timestamp at
    or past ``final_at``); they leave ``batches``. Returns how many were finalized."""
    due = [b for b in batches if b.final_at <= chain.pending_timestamp]
    for batch in due:
        market.finalize(*batch.args(), sender=sender)
        batches.remove(batch)
    return len(due)
