"""The worker's durable state: one SQLite file (WAL), one transaction per state change.

``jobs`` holds every job seen and what the worker decided (``skipped`` with a reason,
``computed`` once its result is in the blob store, ``committed`` once the commitment is
mined, ``lost`` if the job closed first). The result's blob name, Merkle root and commitment
are written *before* the commitment is sent, so a restart finds the result and never computes
or commits a second, different one. ``meta`` holds the event checkpoint.

A ``new`` job whose last attempt failed in a way that may pass (a spec store down, a spec not
published yet) waits: ``attempts`` counts the failures, ``next_try`` (Unix seconds) is when it
is due again and ``reason`` holds the last error. The wait is persisted, so a restart neither
forgets a job's backoff nor hammers a store that is down; and the jobs a step looks at are the
oldest *due* ones, so any number of waiting jobs never crowds the others out.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oracle.infra.sqlite import SqliteFile

__all__ = ["WorkerDB"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY, spec_hash BLOB NOT NULL, work_units INTEGER NOT NULL,
    amount TEXT NOT NULL, deadline INTEGER NOT NULL, state TEXT NOT NULL,
    reason TEXT, blob TEXT, root BLOB, commitment BLOB, epoch INTEGER);
CREATE TABLE IF NOT EXISTS claims (epoch INTEGER PRIMARY KEY, state TEXT NOT NULL);
-- Every step reads the 'new' and 'computed' jobs, and every served blob is looked up by name:
-- indexed, so neither grows with the jobs done before.
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, job_id);
CREATE INDEX IF NOT EXISTS jobs_by_blob ON jobs (blob) WHERE blob IS NOT NULL;
"""

#: Columns added to ``jobs`` since its first version (added to an older file when opened).
_JOB_COLUMNS = {
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "next_try": "REAL NOT NULL DEFAULT 0",
}


