"""The oracle node's decisions as plain functions on plain data: no chain, no SQLite, no HTTP.

Each returns a value that a collaborator of the node applies: who proposes an item and when
(:func:`rank`, :func:`due_at`), which items form a settle batch (:func:`settle_batch`), whom
to ask for signatures and which agreed sub-list to settle (:func:`peer_order`,
:func:`choose_quorum`, :func:`quorum_signatures`), where a deep reorg forked
(:func:`fork_point`), what a settle receipt marks (:func:`receipt_outcome`), how results are
fetched in bundles (:func:`bundle_cost`, :func:`plan_bundles`) and how long a failed attempt
waits (:func:`retry_delay`, the worker's too, from :mod:`oracle.protocol.failures`;
:func:`gives_up`, :func:`reveal_window_over`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

from oracle.protocol.attestation import CompactSignature, order_signatures
from oracle.protocol.failures import retry_delay
from oracle.protocol.verdict import VerdictCode, VerdictKey

__all__ = [
    "BUNDLE_ANSWER_BYTES",
    "BUNDLE_BYTES",
    "BUNDLE_ITEM_BYTES",
    "CLOCK_SKEW",
    "ITEM_MARKS",
    "SETTLE_LOOKAHEAD",
    "BundleEntry",
    "ItemEvent",
    "ReceiptOutcome",
    "acceptable_expiry",
    "bundle_cost",
    "choose_quorum",
    "due_at",
    "fork_point",
    "gives_up",
    "has_quorum",
    "peer_order",
    "plan_bundles",
    "quorum_signatures",
    "rank",
    "receipt_outcome",
    "retry_delay",
    "reveal_window_over",
    "settle_batch",
    "settle_window_over",
    "still_settleable",
    "threshold_reachable",
]

#: Bundled fetches (``POST /results`` on a worker): full-mode results up to this size travel in
#: bundles of at most ``BUNDLE_BYTES`` payload bytes; larger ones are fetched one by one.
BUNDLE_ITEM_BYTES = 4 << 20
BUNDLE_BYTES = 32 << 20
#: What a sampled-mode answer may take in a bundle (a larger one makes the bundle fail and the
#: answers are fetched one by one, up to ``MAX_ANSWER_BYTES`` each).
BUNDLE_ANSWER_BYTES = 2 << 20
#: The settle loop reads up to this many batches' worth of due verdicts per proposal.
SETTLE_LOOKAHEAD = 4
#: The one event ``settle`` logs per attestation, and the mark it gives the item.
ITEM_MARKS = {"JobSettled": "settled", "WorkerSlashed": "slashed", "AttestationSkipped": "moot"}


class _Pending(Protocol):
    """A decided, unsettled item (:class:`oracle.node.db.Unsettled` or ``StoredVerdict``)."""

    @property
    def key(self) -> VerdictKey: ...

    @property
    def decided_at(self) -> float: ...


class _Judged(Protocol):
    """A recorded verdict on a submission (:class:`oracle.node.db.StoredVerdict`)."""

    @property
    def key(self) -> VerdictKey: ...

    @property
    def verdict(self) -> int: ...


P = TypeVar("P", bound=_Pending)
J = TypeVar("J", bound=_Judged)


# -- settle: who proposes, what, with whose signatures ------------------------------------


def rank(index: int, job_id: int, oracles: int) -> int:
    """The place of the node at ``index`` (of ``oracles``, sorted by address) in the proposer
    order of a job: 0 leads, rank ``r`` steps in after ``r`` takeover delays."""
    return (index - job_id) % oracles


def due_at(decided_at: float, rank: int, takeover: float) -> float:
    """When an item decided at ``decided_at`` becomes due for a node of that ``rank``."""
    return decided_at + rank * takeover


def settle_batch(
    due: Sequence[P],
    now: float,
    *,
    index: int,
    oracles: int,
    batch_size: int,
    max_wait: float,
    takeover: float,
) -> list[P]:
    """The batch the node at ``index`` proposes at ``now``, or ``[]`` (nothing goes yet).

    Only items already due for this node count (:func:`due_at`; the node's SQLite query
    selects the same ones). A full batch (``batch_size`` items) goes at once; a partial one
    goes once its oldest item has waited ``max_wait`` past its due time. The batch is the
    first ``batch_size`` items by (job id, worker).
    """

    def rank_of(v: P) -> int:
        return rank(index, v.key.job_id, oracles)

    ready = [v for v in due if due_at(v.decided_at, rank_of(v), takeover) <= now]
    if not ready:
        return []
    oldest = max(now - v.decided_at - rank_of(v) * takeover for v in ready)
    if len(ready) < batch_size and oldest < max_wait:
        return []
    return sorted(ready, key=lambda v: (v.key.job_id, v.key.worker))[:batch_size]


def has_quorum(peer_signatures: int, threshold: int) -> bool:
    """Whether ``peer_signatures`` peers' signatures plus the node's own reach ``threshold``."""
    return peer_signatures + 1 >= threshold


def peer_order(peers: Sequence[str], first_job_id: int) -> list[str]:
    """The peers in the order a proposer asks them: starting at one that rotates with the
    batch's first job (no peer signs every batch), then round the list."""
    start = first_job_id % len(peers) if peers else 0
    return [*peers[start:], *peers[:start]]


