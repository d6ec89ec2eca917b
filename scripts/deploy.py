"""Deploy pouw (WorkToken + JobMarket), wire it, and record the addresses.

\b
Examples:
  ape run deploy                                   # embedded chain, test account 0
  ape run deploy --network ethereum:local:foundry  # anvil
  ape run deploy --network ethereum:sepolia:node --account deployer \\
      --oracle 0xA... --oracle 0xB... --oracle 0xC... --threshold 2

Writes deployments/<ecosystem>-<network>.json, which `pouw` and its clients read.
On a local chain without --oracle, the first three test accounts after the deployer
are the oracle set. On a live network it asks for confirmation before spending funds.
"""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand, account_option, ape_cli_context

from oracle.chain import deployments
from oracle.chain.ape_deploy import deploy_protocol
from oracle.protocol.params import LIVE, LOCAL
from scripts._common import is_local, network_choice, pick_sender


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
    cli_ctx,
    provider,
    account,
    oracles,
    threshold,
    epoch_length,
    min_bond,
    allow_assets,
    mock_token,
    yes,
):
    from ape import accounts, project

    local = is_local(provider)
    sender = pick_sender(account, provider)
    if not oracles:
        if not local:
            raise click.UsageError("--oracle is required on a live network")
        oracles = tuple(str(a.address) for a in accounts.test_accounts[1:4])
    threshold = threshold or min(2, len(oracles))
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
