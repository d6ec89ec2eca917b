"""`pouw status`: where the emission stands and who did the verified work, from chain state.

Reads the market's immutables and views (epoch, emission, the token's supply) and its events
(``JobCreated``, ``JobSettled``, ``WorkerSlashed``, ``WorkRecorded``, ``RewardClaimed``) from
the deployment block: nothing a node keeps privately, so any two readers agree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from oracle.chain.client import ALL_EVENTS, ZERO_ADDRESS, Chain

__all__ = ["market_status"]


def pending_reward(chain: Chain, worker: str, epoch: int) -> int:
    """What ``claim([epoch])`` mints to ``worker`` once the epoch has ended and its verdicts
    are final (the market's rule: emission × work // total work, rounded down; 0 once
    claimed, as the claim zeroes the worker's work)."""
    total = int(chain.call("epoch_total_work", epoch))
    if total == 0:
        return 0
    work = int(chain.call("epoch_work", epoch, worker))
    return int(chain.call("epoch_emission", epoch)) * work // total


def market_status(chain: Chain) -> dict[str, Any]:
    """Epoch, emission, halving position, job counts and the per-worker leaderboard."""
    epoch = int(chain.call("current_epoch"))
    genesis, length = int(chain.call("GENESIS")), int(chain.call("EPOCH_LENGTH"))
    halving = int(chain.call("HALVING_EPOCHS"))
    now = chain.block_timestamp(chain.head())
    events = chain.events(chain.deployment.block, chain.head(), names=ALL_EVENTS)
    jobs: dict[int, tuple[str, int]] = {}
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "settled_jobs": 0,
            "slashed": 0,
            "units_epoch": 0,
            "units_all": 0,
            "escrow_earned": defaultdict(int),
            "tokens_claimed": 0,
            "claimed_epochs": set(),
            "work_epochs": set(),
        }
    )
    total_epoch = total_all = 0
    counts = {"created": 0, "settled": 0, "slashed": 0, "refunded": 0, "cancelled": 0}
    for e in events:
        a = e.args
        if e.name == "JobCreated":
            counts["created"] += 1
            asset = "ETH" if a["asset"] == ZERO_ADDRESS else a["asset"]
            jobs[int(a["job_id"])] = (asset, int(a["amount"]))
        elif e.name == "JobSettled":
            counts["settled"] += 1
            row = rows[a["worker"]]
            row["settled_jobs"] += 1
            asset, amount = jobs.get(int(a["job_id"]), ("ETH", 0))
            row["escrow_earned"][asset] += amount
        elif e.name == "WorkerSlashed":
            counts["slashed"] += 1
            rows[a["worker"]]["slashed"] += 1
        elif e.name == "WorkRecorded":
            row, units = rows[a["worker"]], int(a["work_units"])
            row["units_all"] += units
            row["work_epochs"].add(int(a["epoch"]))
            total_all += units
            if int(a["epoch"]) == epoch:
                row["units_epoch"] += units
                total_epoch += units
        elif e.name == "RewardClaimed":
            rows[a["worker"]]["tokens_claimed"] += int(a["amount"])
            rows[a["worker"]]["claimed_epochs"].add(int(a["epoch"]))
        elif e.name == "JobRefunded":
            counts["refunded"] += 1
        elif e.name == "JobCancelled":
            counts["cancelled"] += 1
    board = []
    for worker, row in rows.items():
        unclaimed = sorted(row["work_epochs"] - row["claimed_epochs"] - {epoch})
        claimable = sum(pending_reward(chain, worker, e) for e in unclaimed if e < epoch)
        board.append(
            {
                "worker": worker,
                "settled_jobs": row["settled_jobs"],
                "slashed": row["slashed"],
                "units_epoch": row["units_epoch"],
                "units_all": row["units_all"],
                "share_epoch": row["units_epoch"] / total_epoch if total_epoch else 0.0,
                "share_all": row["units_all"] / total_all if total_all else 0.0,
                "escrow_earned": dict(row["escrow_earned"]),
                "tokens_claimed": row["tokens_claimed"],
                "tokens_claimable": claimable,
            }
        )
    board.sort(key=lambda r: (-r["units_all"], -r["settled_jobs"], r["worker"]))
    halvings = epoch // halving
    return {
        "chain_id": chain.chain_id,
        "market": chain.market.address,
        "block": chain.head(),
        "time": now,
        "epoch": epoch,
        "epoch_length": length,
        "epoch_ends_in": max(0, genesis + (epoch + 1) * length - now),
        "emission_epoch": int(chain.call("epoch_emission", epoch)),
        "initial_emission": int(chain.call("INITIAL_EMISSION")),
        "halving_epochs": halving,
        "halvings": halvings,
        "next_halving_epoch": (halvings + 1) * halving,
        "minted": int(chain.token.functions.totalSupply().call()),
        "schedule_total": int(chain.token.functions.cap().call()),  # the schedule's total
        "work_epoch": total_epoch,
        "work_all": total_all,
        "jobs": counts,
        "leaderboard": board,
    }
