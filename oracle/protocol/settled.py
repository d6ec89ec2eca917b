"""Settled batches as the JobMarket records them until they are final.

``settle`` keeps one hash per batch (``batch_record``) and logs what it is a hash of:
``BatchSettled`` (id, epoch, ``final_at``, signers) and, in log order, one ``JobSettled``
(VALID) or ``WorkerSlashed`` (INVALID) per item. ``finalize`` and disputes pass the batch back
in full; :class:`SettledBatch` rebuilds it from those logs (the VALID items' escrow and work
units are the job's, read with ``JobMarket.job``) and computes the same record hash as
``Disputes.batch_record_hash``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from eth_abi import encode

from oracle.protocol.hashing import keccak256

__all__ = ["VERDICT_OVERTURNED", "VERDICT_REFUTED", "SettledBatch", "SettledItem"]

#: An item's verdict after a dispute refuted its VALID verdict (only in a record).
VERDICT_REFUTED = 3
#: An item's verdict after a dispute proved its INVALID verdict's witness right.
VERDICT_OVERTURNED = 4

_ITEM_TYPES = (
    "uint256", "address", "bytes32", "uint8", "address", "uint256", "uint64", "uint256", "bytes32",
)  # fmt: skip


@dataclass(frozen=True)
class SettledItem:
    """One verdict of a settled batch (``JobMarket.SettledItem``)."""

    job_id: int
    worker: str
    commitment: bytes
    verdict: int
    asset: str
    amount: int
    work_units: int
    stake: int
    #: The attestation's; an INVALID matmul verdict's names its witness entry.
    transcript_hash: bytes = bytes(32)

    def as_tuple(self) -> tuple[int, str, bytes, int, str, int, int, int, bytes]:
        return (
            self.job_id,
            self.worker,
            self.commitment,
            self.verdict,
            self.asset,
            self.amount,
            self.work_units,
            self.stake,
            self.transcript_hash,
        )


@dataclass(frozen=True)
class SettledBatch:
    """A settled batch: what ``finalize`` and a dispute take."""

    batch_id: int
    epoch: int
    final_at: int
    signers: tuple[str, ...]
    items: tuple[SettledItem, ...]

    def args(
        self,
    ) -> tuple[
        int, int, int, list[str], list[tuple[int, str, bytes, int, str, int, int, int, bytes]]
    ]:
        """The arguments of ``finalize`` (and the batch arguments of a dispute)."""
        return (
            self.batch_id,
            self.epoch,
            self.final_at,
            list(self.signers),
            [i.as_tuple() for i in self.items],
        )

    def record_hash(self) -> bytes:
        """``Disputes.batch_record_hash`` of this batch."""
        acc = bytes(32)
        for item in self.items:
            acc = keccak256(encode(("bytes32", *_ITEM_TYPES), (acc, *item.as_tuple())))
        signers = keccak256(encode(("address[]",), (list(self.signers),)))
        return keccak256(
            encode(
                ("uint256", "uint256", "uint256", "bytes32", "bytes32"),
                (self.batch_id, self.epoch, self.final_at, signers, acc),
            )
        )

    def to_json(self) -> str:
        """The batch as JSON (hashes as 0x-hex), for a node's durable state."""
        items = [
            [
                *i.as_tuple()[:2],
                "0x" + i.commitment.hex(),
                *i.as_tuple()[3:8],
                "0x" + i.transcript_hash.hex(),
            ]
            for i in self.items
        ]
        return json.dumps(
            {
                "batch_id": self.batch_id,
                "epoch": self.epoch,
                "final_at": self.final_at,
                "signers": list(self.signers),
                "items": items,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> SettledBatch:
        """The inverse of :meth:`to_json`."""
        d = json.loads(text)
        items = tuple(
            SettledItem(
                int(j), w, bytes.fromhex(c[2:]), int(v), a, int(amt), int(u), int(st),
                bytes.fromhex(t[2:]),
            )
            for j, w, c, v, a, amt, u, st, t in d["items"]
        )  # fmt: skip
        return cls(
            int(d["batch_id"]), int(d["epoch"]), int(d["final_at"]), tuple(d["signers"]), items
        )

    def refuted(self, index: int) -> SettledBatch:
        """The batch after a dispute refuted item ``index`` (a VALID verdict) or overturned
        it (an INVALID one)."""
        items = list(self.items)
        marked = VERDICT_REFUTED if items[index].verdict == 1 else VERDICT_OVERTURNED
        items[index] = replace(items[index], verdict=marked)
        return replace(self, items=tuple(items))

    def refuted_job(self, job_id: int) -> SettledBatch:
        """The batch after a dispute refuted its VALID item for ``job_id`` (``Refuted`` names
        the job; a batch pays a job at most once); unchanged if it holds none."""
        for index, item in enumerate(self.items):
            if item.job_id == job_id and item.verdict == 1:
                return self.refuted(index)
        return self

    def undone(self, event: str, job_id: int, worker: str) -> SettledBatch:
        """The batch after a dispute's ``Refuted`` (its VALID item for ``job_id``) or
        ``Overturned`` event (its INVALID item for ``job_id`` and ``worker``), as the market's
        record has it."""
        if event == "Refuted":
            return self.refuted_job(job_id)
        return self.overturned_job(job_id, worker)

    def overturned_job(self, job_id: int, worker: str) -> SettledBatch:
        """The batch after a dispute overturned its INVALID item for ``job_id`` and ``worker``
        (``Overturned`` names both); unchanged if it holds none."""
        for index, item in enumerate(self.items):
            if (
                item.job_id == job_id
                and item.verdict == 2
                and item.worker.lower() == worker.lower()
            ):
                return self.refuted(index)
        return self

    @classmethod
    def from_logs(
        cls,
        batch: dict[str, object],
        item_logs: Sequence[tuple[str, dict[str, object]]],
        job_terms: dict[int, tuple[str, int, int]],
    ) -> SettledBatch:
        """Rebuild a batch from its ``BatchSettled`` args, its ``JobSettled`` /
        ``WorkerSlashed`` logs (name, args) in log order, and each item's job's
        ``(asset, amount, work_units)`` (``JobMarket.job``; they never change)."""
        items = []
        for name, args in item_logs:
            job_id = int(args["job_id"])  # type: ignore[call-overload]
            if name == "JobSettled":
                asset, amount, units = job_terms[job_id]
                items.append(
                    SettledItem(
                        job_id,
                        str(args["worker"]),
                        bytes(args["commitment"]),  # type: ignore[call-overload]
                        1,
                        asset,
                        amount,
                        units,
                        int(args["stake"]),  # type: ignore[call-overload]
                        bytes(args["transcript_hash"]),  # type: ignore[call-overload]
                    )
                )
            elif name == "WorkerSlashed":
                items.append(
                    SettledItem(
                        job_id,
                        str(args["worker"]),
                        bytes(args["commitment"]),  # type: ignore[call-overload]
                        2,
                        "0x0000000000000000000000000000000000000000",
                        int(args["amount"]),  # type: ignore[call-overload]
                        job_terms[job_id][2],
                        0,
                        bytes(args["transcript_hash"]),  # type: ignore[call-overload]
                    )
                )
        return cls(
            int(batch["batch_id"]),  # type: ignore[call-overload]
            int(batch["epoch"]),  # type: ignore[call-overload]
            int(batch["final_at"]),  # type: ignore[call-overload]
            tuple(str(s) for s in batch["signers"]),  # type: ignore[attr-defined]
            tuple(items),
        )