class WorkerDB(SqliteFile):
    """A handle on the worker's SQLite file (readers may be HTTP threads)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)
        self.add_columns("jobs", _JOB_COLUMNS)

    def checkpoint(self) -> int | None:
        """The last block whose events are recorded."""
        with self._conn() as c:
            row = c.execute("SELECT value FROM meta WHERE key='checkpoint'").fetchone()
        return None if row is None else int(row[0])

    def add_jobs(
        self,
        jobs: list[dict[str, Any]],
        checkpoint: int,
        *,
        epochs: Sequence[int] = (),
        settled: Sequence[tuple[int, bool]] = (),
        slashed: Sequence[int] = (),
        closed: Sequence[int] = (),
    ) -> None:
        """Record new jobs (known ones are kept as they are), epochs with own work, settled
        jobs (``(job_id, to_me)``: a job of this worker's becomes ``settled``, one still
        ``new``/``computed`` is ``lost``, a ``committed`` one settled to another is marked
        ``closed`` so its stake is released), jobs where this worker was ``slashed``, jobs
        refunded or cancelled (``closed``, likewise) and the checkpoint, atomically."""
        with self.tx() as c:
            for j in jobs:
                c.execute(
                    "INSERT OR IGNORE INTO jobs (job_id, spec_hash, work_units, amount, "
                    "deadline, state) VALUES (?,?,?,?,?,'new')",
                    (
                        j["job_id"],
                        bytes(j["spec_hash"]),
                        j["work_units"],
                        str(j["amount"]),
                        j["deadline"],
                    ),
                )
            c.executemany(
                "INSERT OR IGNORE INTO claims VALUES (?, 'pending')", [(e,) for e in epochs]
            )
            for job_id, to_me in settled:
                if to_me:
                    c.execute(
                        "UPDATE jobs SET state='settled', reason=NULL WHERE job_id=? "
                        "AND state NOT IN ('new', 'computed')",
                        (job_id,),
                    )
                c.execute(
                    "UPDATE jobs SET state='lost', reason='settled to another worker' "
                    "WHERE job_id=? AND state IN ('new', 'computed')",
                    (job_id,),
                )
                if not to_me:
                    closed = [*closed, job_id]
            c.executemany(
                "UPDATE jobs SET state='slashed', reason='attested INVALID' WHERE job_id=?",
                [(j,) for j in slashed],
            )
            c.executemany(
                "UPDATE jobs SET reason='closed' WHERE job_id=? AND state='committed'",
                [(j,) for j in closed],
            )
            c.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (str(checkpoint),))

    def jobs(
        self, state: str, limit: int | None = None, *, due_by: float | None = None
    ) -> list[dict[str, Any]]:
        """Jobs in a state, by id (the first ``limit`` of them: a step takes one batch, not
        the whole backlog); with ``due_by``, only those not waiting past that time."""
        due = "" if due_by is None else " AND next_try <= ?"
        with self._conn() as c:
            rows = c.execute(
                "SELECT job_id, spec_hash, work_units, amount, deadline, blob, root, "
                f"commitment, attempts, reason FROM jobs WHERE state=?{due} "
                "ORDER BY job_id LIMIT ?",
                (state, *(() if due_by is None else (due_by,)), -1 if limit is None else limit),
            ).fetchall()
        keys = (
            "job_id",
            "spec_hash",
            "work_units",
            "amount",
            "deadline",
            "blob",
            "root",
            "commitment",
            "attempts",
            "reason",
        )
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        for j in out:
            j["spec_hash"], j["amount"] = bytes(j["spec_hash"]), int(j["amount"])
            for k in ("root", "commitment"):
                j[k] = None if j[k] is None else bytes(j[k])
        return out

    def job(self, job_id: int) -> dict[str, Any] | None:
        """One job with its state."""
        with self._conn() as c:
            row = c.execute(
                "SELECT state, blob, root, commitment, reason FROM jobs WHERE job_id=?", (job_id,)
            ).fetchone()
        if row is None:
            return None
        return {
            "state": row[0],
            "blob": row[1],
            "root": None if row[2] is None else bytes(row[2]),
            "commitment": None if row[3] is None else bytes(row[3]),
            "reason": row[4],
        }

    def spec_hash(self, job_id: int) -> bytes | None:
        """The spec hash of a recorded job."""
        row = self._one("SELECT spec_hash FROM jobs WHERE job_id=?", (job_id,))
        return None if row is None else bytes(row[0])

    def set_state(self, job_id: int, state: str, reason: str | None = None) -> None:
        """Move a job to ``skipped``/``committed``/``lost``/``settled`` (with a reason)."""
        self._exec("UPDATE jobs SET state=?, reason=? WHERE job_id=?", (state, reason, job_id))

    def retry_later(self, job_id: int, error: str, next_try: float) -> int:
        """Record a failed attempt at a ``new`` job that may pass: it waits until
        ``next_try`` (Unix seconds) with ``error`` as its reason. Returns the failures so far."""
        with self.tx() as c:
            c.execute(
                "UPDATE jobs SET attempts=attempts+1, next_try=?, reason=? "
                "WHERE job_id=? AND state='new'",
                (next_try, error[:500], job_id),
            )
            row = c.execute("SELECT attempts FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return 0 if row is None else int(row[0])

    def release_waiting(self) -> int:
        """Make every waiting ``new`` job due now (what they waited for is back); returns how
        many were waiting."""
        with self.tx() as c:
            cur = c.execute(
                "UPDATE jobs SET next_try=0 WHERE state='new' AND next_try > ?", (time.time(),)
            )
            return int(cur.rowcount)

    def waiting(self) -> int:
        """How many ``new`` jobs wait after a failure that may pass."""
        row = self._one("SELECT COUNT(*) FROM jobs WHERE state='new' AND attempts > 0")
        return int(row[0])

    def set_computed_many(self, rows: list[tuple[int, str, bytes, bytes]]) -> None:
        """Record stored results, (job id, blob, root, commitment) each, before their
        commitments are sent, in one transaction."""
        with self.tx() as c:
            c.executemany(
                "UPDATE jobs SET state='computed', blob=?, root=?, commitment=?, reason=NULL "
                "WHERE job_id=? AND state='new'",
                [(b, r, cm, j) for j, b, r, cm in rows],
            )

    def set_states(self, job_ids: list[int], state: str, reason: str | None = None) -> None:
        """:meth:`set_state` for many jobs in one transaction."""
        with self.tx() as c:
            c.executemany(
                "UPDATE jobs SET state=?, reason=? WHERE job_id=?",
                [(state, reason, j) for j in job_ids],
            )

    def committed_blob(self, job_id: int, commitment: bytes) -> tuple[str, bytes] | None:
        """(blob, root) of a result whose commitment is mined (only those are served)."""
        with self._conn() as c:
            row = c.execute(
                "SELECT blob, root FROM jobs WHERE job_id=? AND commitment=? AND "
                "state IN ('committed', 'settled')",
                (job_id, commitment),
            ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def served_blob(self, name: str) -> bool:
        """True iff ``name`` is the blob of a committed result."""
        with self._conn() as c:
            row = c.execute(
                "SELECT 1 FROM jobs WHERE blob=? AND state IN ('committed', 'settled')", (name,)
            ).fetchone()
        return row is not None

    def pending_claims(self) -> list[int]:
        """Epochs not yet claimed."""
        with self._conn() as c:
            return [
                r[0]
                for r in c.execute(
                    "SELECT epoch FROM claims WHERE state='pending' ORDER BY epoch"
                ).fetchall()
            ]

    def set_claimed(self, epochs: list[int]) -> None:
        """Mark epochs claimed."""
        with self.tx() as c:
            c.executemany("UPDATE claims SET state='claimed' WHERE epoch=?", [(e,) for e in epochs])
