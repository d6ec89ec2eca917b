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
    #: (job id, worker) per JobSettled log: who earned each escrow.
    settled: list[tuple[int, str]] = field(default_factory=list)
    #: Labels for addresses the caller knows (the demo's workers); others are shortened.
    names: dict[str, str] = field(default_factory=dict)
    #: Seconds each worker spent computing, where known (the demo): work per second.
    busy_seconds: dict[str, float] = field(default_factory=dict)

    def label(self, address: str) -> str:
        """A known name, else ``0x1234…abcd``."""
        return self.names.get(address) or f"{address[:6]}…{address[-4:]}"


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
        [(int(x.job_id), str(x.worker)) for x in market.JobSettled.range(0, stop)],
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
        [(int(e.args["job_id"]), str(e.args["worker"])) for e in events if e.name == "JobSettled"],
    )


def draw_report(data: ReportData, out: str) -> None:
    """Write the four-panel PNG to ``out``: the emission schedule, each worker's share of
    verified work per epoch, the price paid per work unit (one panel per asset unit), and
    what the protocol exists for: a worker's efficiency against its share of emission and of
    escrow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5))
    (ax_em, ax_share), (ax_price, ax_eff) = axes
    for ax in (ax_em, ax_share, ax_price):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    horizon = max(data.current_epoch + 1, 4 * data.halving_epochs)
    emission = [
        epoch_emission(data.initial_emission, data.halving_epochs, e) / 1e18 for e in range(horizon)
    ]
    ax_em.step(range(horizon), emission, where="post")
    ax_em.axvline(data.current_epoch, color="grey", linestyle=":", label="now")
    ax_em.set(
        title=f"Emission per epoch: halves every {data.halving_epochs} epochs",
        xlabel="epoch",
        ylabel="WORK tokens",
        ylim=(0, None),
    )
    ax_em.legend(fontsize=8)

    epochs = list(range(data.current_epoch + 1))
    by_worker: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for epoch, worker, units in data.work:
        by_worker[worker][epoch] += units
    totals = [sum(w.get(e, 0) for w in by_worker.values()) or 1 for e in epochs]
    bottom = [0.0] * len(epochs)
    order = sorted(by_worker, key=data.label)
    for worker in order:
        per_epoch = by_worker[worker]
        share = [100 * per_epoch.get(e, 0) / t for e, t in zip(epochs, totals, strict=True)]
        ax_share.bar(epochs, share, bottom=bottom, label=data.label(worker))
        bottom = [b + x for b, x in zip(bottom, share, strict=True)]
    ax_share.set(
        title="Share of each epoch's verified work = share of its emission",
        xlabel="epoch",
        ylabel="% of the epoch's work units",
        ylim=(0, 100),
    )

    prices: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for job_id, asset, amount, units in data.jobs:
        if asset == ZERO:
            prices["ETH"].append((job_id, amount / units / 1e9))  # gwei per unit
        else:
            prices[asset].append((job_id, amount / units))  # the token's base units
    ax_price.set(title="What requesters paid per work unit", xlabel="job id")
    twin = None
    for i, (asset, points) in enumerate(sorted(prices.items(), key=lambda kv: kv[0] != "ETH")):
        ax = ax_price if i == 0 else (twin := twin or ax_price.twinx())
        unit = "gwei / work unit" if asset == "ETH" else "base units / work unit"
        ax.scatter(
            [p[0] for p in points],
            [p[1] for p in points],
            s=14,
            color=f"C{i}",
            marker="o" if i == 0 else "^",
            label=f"{'ETH' if asset == 'ETH' else data.label(asset)} ({unit})",
        )
        ax.set_ylabel(unit, color=f"C{i}")
        ax.set_ylim(0, 1.25 * max(p[1] for p in points))
        ax.ticklabel_format(axis="y", useOffset=False)
    handles = [
        h for ax in (ax_price, twin) if ax is not None for h in ax.get_legend_handles_labels()[0]
    ]
    if handles:
        ax_price.legend(handles=handles, fontsize=8, loc="upper left")

    # Efficiency against reward: per worker, verified work (per second of compute where known)
    # against its share of all emission earned and of all escrow paid.
    units_of: dict[str, int] = defaultdict(int)
    for _, worker, units in data.work:
        units_of[worker] += units
    emitted_of: dict[str, float] = defaultdict(float)
    for epoch, worker, units in data.work:
        total = sum(u for e, _, u in data.work if e == epoch) or 1
        emitted_of[worker] += (
            epoch_emission(data.initial_emission, data.halving_epochs, epoch) * units / total
        )
    amount_of = {job_id: (asset, amount) for job_id, asset, amount, _ in data.jobs}
    escrow_of: dict[tuple[str, str], float] = defaultdict(float)
    paid_by_asset: dict[str, float] = defaultdict(float)
    for job_id, worker in data.settled:
        asset, amount = amount_of.get(job_id, (ZERO, 0))
        escrow_of[(worker, asset)] += amount
        paid_by_asset[asset] += amount
    all_emitted = sum(emitted_of.values()) or 1
    per_second = bool(data.busy_seconds)
    for i, worker in enumerate(order):
        x = (
            units_of[worker] / max(data.busy_seconds.get(worker, 0), 1e-9)
            if per_second
            else units_of[worker]
        )
        ax_eff.scatter(x, 100 * emitted_of[worker] / all_emitted, color=f"C{i}", marker="o", s=50)
        eth = paid_by_asset.get(ZERO, 0)
        if eth:
            ax_eff.scatter(
                x, 100 * escrow_of[(worker, ZERO)] / eth, color=f"C{i}", marker="s", s=40
            )
        ax_eff.annotate(  # labels of close points step apart vertically
            data.label(worker),
            (x, 100 * emitted_of[worker] / all_emitted),
            xytext=(8, 10 - 14 * (i % 3)),
            textcoords="offset points",
            fontsize=9,
        )
    ax_eff.scatter([], [], color="grey", marker="o", label="share of emission")
    ax_eff.scatter([], [], color="grey", marker="s", label="share of ETH escrow paid")
    ax_eff.set(
        title="Efficiency against reward: each worker's verified work and its shares",
        xlabel="verified work units per second of compute" if per_second else "verified work units",
        ylabel="% of the total",
        ylim=(0, 100),
    )
    ax_eff.legend(fontsize=8, loc="upper left")
    if by_worker:
        ax_share.legend(fontsize=8, title="worker")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
