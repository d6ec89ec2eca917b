"""`pouw`: the command line of the protocol.

This first version has `demo` (a full round trip on a local chain). The worker, oracle,
job and audit commands come with the live protocol loop.
"""

from __future__ import annotations

import sys

import click

from oracle.exceptions import PouwError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pouw — proof of useful work: escrowed AI compute jobs, verification far cheaper than
    the work, and a halving token emission shared by verified work alone."""


@cli.command()
@click.option("--network", default="ethereum:local:test", show_default=True,
              help="A local Ape network: the embedded chain, or ethereum:local:foundry (anvil).")
def demo(network: str) -> None:
    """Deploy pouw on a local chain and play a job round trip, checking the outcome.

    Exits non-zero if any job is paid twice or to the wrong worker, the cheater is not
    slashed, or the minted reward differs from emission * work // total work.
    """
    if ":local:" not in f"{network}:":
        raise click.BadParameter("the demo moves chain time: use a local network",
                                 param_hint="--network")
    from ape import accounts, chain, networks, project

    from oracle.simulate import check_round_trip, run_round_trip

    with networks.parse_network_choice(network):
        test = accounts.test_accounts
        out = run_round_trip(project, chain, test, network)
        problems = check_round_trip(out, str(test[2].address), str(test[3].address))
    for p in problems:
        click.echo(f"FAILED: {p}", err=True)
    if problems:
        sys.exit(1)
    click.echo("demo OK: every job paid once to the honest worker, the cheater slashed, "
               "the epoch reward exact to the wei")


def main() -> None:
    """Entry point that turns pouw errors into one-line messages."""
    try:
        cli(standalone_mode=True)
    except PouwError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
