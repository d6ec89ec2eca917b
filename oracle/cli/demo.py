"""The newcomer's command: ``demo``, a whole small network played on a local chain."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option(
    "--network",
    default="ethereum:local:test",
    show_default=True,
    help="A local Ape network: the embedded chain, or ethereum:local:foundry (anvil, "
    "started and stopped by the command unless one is already running).",
)
@click.option(
    "--epochs",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="How many epochs to play.",
)
@click.option(
    "--seed",
    type=int,
    default=7,
    show_default=True,
    help="Seed of the demo's choices (which worker cheats when, which oracles sign).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also draw the report (emission, work shares, prices) to this PNG.",
)
def demo(network: str, epochs: int, seed: int, report_path: str | None) -> None:
    """Deploy pouw on a local chain and play a small network for a few epochs.

    2 requesters post matmul (int8/fp32, full/sampled) and mlp jobs in ETH and an ERC-20;
    3 workers of different speeds take them (the slow one cheats now and then); 3 oracle
    keys verify every result and 2 sign each batch. Ends with a table per worker and per
    requester, checked against the contracts' own state; exits non-zero if any check fails.
    """
    if ":local:" not in f"{network}:":
        raise click.BadParameter(
            "the demo moves chain time: use a local network", param_hint="--network"
        )
    from ape import accounts, chain, networks, project
    from rich.console import Console

    from oracle.sim.demo import run_demo

    console = Console(width=None if sys.stdout.isatty() else 150)
    with networks.parse_network_choice(network):
        result = run_demo(
            project,
            chain,
            accounts.test_accounts,
            network,
            epochs=epochs,
            console=console,
            seed=seed,
        )
        if report_path:
            from oracle.client.report import draw_report, from_ape

            data = from_ape(result.market, chain)
            data.names = {str(w.account.address): w.name for w in result.workers}
            data.busy_seconds = {str(w.account.address): w.busy_s for w in result.workers}
            draw_report(data, report_path)
            click.echo(f"report written to {report_path}")
    for p in result.problems:
        click.echo(f"FAILED: {p}", err=True)
    if result.problems:
        sys.exit(1)
    click.echo(
        f"demo OK: {epochs} epoch(s); balances backed, every job paid at most once, "
        "every share of emission equal to the share of work"
    )
