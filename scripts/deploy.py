"""Deploy pouw (WorkToken + JobMarket), wire it, and record the addresses.

\b
Examples:
  ape run deploy                                   # embedded chain, test account 0
  ape run deploy --network ethereum:local:foundry  # anvil
  ape run deploy --network ethereum:sepolia:node --account deployer \\
      --oracle 0xA... --oracle 0xB... --oracle 0xC... --threshold 2

Writes deployments/<ecosystem>-<network>.json, which `pouw` and its clients read.
On a local chain without --oracle, anvil's test accounts 5-7 are the oracle set (as for
`pouw deploy --dev`), 2 of them to settle. On a live network it asks for confirmation
before spending funds.
"""

from __future__ import annotations

from typing import Any

import click
from ape.cli import ConnectedProviderCommand, account_option, ape_cli_context

from oracle.chain import deployments
from oracle.chain.ape_deploy import deploy_protocol
from oracle.cli.deployer import oracle_set as deployer_oracle_set
from oracle.exceptions import ConfigError
from oracle.protocol.params import LIVE, LOCAL
from scripts._common import is_local, network_choice, pick_sender


def oracle_set(
    oracles: tuple[str, ...], threshold: int | None, local: bool
) -> tuple[tuple[str, ...], int]:
    """The oracles given, or on a local chain the dev set; the threshold given, or a majority:
    the rule of `pouw deploy` (:func:`oracle.cli.deployer.oracle_set`), which this calls."""
    if not oracles and not local:
        raise click.UsageError("--oracle is required on a live network")
    try:
        return deployer_oracle_set(oracles, threshold, dev=local)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


@click.command(cls=ConnectedProviderCommand, short_help="Deploy and wire pouw.", help=__doc__)
@ape_cli_context()
@account_option(prompt=False)
@click.option("--oracle", "oracles", multiple=True, help="An oracle signer address (repeat).")
@click.option("--threshold", type=int, default=None, help="Signatures needed to settle.")
@click.option("--epoch-length", type=int, default=None, help="Seconds per epoch.")
@click.option("--min-bond", type=int, default=None, help="Smallest worker bond, wei.")
@click.option(
    "--allow-asset",
    "allow_assets",
    multiple=True,
    help="An ERC-20 address to allow as escrow (repeat).",
)
@click.option(
    "--mock-token",
    is_flag=True,
    help="Local chains: also deploy a mintable MockToken and allow it.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation on a live network.")
def cli(
    cli_ctx: Any,
    provider: Any,
    account: Any,
    oracles: tuple[str, ...],
    threshold: int | None,
    epoch_length: int | None,
    min_bond: int | None,
    allow_assets: tuple[str, ...],
    mock_token: bool,
    yes: bool,
) -> None:
    from ape import project

    local = is_local(provider)
    sender = pick_sender(account, provider)
    oracles, threshold = oracle_set(oracles, threshold, local)
    params = (LOCAL if local else LIVE).with_overrides(epoch_length=epoch_length, min_bond=min_bond)
    choice = network_choice(provider)
    cli_ctx.logger.info(f"Deploying pouw to {choice} from {sender.address}")
    if not local and not yes:
        click.confirm(f"Spend gas from {sender.address} on {choice}?", abort=True)

    token, market, record = deploy_protocol(
        project,
        sender,
        sorted(oracles, key=lambda a: int(a, 16)),
        threshold,
        params,
        choice,
        provider.chain_id,
    )
    for asset in allow_assets:
        market.set_asset_allowed(asset, True, sender=sender)
        record.assets[asset] = asset
    if mock_token:
        if not local:
            raise click.UsageError("--mock-token is for local chains only")
        mock = project.MockToken.deploy("Mock USD", "mUSD", sender=sender)
        market.set_asset_allowed(mock, True, sender=sender)
        record.assets["mUSD"] = str(mock.address)
    path = deployments.save(record)
    click.echo(f"WorkToken  {token.address}")
    click.echo(f"JobMarket  {market.address}")
    click.echo(f"oracles    {', '.join(record.oracles)} (threshold {threshold})")
    click.echo(f"recorded   {path}")
