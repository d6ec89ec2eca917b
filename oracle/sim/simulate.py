"""A full job round trip on a connected local chain, with every event printed as it happens.

Deploys pouw, then: a requester posts seeded matmul jobs (int8 and fp32, escrowed in ETH),
two workers bond, an honest worker computes every job and a cheater returns a wrong result
for one; each commits keccak(address ‖ Merkle root). Once the block after each submission
exists, three oracle keys derive the challenge seed from its hash, verify with Freivalds'
check and sign one EIP-712 batch; two signatures (threshold 2) settle it. The chain then
moves past the epoch, the honest worker claims its emission and withdraws its escrow.

This is the short form of `pouw demo`; `ape run simulate` runs it on any local network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from oracle.chain.ape_batches import finalize_batches, settled_batch
from oracle.chain.ape_deploy import deploy_protocol
from oracle.compute.verify import check_full, prepare
from oracle.compute.work import compute, result_root
from oracle.protocol.attestation import (
    SIGNATURE_TTL,
    Attestation,
    order_signatures,
    sign_settlement,
)
from oracle.protocol.challenge import challenge_block, challenge_seed
from oracle.protocol.commitment import commitment
from oracle.protocol.emission import reward
from oracle.protocol.hashing import keccak256
from oracle.protocol.params import LOCAL
from oracle.protocol.results import encode_result
from oracle.protocol.spec import parse_spec, spec_hash, work_units
from oracle.protocol.verdict import VerdictCode

ZERO = "0x0000000000000000000000000000000000000000"
THRESHOLD = 2


@dataclass
class RoundTrip:
    """What happened, for the caller to check against the chain."""

    jobs: list[int] = field(default_factory=list)
    settled: dict[int, str] = field(default_factory=dict)
    slashed: list[tuple[int, str]] = field(default_factory=list)
    minted: int = 0
    expected_reward: int = 0
    escrow_withdrawn: int = 0


def oracle_keys(n: int = 3) -> list[LocalAccount]:
    """Deterministic demo oracle keys (never use them for anything real)."""
    keys = [Account.from_key(keccak256(f"pouw demo oracle {i}".encode())) for i in range(n)]
    return sorted(keys, key=lambda a: int(a.address, 16))


def demo_specs(n: int = 96) -> list[dict[str, Any]]:
    """Small seeded matmul jobs: two int8, one fp32, all verified in full mode."""
    return [
        {
            "version": 1,
            "kind": "matmul",
            "dtype": dtype,
            "m": n,
            "n": n,
            "k": n,
            "inputs": {"seed": seed},
            "verify": {"mode": "full"},
        }
        for dtype, seed in (("int8", 1), ("fp32", 2), ("int8", 3))
    ]


def run_round_trip(
    project: Any, chain: Any, accounts: Any, network: str, console: Console | None = None
) -> RoundTrip:
    """Run the round trip on the connected chain; returns what happened."""
    console = console or Console()
    out = RoundTrip()
    keys = oracle_keys()
    deployer, requester, honest, cheater = (accounts[i] for i in range(4))
    token, market, _ = deploy_protocol(
        project, deployer, [k.address for k in keys], THRESHOLD, LOCAL, network, chain.chain_id
    )
    console.print(f"[bold]deployed[/] WorkToken {token.address}  JobMarket {market.address}")

    specs = [parse_spec(s) for s in demo_specs()]
    price = 10**16
    deadline = chain.pending_timestamp + 3_600
    tx = market.create_jobs(
        [(spec_hash(s), work_units(s), ZERO, price, deadline) for s in specs],
        sender=requester,
        value=price * len(specs),
    )
    for log in tx.decode_logs(market.JobCreated):
        out.jobs.append(log.job_id)
        console.print(
            f"JobCreated    job {log.job_id}  units {log.work_units:,}  "
            f"escrow {log.amount / 1e18} ETH"
        )

    # Each live submission holds min_bond of its worker's bond: one per job it commits to.
    market.register(sender=honest, value=LOCAL.min_bond * len(out.jobs))
    market.register(sender=cheater, value=LOCAL.min_bond)
    results: dict[tuple[int, str], bytes] = {}
    for job_id, spec in zip(out.jobs, specs, strict=True):
        result = compute(spec)
        for w in (honest, cheater) if job_id == out.jobs[0] else (honest,):
            served = result.copy()
            if w is cheater:  # a lazy cheater: one wrong element
                served.flat[0] += 1
            root = result_root(spec, served)
            results[(job_id, str(w.address))] = encode_result(served)
            tx = market.submit_result(job_id, commitment(str(w.address), root), sender=w)
            log = tx.decode_logs(market.ResultSubmitted)[0]
            console.print(
                f"ResultSubmitted job {job_id}  by {w.address[:10]}  block {log.block_number}"
            )
    chain.mine()  # the challenge block after the last submission

    batch: list[Attestation] = []
    for (job_id, worker), data in results.items():
        sub = market.submissions(job_id, worker)
        block_hash = bytes(chain.blocks[challenge_block(sub.block_number)].hash)
        spec = specs[out.jobs.index(job_id)]
        verdict = check_full(prepare(spec, challenge_seed(block_hash, job_id, worker)), data)
        console.print(
            f"verified      job {job_id}  worker {worker[:10]}  "
            f"{verdict.verdict.name}  {verdict.reason}"
        )
        batch.append(
            Attestation(
                job_id,
                worker,
                bytes(sub.commitment),
                int(sub.block_number),
                work_units(spec),
                int(verdict.verdict),
                verdict.transcript_hash,
            )
        )
    # INVALID first is not required (a live submission is slashed either way); it reads well.
    batch.sort(key=lambda a: a.verdict != VerdictCode.INVALID)
    valid_until = chain.pending_timestamp + SIGNATURE_TTL
    sigs = order_signatures(
        sign_settlement(k, chain.chain_id, market.address, batch, valid_until)
        for k in keys[:THRESHOLD]
    )
    settle_tx = tx = market.settle(
        [a.as_tuple() for a in batch],
        valid_until,
        [s.as_tuple() for s in sigs],
        sender=requester,
    )
    for log in tx.decode_logs(market.WorkerSlashed):
        out.slashed.append((log.job_id, str(log.worker)))
        console.print(
            f"[red]WorkerSlashed[/] job {log.job_id}  worker {log.worker[:10]}  "
            f"bond {log.amount / 1e18} ETH to the requester"
        )
    for log in tx.decode_logs(market.JobSettled):
        out.settled[log.job_id] = str(log.worker)
        console.print(f"[green]JobSettled[/]    job {log.job_id}  worker {log.worker[:10]}")

    # The batch is paid once its challenge window is over (nobody disputes it here), and the
    # epoch's emission can be claimed once the epoch has ended and its batches are final.
    epoch = market.current_epoch()
    chain.pending_timestamp += LOCAL.epoch_length
    chain.mine()
    pending = [b for b in [settled_batch(market, settle_tx)] if b is not None]
    finalize_batches(market, chain, pending, requester)
    out.expected_reward = reward(
        LOCAL.initial_emission,
        LOCAL.halving_epochs,
        epoch,
        market.epoch_work(epoch, honest),
        market.epoch_total_work(epoch),
    )
    tx = market.claim([epoch], sender=honest)
    out.minted = sum(log.amount for log in tx.decode_logs(market.RewardClaimed))
    tx = market.withdraw(ZERO, sender=honest)
    out.escrow_withdrawn = tx.decode_logs(market.Withdrawn)[0].amount

    table = Table(title="round trip")
    for col in ("worker", "jobs paid", "work units", "escrow (ETH)", "WORK minted", "slashed"):
        table.add_column(col)
    for w in (honest, cheater):
        paid = [j for j, who in out.settled.items() if who == str(w.address)]
        units = sum(work_units(specs[out.jobs.index(j)]) for j in paid)
        table.add_row(
            w.address[:10],
            str(len(paid)),
            f"{units:,}",
            f"{price * len(paid) / 1e18}",
            f"{token.balanceOf(w) / 1e18:.3f}",
            str(sum(1 for _, who in out.slashed if who == str(w.address))),
        )
    console.print(table)
    return out


def check_round_trip(out: RoundTrip, honest: str, cheater: str) -> list[str]:
    """Problems with a round trip's outcome (empty when everything is as it must be)."""
    problems = []
    if set(out.settled) != set(out.jobs) or set(out.settled.values()) != {honest}:
        problems.append(f"every job must be paid to the honest worker once: {out.settled}")
    if [w for _, w in out.slashed] != [cheater]:
        problems.append(f"the cheater must be slashed once: {out.slashed}")
    if out.minted != out.expected_reward or out.minted == 0:
        problems.append(f"minted {out.minted} != expected reward {out.expected_reward}")
    if out.escrow_withdrawn != 10**16 * len(out.jobs):
        problems.append(f"escrow withdrawn {out.escrow_withdrawn} is not every job's escrow")
    return problems


__all__ = ["RoundTrip", "check_round_trip", "demo_specs", "oracle_keys", "run_round_trip"]
