"""The oracle node's durable state: one SQLite file, WAL, one transaction per state change.

Tables (all writes are idempotent; re-processing a block range is harmless):

* ``meta`` — the checkpoint (last fully processed block).
* ``blocks`` — hashes of processed blocks (the last ``KEEP_BLOCKS``), to detect reorgs.
* ``jobs`` — every ``JobCreated`` seen.
* ``submissions`` — every ``ResultSubmitted`` seen, keyed by (job, worker, commitment, block):
  a commitment submitted again after a slash is a new submission, verified afresh; with
  the verification state: ``pending`` → ``decided`` (or ``gave_up`` after retries), retry
  count and next attempt time.
* ``verdicts`` — keyed by (job, worker, commitment, submission block, seed): verdict, reason,
  transcript JSON and hash. A verdict, once recorded, is never replaced: recording different
  content for the same key raises :class:`VerdictConflict`; recording the same content is a
  no-op.
  ``onchain`` marks items no longer worth settling (``settled``, ``slashed``, ``moot``) and
  ``orphaned`` marks verdicts whose challenge block was reorganised away.
* ``batches`` / ``signatures`` — every batch this node signed or collected signatures for.
* ``txs`` — every transaction this node signed, stored *before* it is broadcast (nonce, hash,
  raw bytes, state ``signed`` → ``mined`` / ``failed``), so a restart re-broadcasts the same
  bytes rather than signing new ones.
* ``workers`` — worker address → result URL, from signed announcements.
* ``settled_batches`` — every batch the market settled (``BatchSettled`` with its items, as
  :class:`~oracle.protocol.settled.SettledBatch` JSON), ``pending`` until its challenge window
  ends and someone finalizes it (``BatchFinalized``), then ``final``.

Failure modes: :class:`VerdictConflict` (a different verdict for a decided key);
``sqlite3.Error`` for I/O problems (the caller's loop logs and retries).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracle.exceptions import VerdictConflict
from oracle.infra.sqlite import SqliteFile
from oracle.protocol.settled import SettledBatch
from oracle.protocol.verdict import VerdictKey

__all__ = ["KEEP_BLOCKS", "OracleDB", "StoredVerdict", "Unsettled"]

KEEP_BLOCKS = 512
#: Bumped when a table's key changes; a file of another version is refused with a clear error.
SCHEMA_VERSION = 2
# One submission, in the submissions table and in the verdicts table.
_SUB = "job_id=? AND worker=? AND commitment=? AND block_number=?"
_VKEY = "job_id=? AND worker=? AND commitment=? AND submission_block=?"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id INTEGER PRIMARY KEY, spec_hash BLOB NOT NULL, work_units INTEGER NOT NULL,
    requester TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
    deadline INTEGER NOT NULL, block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    job_id INTEGER NOT NULL, worker TEXT NOT NULL, commitment BLOB NOT NULL,
    block_number INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0,
    last_error TEXT, seen_at REAL NOT NULL,
    PRIMARY KEY (job_id, worker, commitment, block_number));
CREATE TABLE IF NOT EXISTS verdicts (
    job_id INTEGER NOT NULL, worker TEXT NOT NULL, commitment BLOB NOT NULL,
    submission_block INTEGER NOT NULL, seed BLOB NOT NULL,
    challenge_block INTEGER NOT NULL, challenge_hash BLOB NOT NULL,
    work_units INTEGER NOT NULL, verdict INTEGER NOT NULL, reason TEXT NOT NULL,
    transcript TEXT NOT NULL, transcript_hash BLOB NOT NULL, decided_at REAL NOT NULL,
    onchain TEXT, orphaned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, worker, commitment, submission_block, seed));
CREATE TABLE IF NOT EXISTS batches (
    digest BLOB PRIMARY KEY, items TEXT NOT NULL, role TEXT NOT NULL,
    state TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS signatures (
    digest BLOB NOT NULL, signer TEXT NOT NULL, r TEXT NOT NULL, vs TEXT NOT NULL,
    PRIMARY KEY (digest, signer));
CREATE TABLE IF NOT EXISTS txs (
    nonce INTEGER PRIMARY KEY, tx_hash BLOB NOT NULL UNIQUE, raw BLOB NOT NULL,
    label TEXT NOT NULL, digest BLOB, state TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS settled_batches (
    batch_id INTEGER PRIMARY KEY, final_at INTEGER NOT NULL, batch TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending');
CREATE TABLE IF NOT EXISTS workers (
    address TEXT PRIMARY KEY, url TEXT NOT NULL, announced_at INTEGER NOT NULL);
-- What the loops poll (pending submissions, unsettled verdicts, verdicts a reorg may orphan)
-- is a few rows among all ever decided: partial indexes keep each poll proportional to those.
CREATE INDEX IF NOT EXISTS submissions_pending ON submissions (block_number, job_id, worker)
    WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS verdicts_unsettled ON verdicts (decided_at, job_id, worker)
    WHERE onchain IS NULL AND orphaned = 0;
CREATE INDEX IF NOT EXISTS verdicts_live_by_challenge ON verdicts (challenge_block)
    WHERE orphaned = 0;
"""


