"""Play one full job round trip on a local chain and print the events as they happen.

\b
  ape run simulate                                   # embedded chain
  ape run simulate --network ethereum:local:foundry  # anvil

Deploys a fresh pouw, posts seeded matmul jobs, lets an honest worker and a cheater commit,
verifies with Freivalds' check from the challenge block's hash, settles with 2 of 3 oracle
signatures, then claims the epoch's emission and withdraws. Exits non-zero if the outcome
is not exactly right.
"""

from __future__ import annotations

from typing import Any

import click
from ape.cli import ConnectedProviderCommand, ape_cli_context

from oracle.sim.simulate import check_round_trip, run_round_trip
from scripts._common import is_local, network_choice


@click.command(cls=ConnectedProviderCommand, short_help="A full job round trip.", help=__doc__)
@ape_cli_context()
def cli(cli_ctx: Any, provider: Any) -> None:
    from ape import accounts, chain, project

    if not is_local(provider):
        raise click.UsageError("simulate moves time and uses test accounts: local chains only")
    test = accounts.test_accounts
    out = run_round_trip(project, chain, test, network_choice(provider))
    problems = check_round_trip(out, str(test[2].address), str(test[3].address))
    for p in problems:
        cli_ctx.logger.error(p)
    if problems:
        raise SystemExit(1)
    click.echo("round trip OK: every job paid once, the cheater slashed, rewards exact")
