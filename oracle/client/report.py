"""`pouw report`: the emission schedule, each worker's share of work per epoch and the price
paid per work unit, drawn from chain state alone.

It reads only what any auditor can read: the market's immutables (`INITIAL_EMISSION`,
`HALVING_EPOCHS`), `current_epoch()`, and the `JobCreated` and `WorkRecorded` logs — through
Ape (the embedded chain of `pouw demo --report`) or web3 (`pouw report` against a node).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from oracle.protocol.emission import epoch_emission

ZERO = "0x0000000000000000000000000000000000000000"


@dataclass
class ReportData:
    """What the report draws, as read from the chain."""

    initial_emission: int
    halving_epochs: int
    current_epoch: int
    #: (epoch, worker, work units) per WorkRecorded log.
    work: list[tuple[int, str, int]] = field(default_factory=list)
    #: (job id, asset, amount, work units) per JobCreated log.
    jobs: list[tuple[int, str, int, int]] = field(default_factory=list)


def from_ape(market: Any, chain: Any) -> ReportData:
    """Read the report's data through Ape contract handles."""
    stop = chain.blocks.height + 1
    return ReportData(
        market.INITIAL_EMISSION(),
        market.HALVING_EPOCHS(),
        market.current_epoch(),
        [
            (int(x.epoch), str(x.worker), int(x.work_units))
            for x in market.WorkRecorded.range(0, stop)
        ],
        [
            (int(x.job_id), str(x.asset), int(x.amount), int(x.work_units))
            for x in market.JobCreated.range(0, stop)
        ],
    )


def from_chain(chain: Any) -> ReportData:
    """Read the report's data through `oracle.chain.client.Chain` (web3), from the deploy block."""
    events = chain.events(chain.deployment.block, chain.head())
    return ReportData(
        chain.call("INITIAL_EMISSION"),
        chain.call("HALVING_EPOCHS"),
        chain.call("current_epoch"),
        [
            (int(e.args["epoch"]), str(e.args["worker"]), int(e.args["work_units"]))
            for e in events
            if e.name == "WorkRecorded"
        ],
        [
            (
                int(e.args["job_id"]),
                str(e.args["asset"]),
                int(e.args["amount"]),
                int(e.args["work_units"]),
            )
            for e in events
            if e.name == "JobCreated"
        ],
    )


def draw_report(data: ReportData, out: str) -> None:
    """Write the three-panel PNG to `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    horizon = max(data.current_epoch + 1, 4 * data.halving_epochs)
    emission = [
        epoch_emission(data.initial_emission, data.halving_epochs, e) / 1e18 for e in range(horizon)
    ]
    axes[0].step(range(horizon), emission, where="post")
    axes[0].set(title="Emission per epoch (halving)", xlabel="epoch", ylabel="WORK")

    epochs = list(range(data.current_epoch + 1))
    by_worker: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for epoch, worker, units in data.work:
        by_worker[worker][epoch] += units
    totals = [sum(w.get(e, 0) for w in by_worker.values()) or 1 for e in epochs]
    bottom = [0.0] * len(epochs)
    for worker, per_epoch in sorted(by_worker.items()):
        share = [per_epoch.get(e, 0) / t for e, t in zip(epochs, totals, strict=True)]
        axes[1].bar(epochs, share, bottom=bottom, label=worker[:10])
        bottom = [b + s for b, s in zip(bottom, share, strict=True)]
    axes[1].set(
        title="Share of verified work (= share of emission)",
        xlabel="epoch",
        ylabel="share",
        ylim=(0, 1),
    )

    prices: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for job_id, asset, amount, units in data.jobs:
        prices["ETH" if asset == ZERO else asset[:10]].append((job_id, amount / units))
    for asset, points in sorted(prices.items()):
        axes[2].scatter([p[0] for p in points], [p[1] for p in points], s=12, label=asset)
    axes[2].set(
        title="Price per work unit", xlabel="job id", ylabel="base units / work unit", yscale="log"
    )
    for ax, has in ((axes[1], by_worker), (axes[2], prices)):
        if has:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