def choose_quorum(
    groups: Mapping[tuple[int, ...], Sequence[CompactSignature]], threshold: int
) -> tuple[int, ...] | None:
    """Among the sub-lists peers agreed on (batch indexes → their signatures), the largest
    non-empty one that reaches ``threshold`` with the node's own signature; the first such of
    that size in ``groups``' order. None: no sub-list can be settled."""
    best: tuple[int, ...] | None = None
    for idx, sigs in groups.items():
        if idx and has_quorum(len(sigs), threshold) and (best is None or len(idx) > len(best)):
            best = idx
    return best


def quorum_signatures(
    own: CompactSignature, peers: Sequence[CompactSignature], threshold: int
) -> list[CompactSignature]:
    """The signatures a settle transaction carries: own and peers', by ascending signer (one
    each), the first ``threshold`` (at least one) of them."""
    return order_signatures(order_signatures([own, *peers])[: max(threshold, 1)])


# -- follow: deep reorgs ---------------------------------------------------------------------


def fork_point(
    recorded: Iterable[tuple[int, bytes]],
    chain_hashes: Mapping[int, bytes] | Callable[[int], bytes | None],
    deployment_block: int,
) -> int:
    """The block a deep reorg forked at: the newest recorded block whose hash the chain still
    has (a block's hash fixes every block below it).

    ``recorded`` is (number, hash), newest first; ``chain_hashes`` gives the chain's hash of a
    block, None (or absent) when the chain is now shorter than it. Read lazily, newest first,
    up to the first match. None matches: ``deployment_block - 1`` (re-read everything).
    """
    lookup = chain_hashes.get if isinstance(chain_hashes, Mapping) else chain_hashes
    for number, recorded_hash in recorded:
        on_chain = lookup(number)
        if on_chain is not None and on_chain == recorded_hash:
            return number
    return deployment_block - 1


# -- settle receipts -------------------------------------------------------------------------


class ItemEvent(NamedTuple):
    """One per-attestation event of a settle receipt (a name of :data:`ITEM_MARKS`)."""

    name: str
    job_id: int
    worker: str


class ReceiptOutcome(NamedTuple):
    """What a mined settle transaction changes: each item's mark, and the counts."""

    marks: list[tuple[VerdictKey, str]]
    settled: int
    skipped: int


def receipt_outcome(
    items: Sequence[VerdictKey] | None,
    events: Sequence[ItemEvent],
    verdicts_for_job: Mapping[int, Sequence[J]] | Callable[[int], Sequence[J]],
) -> ReceiptOutcome:
    """The marks a settle receipt gives: the contract logs exactly one item event per
    attestation, in batch order, so when the recorded batch ``items`` line up with the
    ``events`` by (job, worker), the i-th event marks the i-th item (settled, slashed or moot).

    Otherwise (no recorded batch, or one that does not line up) each ``JobSettled`` marks the
    worker's VALID verdicts on that job ``settled`` and each ``WorkerSlashed`` its INVALID ones
    ``slashed`` (read through ``verdicts_for_job``, only on this path); skipped items are left
    unmarked. ``settled`` counts the paid or slashed items, ``skipped`` the rest.
    """
    if (
        items is not None
        and len(items) == len(events)
        and all(
            (k.job_id, k.worker) == (e.job_id, e.worker) for k, e in zip(items, events, strict=True)
        )
    ):
        marks = [(k, ITEM_MARKS[e.name]) for k, e in zip(items, events, strict=True)]
    else:
        lookup: Callable[[int], Sequence[J]]
        if isinstance(verdicts_for_job, Mapping):
            table = verdicts_for_job
            lookup = lambda job_id: table.get(job_id, ())  # noqa: E731
        else:
            lookup = verdicts_for_job
        marks = []
        for e in events:
            for v in lookup(e.job_id):
                if v.key.worker != e.worker:
                    continue
                if (e.name == "JobSettled" and v.verdict == VerdictCode.VALID) or (
                    e.name == "WorkerSlashed" and v.verdict == VerdictCode.INVALID
                ):
                    marks.append((v.key, ITEM_MARKS[e.name]))
    settled = sum(e.name != "AttestationSkipped" for e in events)
    return ReceiptOutcome(marks, settled, len(events) - settled)


