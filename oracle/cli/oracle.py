"""The oracle operator's command: ``oracle run``, a long-running verifying and signing node."""

from __future__ import annotations

import click

from oracle.cli.errors import PouwGroup
from oracle.cli.options import (
    SPEC_STORES,
    connect,
    load_signer,
    serve_forever,
    signer_on_chain,
)


@click.group(cls=PouwGroup)
def oracle() -> None:
    """Run an oracle node."""


@oracle.command("run")
@signer_on_chain()
@SPEC_STORES
@click.option(
    "--db", "db_path", default=".pouw/oracle.node.db", show_default=True, help="SQLite state file."
)
@click.option("--peer", "peers", multiple=True, help="Base URL of a peer oracle (repeat).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=int, default=0, show_default=True, help="Listen port (0: any).")
@click.option("--confirmations", type=click.IntRange(0, 1000), default=2, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 128), default=32, show_default=True)
@click.option(
    "--max-wait",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Seconds the oldest verdict waits before a partial batch is settled.",
)
@click.option("--poll", type=click.FloatRange(0.01), default=0.5, show_default=True)
@click.option(
    "--signature-ttl",
    type=click.IntRange(60, 86_400),
    default=900,
    show_default=True,
    help="Seconds a settlement signature stays valid on-chain (its signed validUntil); "
    "peers' proposals valid for longer are refused.",
)
@click.option(
    "--worker-url",
    "worker_urls",
    multiple=True,
    help="Static ADDRESS=URL of a worker's result server (repeat).",
)
@click.option(
    "--kill-at",
    type=click.Choice(["after_verdict", "after_sign", "after_tx_signed", "after_broadcast"]),
    hidden=True,
)
def oracle_run(
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
    spec_stores: tuple[str, ...],
    db_path: str,
    peers: tuple[str, ...],
    host: str,
    port: int,
    confirmations: int,
    batch_size: int,
    max_wait: float,
    poll: float,
    signature_ttl: int,
    worker_urls: tuple[str, ...],
    kill_at: str | None,
) -> None:
    """Follow the chain, verify submissions, sign and settle attestations (k-of-n)."""
    from oracle.exceptions import ConfigError
    from oracle.infra.logs import setup_logging
    from oracle.node.service import OracleConfig, OracleNode

    setup_logging()
    static = {}
    for item in worker_urls:
        addr, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise ConfigError(f"--worker-url must be ADDRESS=http(s)://..., got {item!r}")
        static[addr] = url
    chain = connect(network, deployments_dir, rpc)
    cfg = OracleConfig(
        rpc_url=rpc,
        db_path=db_path,
        spec_stores=spec_stores,
        confirmations=confirmations,
        poll_interval=poll,
        batch_size=batch_size,
        max_wait=max_wait,
        signature_ttl=signature_ttl,
        peers=peers,
        host=host,
        port=port,
        worker_urls=static,
        kill_at=kill_at,
    )
    node = OracleNode(cfg, chain, load_signer(keyfile, password_file, password_env))
    url = node.start_server()
    click.echo(f"oracle {node.account.address} serving {url}", err=True)
    serve_forever(node)
