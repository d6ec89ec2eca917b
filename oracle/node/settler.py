"""Settling: batches of unsettled verdicts, signatures from peers, settle transactions (stored
before broadcast), their receipts, and the transactions left in flight by a restart.

Whether enough peers answer to reach the threshold is a state, not only a stream of
``peer_error`` lines: each proposal counts the peers that answered (agreeing or not), and
while the count is too low — or before anything was proposed — :meth:`Settler.check_peers`
asks their ``/health`` every ``peer_probe_interval`` seconds. Gauges ``peers_reachable`` and
``threshold_reachable``; ``threshold_unreachable`` is logged once when it goes (or starts)
down, ``threshold_reachable`` once when it is back.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus
from typing import Any, NamedTuple

import msgspec
import requests
from eth_keys.exceptions import BadSignature
from eth_utils import to_checksum_address

from oracle.chain.client import SentTx, TxSender, rpc_int
from oracle.exceptions import ChainError, PeerError
from oracle.infra.health import Reachability
from oracle.infra.logs import event
from oracle.node.context import NodeContext
from oracle.node.db import StoredVerdict, Unsettled
from oracle.node.decisions import (
    ITEM_MARKS,
    SETTLE_LOOKAHEAD,
    ItemEvent,
    choose_quorum,
    due_at,
    has_quorum,
    peer_order,
    quorum_signatures,
    rank,
    receipt_outcome,
    settle_batch,
    still_settleable,
    threshold_reachable,
)
from oracle.node.wire import Proposal, SignReply, to_item
from oracle.protocol.attestation import (
    Attestation,
    CompactSignature,
    recover_signer,
    settlement_digest,
    sign_settlement,
)
from oracle.protocol.settled import SettledBatch
from oracle.protocol.verdict import VerdictKey

__all__ = ["Settler", "attestation"]

log = logging.getLogger("pouw.oracle")


class _PeerReply(NamedTuple):
    """What asking one peer gave: whether it answered at all, and its agreed indexes and
    signature if it signed anything."""

    answered: bool
    signed: tuple[tuple[int, ...], CompactSignature] | None


def attestation(v: StoredVerdict | Unsettled) -> Attestation:
    """The attestation a recorded verdict signs."""
    k = v.key
    return Attestation(
        k.job_id,
        k.worker,
        k.commitment,
        k.submission_block,
        v.work_units,
        v.verdict,
        v.transcript_hash,
    )


class Settler:
    """Proposes due batches, collects ``threshold`` signatures and settles them on-chain."""

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.sender = TxSender(
            ctx.chain, ctx.account, on_signed=self._on_signed, next_nonce=ctx.db.next_nonce()
        )
        self._pending_digest: bytes | None = None
        self._cooldown: dict[bytes, float] = {}
        #: When this process started: verdicts decided before were carried across a restart.
        self._started = time.time()
        self.peers = Reachability(
            log,
            ctx.metrics,
            "threshold_reachable",
            down_event="threshold_unreachable",
            up_event="threshold_reachable",
        )
        self._peers_probed = -float("inf")

    def _peers_seen(self, answered: int) -> None:
        """Record how many peers answered the last round; log a change of reachability."""
        threshold = self.ctx.threshold
        self.ctx.metrics.set("peers_reachable", answered)
        self.peers.observe(
            threshold_reachable(answered, threshold),
            answered=answered,
            needed=max(threshold - 1, 0),
            threshold=threshold,
            peers=len(self.ctx.cfg.peers),
        )

    def check_peers(self, now: float | None = None) -> bool | None:
        """Ask every peer's ``/health`` if the threshold is not known reachable (at start-up,
        or while too few answered), at most every ``peer_probe_interval`` seconds; a node
        whose threshold is 1 needs no peer. Returns the state (None: not probed yet)."""
        if self.ctx.threshold <= 1:
            if self.peers.up is None:
                self._peers_seen(0)
            return self.peers.up
        now = time.monotonic() if now is None else now
        if self.peers.up or now - self._peers_probed < self.ctx.cfg.peer_probe_interval:
            return self.peers.up
        self._peers_probed = now
        answered = 0
        for peer in self.ctx.cfg.peers:
            try:
                resp = self.ctx.http.get(
                    f"{peer.rstrip('/')}/health", timeout=min(self.ctx.cfg.fetch_timeout, 2.0)
                )
            except requests.RequestException:
                continue
            answered += resp.status_code == HTTPStatus.OK
        self._peers_seen(answered)
        return self.peers.up

    def _digest(self, batch: list[Attestation], valid_until: int) -> bytes:
        chain = self.ctx.chain
        return settlement_digest(chain.chain_id, chain.market.address, batch, valid_until)

    def settle_ready(self, now: float | None = None) -> int:
        """Propose and settle one batch if one is due; returns the number of items settled."""
        cfg = self.ctx.cfg
        now = time.time() if now is None else now
        n = len(self.ctx.oracles)
        due = self.ctx.db.unsettled(
            limit=SETTLE_LOOKAHEAD * cfg.batch_size,
            now=now,
            due_for=(self.ctx.index, n, cfg.takeover),
        )
        # No per-item chain reads here: verdicts whose submission was settled, slashed,
        # refunded or cancelled are marked by the followed events (Follower.follow), and an
        # item that went stale since is skipped by the contract with ``AttestationSkipped``,
        # which :meth:`_apply_receipt` marks moot — the same test the contract applies, at the
        # moment that counts.
        items = settle_batch(
            due,
            now,
            index=self.ctx.index,
            oracles=n,
            batch_size=cfg.batch_size,
            max_wait=cfg.max_wait,
            takeover=cfg.takeover,
        )
        batch = [attestation(v) for v in items]
        items_digest = self._digest(batch, 0)  # the same items, whatever their expiry
        if self._cooldown.get(items_digest, 0) > now:
            return 0  # before any chain read: a batch waiting on peers costs no RPC per poll
        kept = self._drop_settled(items, now)
        if not kept:
            return 0
        if len(kept) != len(items):
            batch = [attestation(v) for v in kept]
        # Signatures expire (the contract's freshness rule): a batch relayed later than
        # ``signature_ttl`` seconds from now must be signed again.
        valid_until = self.ctx.chain.now() + cfg.signature_ttl
        chosen, sigs = self._collect(batch, valid_until)
        if chosen is None:
            self._cooldown[items_digest] = now + cfg.max_wait
            return 0
        self.ctx.kill("after_sign")
        return self._send_settle(chosen, valid_until, sigs)

    def finalize_due(self, limit: int = 8) -> int:
        """Finalize settled batches whose challenge window is over; returns how many this
        node finalized.

        Any batch, whoever settled it (the market pays whoever is owed; the caller only pays
        gas). The node of rank ``r`` for a batch (:func:`~oracle.node.decisions.rank` with
        the batch id for the job id) steps in ``r`` takeover delays after ``final_at``, so one node
        normally sends it. The chain's record is read first: a batch finalized by someone
        else (or replaced by a reorg) is marked and costs no transaction.
        """
        db, chain, cfg = self.ctx.db, self.ctx.chain, self.ctx.cfg
        n = max(len(self.ctx.oracles), 1)
        now = chain.now()
        done = 0
        for batch_id, text in db.pending_batches(final_by=now, limit=limit):
            batch = SettledBatch.from_json(text)
            if due_at(batch.final_at, rank(self.ctx.index, batch_id, n), cfg.takeover) > now:
                continue
            record = bytes(chain.call("batch_record", batch_id))
            if record != batch.record_hash():
                # Zero: finalized already (its BatchFinalized is on the way); otherwise a
                # reorg put another batch under this id, which the follower records anew.
                db.mark_batch_final(batch_id)
                continue
            fn = chain.market.functions.finalize(*batch.args())
            try:
                sent = self.sender.sign(fn, gas=200_000 + 40_000 * len(batch.items))
                self._on_signed(sent, "finalize")
                self.sender.broadcast(sent.raw)
                rcpt = self.sender.wait(sent.tx_hash, decoded=False)
            except ChainError as exc:
                self.ctx.metrics.inc("finalize_failures")
                event(log, "finalize_failed", logging.WARNING, batch=batch_id, error=str(exc))
                continue
            ok = rpc_int(rcpt["status"]) == 1
            db.set_tx_state(sent.tx_hash, "mined" if ok else "failed")
            if ok:
                db.mark_batch_final(batch_id)
                done += 1
                self.ctx.metrics.inc("batches_finalized")
                event(log, "finalized", batch=batch_id, items=len(batch.items), tx=sent.tx_hash)
        return done

    def _drop_settled(self, items: list[Unsettled], now: float) -> list[Unsettled]:
        """Items this node did not decide since it started, or is taking over from a peer,
        may already be settled by someone else (events this node has not followed yet, or
        followed by a node that then restarted): they are read on the chain first, and the
        ones ``settle`` would skip are marked and left out, rather than costing a transaction
        each. Items decided since start and led by this node are not read (no RPC per item on
        the fast path)."""
        fresh_after = max(self._started, now - self.ctx.cfg.takeover)
        old = [v for v in items if v.decided_at < fresh_after]
        if not old:
            return items
        chain, gone = self.ctx.chain, []
        for v in old:
            k = v.key
            live = chain.submission(k.job_id, k.worker)
            status = chain.job_status(k.job_id) if v.verdict == 1 else 1
            if not still_settleable(v.verdict, status, live, k.commitment, k.submission_block):
                gone.append(k)
        if not gone:
            return items
        self.ctx.db.mark_onchain([(k, "moot") for k in gone])
        self.ctx.metrics.inc("items_found_settled", len(gone))
        event(log, "already_settled", items=len(gone))
        dropped = set(gone)
        return [v for v in items if v.key not in dropped]

    def sign_own(self, batch: list[Attestation], valid_until: int, role: str) -> CompactSignature:
        """Sign a batch with the node's key and record it (``role``: proposer or peer)."""
        chain = self.ctx.chain
        digest = self._digest(batch, valid_until)
        sig = sign_settlement(
            self.ctx.account, chain.chain_id, chain.market.address, batch, valid_until
        )
        keys = [VerdictKey(a.job_id, a.worker, a.commitment, a.submission_block) for a in batch]
        self.ctx.db.record_signed(digest, keys, role, sig.signer, sig.r, sig.vs)
        self.ctx.metrics.inc("signatures_given")
        return sig

    def _collect(
        self, batch: list[Attestation], valid_until: int
    ) -> tuple[list[Attestation] | None, list[CompactSignature]]:
        """Gather ``threshold`` signatures over the batch or a sub-list of it."""
        threshold = self.ctx.threshold
        own = self.sign_own(batch, valid_until, "proposer")
        if threshold <= 1:
            return batch, [own]
        groups: dict[tuple[int, ...], list[CompactSignature]] = {}
        body = msgspec.json.encode(
            Proposal(items=[to_item(a) for a in batch], valid_until=valid_until)
        )
        whole = tuple(range(len(batch)))
        answered = 0
        # Peers in turn until threshold - 1 of them agree on the whole batch: signatures
        # beyond the threshold cost the peers' CPU and add nothing on-chain.
        for peer in peer_order(self.ctx.cfg.peers, batch[0].job_id):
            reply = self._ask_peer(peer, body, batch, valid_until)
            answered += reply.answered
            if reply.signed is not None:
                got = reply.signed
                groups.setdefault(got[0], []).append(got[1])
                if has_quorum(len(groups.get(whole, ())), threshold):
                    break
        self._peers_seen(answered)
        best = choose_quorum(groups, threshold)
        if best is None:
            return None, []
        sub = [batch[i] for i in best]
        mine = own if len(sub) == len(batch) else self.sign_own(sub, valid_until, "proposer")
        return sub, quorum_signatures(mine, groups[best], threshold)

    def _ask_peer(
        self, peer: str, body: bytes, batch: list[Attestation], valid_until: int
    ) -> _PeerReply:
        chain = self.ctx.chain
        answered = False
        try:
            resp = self.ctx.http.post(
                f"{peer.rstrip('/')}/sign",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.ctx.cfg.fetch_timeout,
            )
            if resp.status_code != HTTPStatus.OK:
                raise PeerError(f"HTTP {resp.status_code}")
            answered = True  # a peer that disagrees, or signs badly, is still there
            reply = msgspec.json.decode(resp.content, type=SignReply)
            idx = tuple(reply.agreed)
            if not idx:
                return _PeerReply(True, None)
            if any(not 0 <= i < len(batch) for i in idx) or list(idx) != sorted(set(idx)):
                raise PeerError("bad agreed index list")
            sig = reply.signature()
            sub = [batch[i] for i in idx]
            signer = recover_signer(chain.chain_id, chain.market.address, sub, valid_until, sig)
            if (
                signer != sig.signer
                or signer not in self.ctx.oracles
                or signer == self.ctx.account.address
            ):
                raise PeerError(f"signature recovers to {signer}, not an eligible peer")
            self.ctx.db.record_signed(
                self._digest(sub, valid_until),
                [VerdictKey(a.job_id, a.worker, a.commitment, a.submission_block) for a in sub],
                "collected",
                sig.signer,
                sig.r,
                sig.vs,
            )
            return _PeerReply(True, (idx, sig))
        except (
            requests.RequestException,
            PeerError,
            ValueError,
            msgspec.MsgspecError,
            BadSignature,  # a peer answering r = 0, say: eth_keys' own error
        ) as exc:
            self.ctx.metrics.inc("peer_errors")
            event(log, "peer_error", logging.WARNING, peer=peer, error=str(exc))
            return _PeerReply(answered, None)

    def _on_signed(self, sent: SentTx, label: str) -> None:
        self.ctx.db.record_tx(sent.nonce, sent.tx_hash, sent.raw, label, self._pending_digest)
        self.ctx.kill("after_tx_signed")

    def _send_settle(
        self, batch: list[Attestation], valid_until: int, sigs: list[CompactSignature]
    ) -> int:
        if not batch or len(sigs) < max(self.ctx.threshold, 1):
            return 0
        digest = self._digest(batch, valid_until)
        fn = self.ctx.chain.market.functions.settle(
            [a.as_tuple() for a in batch], valid_until, [s.as_tuple() for s in sigs]
        )
        self._pending_digest = digest
        try:
            sent = self.sender.sign(fn, gas=400_000 + 60_000 * len(batch))
            self._on_signed(sent, "settle")
            self.sender.broadcast(sent.raw)
            self.ctx.kill("after_broadcast")
            rcpt = self.sender.wait(sent.tx_hash, decoded=False)
        except ChainError as exc:
            self.ctx.metrics.inc("settle_failures")
            event(log, "settle_failed", logging.WARNING, error=str(exc))
            return 0
        finally:
            self._pending_digest = None
        return self._apply_receipt(sent.tx_hash, rcpt, digest)

    def _apply_receipt(self, tx_hash: bytes, rcpt: Any, digest: bytes | None) -> int:
        """Record a mined settle transaction and the fate of each of its items
        (:func:`~oracle.node.decisions.receipt_outcome`), in one SQLite transaction: settled,
        slashed, or moot (a VALID item whose job is no longer open, an item that is not the
        worker's live submission, or one whose work units differ: none of these can become
        settleable again)."""
        db, metrics = self.ctx.db, self.ctx.metrics
        evs = [
            ItemEvent(e.name, int(e.args["job_id"]), to_checksum_address(e.args["worker"]))
            for e in self.ctx.chain.receipt_events(rcpt, tuple(ITEM_MARKS))
        ]
        items = db.batch_items(digest) if digest is not None else None
        marks, settled, skipped = receipt_outcome(items, evs, db.verdicts_for_job)
        db.apply_settlement(
            tx_hash, "mined" if rpc_int(rcpt["status"]) == 1 else "failed", digest, marks
        )
        now = time.time()
        paid = [k for k, mark in marks if mark in ("settled", "slashed")]
        for seen in db.seen_at(paid):
            metrics.observe("settle_latency_seconds", max(now - seen, 0.0))
        metrics.inc("settle_txs")
        metrics.inc("items_settled", settled)
        metrics.inc("items_skipped", skipped)
        gas = rpc_int(rcpt["gasUsed"])
        metrics.inc("gas_used", gas)
        event(log, "settled", tx=tx_hash, settled=settled, skipped=skipped, gas=gas)
        return settled

    def resume_transactions(self) -> None:
        """After a restart: settle the fate of every transaction signed but not known mined.

        A mined one is applied; a missing one is re-broadcast with the same bytes and nonce.
        """
        db = self.ctx.db
        for tx in db.txs("signed"):
            rcpt = self.sender.receipt(tx["tx_hash"])
            if rcpt is None:
                event(log, "rebroadcast", nonce=tx["nonce"], tx=tx["tx_hash"])
                self.sender.broadcast(tx["raw"])
                try:
                    rcpt = self.sender.wait(tx["tx_hash"])
                except ChainError as exc:
                    event(log, "rebroadcast_failed", logging.WARNING, error=str(exc))
                    db.set_tx_state(tx["tx_hash"], "failed")
                    continue
            if tx["label"] == "finalize":
                # Nothing to apply: the batch is marked final when its BatchFinalized is
                # followed (or when finalize_due finds its record gone).
                ok = rpc_int(rcpt["status"]) == 1
                db.set_tx_state(tx["tx_hash"], "mined" if ok else "failed")
                continue
            self._apply_receipt(tx["tx_hash"], rcpt, tx["digest"])