# -- verify: bundles and retries -------------------------------------------------------------


class BundleEntry(NamedTuple):
    """One submission asked of a worker in a bundle: its key, the request item, the bytes
    its answer may take."""

    key: VerdictKey
    item: dict[str, Any]
    cost: int


def bundle_cost(mode: str, result_bytes: int = 0) -> int | None:
    """The bytes a submission's answer may take in a bundle: a sampled-mode answer
    :data:`BUNDLE_ANSWER_BYTES`; a full result its size (``result_bytes``), or None above
    :data:`BUNDLE_ITEM_BYTES` (fetched alone)."""
    if mode == "sampled":
        return BUNDLE_ANSWER_BYTES
    return result_bytes if result_bytes <= BUNDLE_ITEM_BYTES else None


def plan_bundles(
    entries: Iterable[tuple[str, BundleEntry]],
    bundle_items: int,
    max_bytes: int = BUNDLE_BYTES,
) -> list[tuple[str, list[BundleEntry]]]:
    """The bundles to ask for: entries (worker URL, entry) grouped by URL (in first-seen
    order), each group cut in order into parts of at most ``bundle_items`` entries and
    ``max_bytes`` of cost (an entry costlier than that alone still makes a part). A part of
    one entry is no bundle: it is left out (fetched alone)."""
    groups: dict[str, list[BundleEntry]] = {}
    for url, entry in entries:
        groups.setdefault(url, []).append(entry)
    chunks: list[tuple[str, list[BundleEntry]]] = []
    for url, group in groups.items():
        parts: list[list[BundleEntry]] = [[]]
        size = 0
        for entry in group:
            if parts[-1] and (len(parts[-1]) >= bundle_items or size + entry.cost > max_bytes):
                parts.append([])
                size = 0
            parts[-1].append(entry)
            size += entry.cost
        chunks += [(url, part) for part in parts if len(part) > 1]
    return chunks


def gives_up(attempt: int, max_attempts: int) -> bool:
    """Whether a submission whose ``attempt``-th attempt just failed is given up."""
    return attempt >= max_attempts


def reveal_window_over(submitted_at: int, now: int, reveal_window: int) -> bool:
    """Whether a result submitted at block time ``submitted_at`` is past its reveal window at
    block time ``now`` (then a result not served is INVALID, no longer retried)."""
    return now > submitted_at + reveal_window


#: Seconds a peer's clock (the chain's ``now`` as it reads it) may run behind the proposer's.
CLOCK_SKEW = 60


def acceptable_expiry(valid_until: int, now: int, ttl: int, skew: int = CLOCK_SKEW) -> bool:
    """Whether a peer signs a proposal that expires at ``valid_until``: not already expired at
    the chain's ``now``, and no later than this node's own ``ttl`` (plus ``skew``) from now,
    so no signature of this node outlives the freshness it promises."""
    return now <= valid_until <= now + ttl + skew


def settle_window_over(deadline: int, now: int, refund_grace: int) -> bool:
    """Whether a job whose ``deadline`` has passed by more than the refund grace at block time
    ``now`` (then the requester may take the escrow back: a submission still undecided for a
    reason that may pass — its spec not available — is no longer worth retrying)."""
    return now > deadline + refund_grace


def threshold_reachable(answered: int, threshold: int) -> bool:
    """Whether ``answered`` peers (those that answered at all, agreeing or not) plus this node
    can make ``threshold`` signatures: if not, nothing this node proposes can settle."""
    return answered + 1 >= threshold


def still_settleable(
    verdict: int, status: int, live: tuple[bytes, int], key_commitment: bytes, key_block: int
) -> bool:
    """What ``settle`` would do with an item, from the chain's state: a VALID item needs an
    open job (status 1); either verdict needs the submission it names to be the live one
    (commitment and block). False: the contract would skip it, so it is not worth a
    transaction."""
    commitment, block = live
    if commitment != key_commitment or block != key_block:
        return False
    return verdict != 1 or status == 1
