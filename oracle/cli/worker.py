"""The miner's command: ``worker run``, a long-running node that bonds, computes and claims."""

from __future__ import annotations

import click

from oracle.cli.errors import PouwGroup
from oracle.cli.options import (
    SPEC_STORES,
    KindChoice,
    connect,
    kind_names,
    load_signer,
    serve_forever,
    signer_on_chain,
)


@click.group(cls=PouwGroup)
def worker() -> None:
    """Run a worker (miner)."""


@worker.command("run")
@signer_on_chain()
@SPEC_STORES
@click.option("--db", "db_path", default=".pouw/worker.db", show_default=True)
@click.option(
    "--store",
    "store_dir",
    default=".pouw/worker-blobs",
    show_default=True,
    help="Directory of the worker's result blobs.",
)
@click.option(
    "--oracle-url",
    "oracle_urls",
    multiple=True,
    help="An oracle's base URL to announce this worker's endpoint to (repeat).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True)
@click.option("--public-url", help="URL oracles use to reach this worker (default: listen URL).")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=KindChoice(),
    help="Job kinds to accept (default: all).",
)
@click.option(
    "--max-units",
    type=click.IntRange(1),
    default=1 << 50,
    show_default=True,
    help="Largest job, in work units.",
)
@click.option(
    "--min-price",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Smallest escrow per work unit, in wei.",
)
@click.option(
    "--stake-slots",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    help="Live submissions to keep bonded for: each holds min_bond at stake until settled, "
    "so the worker bonds this many times min_bond.",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.01),
    default=0.3,
    show_default=True,
    help="Seconds between loop iterations.",
)
@click.option(
    "--kill-at",
    type=click.Choice(["after_compute", "after_commit_signed", "after_commit_broadcast"]),
    hidden=True,
)
def worker_run(
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
    spec_stores: tuple[str, ...],
    db_path: str,
    store_dir: str,
    oracle_urls: tuple[str, ...],
    host: str,
    port: int,
    public_url: str | None,
    kinds: tuple[str, ...],
    max_units: int,
    min_price: float,
    stake_slots: int,
    poll: float,
    kill_at: str | None,
) -> None:
    """Bond, compute open jobs, commit and serve results, claim pay and rewards."""
    from oracle.infra.logs import setup_logging
    from oracle.worker.service import Worker, WorkerConfig

    setup_logging()
    chain = connect(network, deployments_dir, rpc)
    cfg = WorkerConfig(
        rpc_url=rpc,
        db_path=db_path,
        store_dir=store_dir,
        spec_stores=spec_stores,
        oracle_urls=oracle_urls,
        kinds=kinds or kind_names(),
        max_work_units=max_units,
        min_price_per_unit=min_price,
        stake_slots=stake_slots,
        host=host,
        port=port,
        public_url=public_url,
        poll_interval=poll,
        kill_at=kill_at,
    )
    w = Worker(cfg, chain, load_signer(keyfile, password_file, password_env))
    url = w.start_server()
    click.echo(f"worker {w.address} serving {url}", err=True)
    serve_forever(w)