@dataclass(frozen=True)
class StoredVerdict:
    """A recorded verdict, as signed."""

    key: VerdictKey
    seed: bytes
    challenge_block: int
    challenge_hash: bytes
    work_units: int
    verdict: int
    reason: str
    transcript: dict[str, Any]
    transcript_hash: bytes
    decided_at: float = 0.0


@dataclass(frozen=True)
class Unsettled:
    """What proposing a verdict for settlement needs (no seed, reason or transcript: the
    settle loop polls these every few ms)."""

    key: VerdictKey
    work_units: int
    verdict: int
    transcript_hash: bytes
    decided_at: float


class OracleDB(SqliteFile):
    """A handle on the node's SQLite file; safe for one writer thread plus HTTP reader threads
    (every method opens its own short transaction under a lock-free WAL connection per call)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA, version=SCHEMA_VERSION)

    def checkpoint(self) -> int | None:
        """The last block whose events are fully recorded (None before the first run)."""
        row = self._one("SELECT value FROM meta WHERE key='checkpoint'")
        return None if row is None else int(row[0])

    def block_hash(self, number: int) -> bytes | None:
        """The hash this node recorded for a processed block, if it still keeps it."""
        row = self._one("SELECT hash FROM blocks WHERE number=?", (number,))
        return None if row is None else bytes(row[0])

    def recorded_blocks(self, below: int) -> list[tuple[int, bytes]]:
        """(number, hash) of the processed blocks this node keeps below ``below``, newest
        first."""
        rows = self._all(
            "SELECT number, hash FROM blocks WHERE number < ? ORDER BY number DESC", (below,)
        )
        return [(int(n), bytes(h)) for n, h in rows]

    def rewind(self, to_block: int) -> None:
        """Forget processed blocks above ``to_block`` and move the checkpoint there."""
        with self.tx() as c:
            c.execute("DELETE FROM blocks WHERE number > ?", (to_block,))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (str(to_block),))

    def record_range(
        self, to_block: int, to_hash: bytes, events: list[tuple[str, dict[str, Any]]]
    ) -> None:
        """Record a processed block range's events and advance the checkpoint, atomically.

        ``events`` are (name, args) in chain order. Inserting an already-known job or
        submission is a no-op, so re-processing a range changes nothing.
        """
        now = time.time()
        with self.tx() as c:
            for name, a in events:
                if name == "JobCreated":
                    c.execute(
                        "INSERT OR IGNORE INTO jobs VALUES (?,?,?,?,?,?,?,?)",
                        (
                            a["job_id"],
                            bytes(a["spec_hash"]),
                            a["work_units"],
                            a["requester"],
                            a["asset"],
                            str(a["amount"]),
                            a["deadline"],
                            a.get("_block", 0),
                        ),
                    )
                elif name == "ResultSubmitted":
                    c.execute(
                        "INSERT OR IGNORE INTO submissions (job_id, worker, commitment, "
                        "block_number, seen_at) VALUES (?,?,?,?,?)",
                        (a["job_id"], a["worker"], bytes(a["commitment"]), a["block_number"], now),
                    )
                elif name == "JobSettled":
                    c.execute(
                        "UPDATE verdicts SET onchain='settled' WHERE job_id=? AND worker=? "
                        "AND verdict=1 AND onchain IS NULL",
                        (a["job_id"], a["worker"]),
                    )
                    c.execute(
                        "UPDATE verdicts SET onchain='moot' WHERE job_id=? AND verdict=1 "
                        "AND onchain IS NULL",
                        (a["job_id"],),
                    )
                elif name == "WorkerSlashed":
                    c.execute(
                        "UPDATE verdicts SET onchain='slashed' WHERE job_id=? AND worker=? "
                        "AND verdict=2 AND onchain IS NULL",
                        (a["job_id"], a["worker"]),
                    )
                elif name == "BatchSettled" and "_batch" in a:
                    c.execute(
                        # A range read again after a reorg may carry another batch under the
                        # same id: the chain's latest word wins (its record is checked before
                        # any finalize is sent).
                        "INSERT OR REPLACE INTO settled_batches (batch_id, final_at, batch) "
                        "VALUES (?,?,?)",
                        (a["batch_id"], a["final_at"], a["_batch"]),
                    )
                elif name == "BatchFinalized":
                    c.execute(
                        "UPDATE settled_batches SET state='final' WHERE batch_id=?",
                        (a["batch_id"],),
                    )
                elif name in ("Refuted", "Overturned"):
                    # A dispute refuted the batch's VALID item for this job (there is one:
                    # a job is paid at most once per batch) or overturned its INVALID item
                    # for this job and worker: finalize now passes it REFUTED / OVERTURNED.
                    row = c.execute(
                        "SELECT batch FROM settled_batches WHERE batch_id=?", (a["batch_id"],)
                    ).fetchone()
                    if row is not None:
                        batch = SettledBatch.from_json(row[0]).undone(
                            name, int(a["job_id"]), str(a.get("worker", ""))
                        )
                        c.execute(
                            "UPDATE settled_batches SET batch=? WHERE batch_id=?",
                            (batch.to_json(), a["batch_id"]),
                        )
                elif name in ("JobRefunded", "JobCancelled"):
                    c.execute(
                        "UPDATE verdicts SET onchain='moot' WHERE job_id=? AND verdict=1 "
                        "AND onchain IS NULL",
                        (a["job_id"],),
                    )
            c.execute("INSERT OR REPLACE INTO blocks VALUES (?, ?)", (to_block, to_hash))
            c.execute("DELETE FROM blocks WHERE number < ?", (to_block - KEEP_BLOCKS,))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('checkpoint', ?)", (str(to_block),))

    # -- jobs and submissions --------------------------------------------------------------

    def job(self, job_id: int) -> dict[str, Any] | None:
        """A recorded job as a dict, or None."""
        row = self._one(
            "SELECT job_id, spec_hash, work_units, requester, asset, amount, deadline, block "
            "FROM jobs WHERE job_id=?",
            (job_id,),
        )
        if row is None:
            return None
        keys = (
            "job_id",
            "spec_hash",
            "work_units",
            "requester",
            "asset",
            "amount",
            "deadline",
            "block",
        )
        out = dict(zip(keys, row, strict=True))
        out["spec_hash"] = bytes(out["spec_hash"])
        out["amount"] = int(out["amount"])
        return out

    def due_submissions(self, max_block: int, now: float | None = None) -> list[dict[str, Any]]:
        """Pending submissions whose challenge block (submission block + 1) is <= ``max_block``
        and whose next attempt time has come, oldest first."""
        now = time.time() if now is None else now
        rows = self._all(
            "SELECT job_id, worker, commitment, block_number, attempts FROM submissions "
            "WHERE state='pending' AND block_number <= ? AND next_try <= ? "
            "ORDER BY block_number, job_id, worker",
            (max_block - 1, now),
        )
        return [
            {
                "key": VerdictKey(r[0], r[1], bytes(r[2]), r[3]),
                "block_number": r[3],
                "attempts": r[4],
            }
            for r in rows
        ]

    def retry_later(self, key: VerdictKey, error: str, delay: float) -> int:
        """Record a failed attempt; returns the attempt count."""
        with self.tx() as c:
            c.execute(
                "UPDATE submissions SET attempts=attempts+1, next_try=?, last_error=? WHERE "
                + _SUB,
                (time.time() + delay, error[:500], *key.args()),
            )
            row = c.execute("SELECT attempts FROM submissions WHERE " + _SUB, key.args()).fetchone()
        return int(row[0]) if row else 0

    def give_up(self, key: VerdictKey, error: str) -> None:
        """Stop retrying a submission that cannot be decided (e.g. its spec is unavailable)."""
        with self.tx() as c:
            c.execute(
                "UPDATE submissions SET state='gave_up', last_error=? WHERE " + _SUB,
                (error[:500], *key.args()),
            )

    def submission_state(self, key: VerdictKey) -> tuple[str, int, str | None] | None:
        """(state, attempts, last error) of a submission, or None if unknown."""
        row = self._one(
            "SELECT state, attempts, last_error FROM submissions WHERE " + _SUB, key.args()
        )
        return None if row is None else (row[0], int(row[1]), row[2])

    # -- verdicts --------------------------------------------------------------------------

    def record_verdict(self, v: StoredVerdict) -> bool:
        """Record a verdict and mark its submission decided, atomically.

        Returns True if newly recorded, False if the identical verdict was already there.
        Raises VerdictConflict if a different verdict is recorded for the same key and seed.
        """
        return self.record_verdicts([v])[0]

    def record_verdicts(self, verdicts: list[StoredVerdict]) -> list[bool]:
        """:meth:`record_verdict` for many verdicts in one transaction (one sync to disk):
        all are recorded or, on a VerdictConflict, none."""
        with self.tx() as c:
            return [self._record_verdict(c, v) for v in verdicts]

    def _record_verdict(self, c: sqlite3.Connection, v: StoredVerdict) -> bool:
        k = v.key
        transcript = json.dumps(v.transcript, sort_keys=True, separators=(",", ":"))
        row = c.execute(
            "SELECT verdict, transcript_hash, work_units FROM verdicts WHERE "
            + _VKEY
            + " AND seed=?",
            (*k.args(), v.seed),
        ).fetchone()
        if row is not None:
            if (row[0], bytes(row[1]), row[2]) != (v.verdict, v.transcript_hash, v.work_units):
                raise VerdictConflict(
                    f"job {k.job_id} worker {k.worker}: verdict already recorded as "
                    f"{row[0]} 0x{bytes(row[1]).hex()}, refusing {v.verdict} "
                    f"0x{v.transcript_hash.hex()}"
                )
            created = False
        else:
            c.execute(
                "INSERT INTO verdicts (job_id, worker, commitment, submission_block, seed, "
                "challenge_block, challenge_hash, work_units, verdict, reason, transcript, "
                "transcript_hash, decided_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    *k.args(),
                    v.seed,
                    v.challenge_block,
                    v.challenge_hash,
                    v.work_units,
                    v.verdict,
                    v.reason,
                    transcript,
                    v.transcript_hash,
                    v.decided_at or time.time(),
                ),
            )
            created = True
        c.execute("UPDATE submissions SET state='decided' WHERE " + _SUB, k.args())
        return created

    def _verdict(self, row: Any) -> StoredVerdict:
        return StoredVerdict(
            key=VerdictKey(row[0], row[1], bytes(row[2]), row[3]),
            seed=bytes(row[4]),
            challenge_block=row[5],
            challenge_hash=bytes(row[6]),
            work_units=row[7],
            verdict=row[8],
            reason=row[9],
            transcript=json.loads(row[10]),
            transcript_hash=bytes(row[11]),
            decided_at=row[12],
        )

    _VCOLS = (
        "job_id, worker, commitment, submission_block, seed, challenge_block, challenge_hash, "
        "work_units, "
        "verdict, reason, transcript, transcript_hash, decided_at"
    )

    def verdict(self, key: VerdictKey) -> StoredVerdict | None:
        """The live (not orphaned) verdict on a submission, if decided."""
        row = self._one(
            f"SELECT {self._VCOLS} FROM verdicts WHERE {_VKEY} AND orphaned=0", key.args()
        )
        return None if row is None else self._verdict(row)

    def verdicts_for_job(self, job_id: int) -> list[StoredVerdict]:
        """Every verdict recorded for a job (orphaned ones included), oldest first."""
        rows = self._all(
            f"SELECT {self._VCOLS} FROM verdicts WHERE job_id=? ORDER BY decided_at", (job_id,)
        )
        return [self._verdict(r) for r in rows]

    def unsettled_verdicts(self, limit: int = 128) -> list[StoredVerdict]:
        """Live verdicts not yet known to be settled on-chain, oldest decision first."""
        rows = self._all(
            f"SELECT {self._VCOLS} FROM verdicts WHERE onchain IS NULL AND orphaned = 0 "
            "ORDER BY decided_at, job_id, worker LIMIT ?",
            (limit,),
        )
        return [self._verdict(r) for r in rows]

    def unsettled(
        self,
        limit: int = 128,
        *,
        due_for: tuple[int, int, float] | None = None,
        now: float | None = None,
    ) -> list[Unsettled]:
        """:meth:`unsettled_verdicts` with only what an attestation needs (a quarter of the
        time: no transcript to parse).

        ``due_for=(index, oracles, takeover)``: only the verdicts due for the node at
        ``index`` of ``oracles`` at time ``now``, i.e. decided at least ``rank × takeover``
        seconds ago with rank = (index − job_id) mod oracles, so that the ``limit`` is spent on
        verdicts this node may propose and not on the ones its peers lead."""
        cols = (
            "SELECT job_id, worker, commitment, submission_block, work_units, verdict, "
            "transcript_hash, decided_at FROM verdicts WHERE onchain IS NULL AND orphaned = 0 "
        )
        if due_for is None:
            rows = self._all(cols + "ORDER BY decided_at, job_id, worker LIMIT ?", (limit,))
        else:
            index, n, takeover = due_for
            rows = self._all(
                cols + "AND decided_at + (((? - job_id) % ?) + ?) % ? * ? <= ? "
                "ORDER BY decided_at, job_id, worker LIMIT ?",
                (index, n, n, n, takeover, time.time() if now is None else now, limit),
            )
        return [
            Unsettled(VerdictKey(r[0], r[1], bytes(r[2]), r[3]), r[4], r[5], bytes(r[6]), r[7])
            for r in rows
        ]

    def orphan_verdicts_after(self, block: int) -> list[StoredVerdict]:
        """Candidates for a reorg check: live verdicts whose challenge block is > ``block``."""
        rows = self._all(
            f"SELECT {self._VCOLS} FROM verdicts WHERE orphaned = 0 AND challenge_block > ?",
            (block,),
        )
        return [self._verdict(r) for r in rows]

    def orphan(self, v: StoredVerdict) -> None:
        """Mark a verdict's challenge block as reorganised away; its submission is re-verified
        (if it is still on the chain) under the new seed."""
        k = v.key
        with self.tx() as c:
            c.execute(
                "UPDATE verdicts SET orphaned=1 WHERE " + _VKEY + " AND seed=?", (*k.args(), v.seed)
            )
            c.execute("DELETE FROM submissions WHERE " + _SUB, k.args())

    # -- batches, signatures, transactions -------------------------------------------------

    def record_signed(
        self, digest: bytes, items: list[VerdictKey], role: str, signer: str, r: int, vs: int
    ) -> None:
        """Remember a batch this node signed or collected signatures for (``role`` = proposer,
        peer or collected) and one signature over it, in one transaction."""
        body = json.dumps(
            [[k.job_id, k.worker, "0x" + k.commitment.hex(), k.submission_block] for k in items]
        )
        with self.tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO batches VALUES (?,?,?,?,?)",
                (digest, body, role, "open", time.time()),
            )
            c.execute(
                "INSERT OR IGNORE INTO signatures VALUES (?,?,?,?)",
                (digest, signer, hex(r), hex(vs)),
            )

    def batch_items(self, digest: bytes) -> list[VerdictKey] | None:
        """The items of a recorded batch, in signed order (None if unknown)."""
        row = self._one("SELECT items FROM batches WHERE digest=?", (digest,))
        if row is None:
            return None
        return [VerdictKey(j, w, bytes.fromhex(c[2:]), b) for j, w, c, b in json.loads(row[0])]

    def seen_at(self, keys: list[VerdictKey]) -> list[float]:
        """When this node first recorded each of these submissions (wall-clock seconds),
        for those it recorded."""
        out = []
        for k in keys:
            row = self._one("SELECT seen_at FROM submissions WHERE " + _SUB, k.args())
            if row is not None:
                out.append(float(row[0]))
        return out

    def apply_settlement(
        self,
        tx_hash: bytes,
        tx_state: str,
        digest: bytes | None,
        marks: list[tuple[VerdictKey, str]],
    ) -> None:
        """A settle transaction's outcome in one transaction: its state, its batch
        ``settled``, and each item's ``onchain`` mark (``settled``/``slashed``/``moot``; a
        verdict already marked keeps its mark)."""
        with self.tx() as c:
            c.executemany(
                "UPDATE verdicts SET onchain=? WHERE " + _VKEY + " AND onchain IS NULL",
                [(state, *k.args()) for k, state in marks],
            )
            c.execute("UPDATE txs SET state=? WHERE tx_hash=?", (tx_state, tx_hash))
            if digest is not None:
                c.execute("UPDATE batches SET state='settled' WHERE digest=?", (digest,))

    def mark_onchain(self, marks: list[tuple[VerdictKey, str]]) -> None:
        """Mark verdicts found settled or moot by reading the chain (no transaction of this
        node's); a verdict already marked keeps its mark."""
        with self.tx() as c:
            c.executemany(
                "UPDATE verdicts SET onchain=? WHERE " + _VKEY + " AND onchain IS NULL",
                [(state, *k.args()) for k, state in marks],
            )

    def record_tx(
        self, nonce: int, tx_hash: bytes, raw: bytes, label: str, digest: bytes | None
    ) -> None:
        """Store a signed transaction before it is broadcast."""
        with self.tx() as c:
            c.execute(
                "INSERT INTO txs VALUES (?,?,?,?,?,?,?)",
                (nonce, tx_hash, raw, label, digest, "signed", time.time()),
            )

    def set_tx_state(self, tx_hash: bytes, state: str) -> None:
        """``mined`` or ``failed``."""
        with self.tx() as c:
            c.execute("UPDATE txs SET state=? WHERE tx_hash=?", (state, tx_hash))

    def txs(self, state: str | None = None) -> list[dict[str, Any]]:
        """Recorded transactions (optionally by state), by nonce."""
        sql = "SELECT nonce, tx_hash, raw, label, digest, state FROM txs"
        rows = (
            self._all(sql + " WHERE state=? ORDER BY nonce", (state,))
            if state
            else self._all(sql + " ORDER BY nonce")
        )
        return [
            {
                "nonce": n,
                "tx_hash": bytes(h),
                "raw": bytes(r),
                "label": lb,
                "digest": None if d is None else bytes(d),
                "state": s,
            }
            for n, h, r, lb, d, s in rows
        ]

    def next_nonce(self) -> int:
        """One above the highest nonce this node ever signed (0 if none)."""
        row = self._one("SELECT MAX(nonce) FROM txs")
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    # -- settled batches -------------------------------------------------------------------

    def pending_batches(self, final_by: int, limit: int = 16) -> list[tuple[int, str]]:
        """(batch id, batch JSON) of batches not known final whose window ends by
        ``final_by``, oldest first."""
        rows = self._all(
            "SELECT batch_id, batch FROM settled_batches WHERE state='pending' AND final_at<=? "
            "ORDER BY batch_id LIMIT ?",
            (final_by, limit),
        )
        return [(int(b), str(j)) for b, j in rows]

    def mark_batch_final(self, batch_id: int) -> None:
        """A batch found finalized (by this node's transaction or anyone's)."""
        with self.tx() as c:
            c.execute("UPDATE settled_batches SET state='final' WHERE batch_id=?", (batch_id,))

    # -- worker directory ------------------------------------------------------------------

    def set_worker_url(self, address: str, url: str, announced_at: int) -> bool:
        """Record a worker's URL unless a newer announcement is already stored."""
        with self.tx() as c:
            row = c.execute(
                "SELECT announced_at FROM workers WHERE address=?", (address.lower(),)
            ).fetchone()
            if row is not None and int(row[0]) >= announced_at:
                return False
            c.execute(
                "INSERT OR REPLACE INTO workers VALUES (?,?,?)",
                (address.lower(), url, announced_at),
            )
        return True

    def worker_url(self, address: str) -> str | None:
        """The last announced URL of a worker."""
        row = self._one("SELECT url FROM workers WHERE address=?", (address.lower(),))
        return None if row is None else str(row[0])

    def counts(self) -> dict[str, int]:
        """Row counts by state, for /metrics."""
        out: dict[str, int] = {}
        for state, n in self._all("SELECT state, COUNT(*) FROM submissions GROUP BY state"):
            out[f"submissions_{state}"] = n
        for v, n in self._all("SELECT verdict, COUNT(*) FROM verdicts GROUP BY verdict"):
            out[f"verdicts_{'valid' if v == 1 else 'invalid'}"] = n
        for state, n in self._all("SELECT state, COUNT(*) FROM txs GROUP BY state"):
            out[f"txs_{state}"] = n
        for state, n in self._all("SELECT state, COUNT(*) FROM settled_batches GROUP BY state"):
            out[f"batches_{state}"] = n
        out["signatures"] = int(self._one("SELECT COUNT(*) FROM signatures")[0])
        return out
