"""`pouw`: the command line of the protocol.

`demo` plays a full round trip on the embedded chain. `node` starts anvil; `oracle run` and
`worker run` are the long-running services (web3.py, SQLite); `job create` / `job show`
post and inspect jobs. Every chain command reads the deployment record of `--network` from
`--deployments` and turns bad input into a one-line error with a non-zero exit.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from oracle.exceptions import PouwError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pouw — proof of useful work: escrowed AI compute jobs, verification far cheaper than
    the work, and a halving token emission shared by verified work alone."""


@cli.command()
@click.option("--network", default="ethereum:local:test", show_default=True,
              help="A local Ape network: the embedded chain, or ethereum:local:foundry (anvil, "
                   "started and stopped by the command unless one is already running).")
@click.option("--epochs", type=click.IntRange(1, 20), default=3, show_default=True,
              help="How many epochs to play.")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Seed of the demo's choices (which worker cheats when, which oracles sign).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw the report (emission, work shares, prices) to this PNG.")
def demo(network: str, epochs: int, seed: int, report_path: str | None) -> None:
    """Deploy pouw on a local chain and play a small network for a few epochs.

    2 requesters post matmul (int8/fp32, full/sampled) and mlp jobs in ETH and an ERC-20;
    3 workers of different speeds take them (the slow one cheats now and then); 3 oracle
    keys verify every result and 2 sign each batch. Ends with a table per worker and per
    requester, checked against the contracts' own state; exits non-zero if any check fails.
    """
    if ":local:" not in f"{network}:":
        raise click.BadParameter("the demo moves chain time: use a local network",
                                 param_hint="--network")
    from ape import accounts, chain, networks, project
    from rich.console import Console

    from oracle.demo import run_demo

    console = Console(width=None if sys.stdout.isatty() else 150)
    with networks.parse_network_choice(network):
        result = run_demo(project, chain, accounts.test_accounts, network, epochs=epochs,
                          console=console, seed=seed)
        if report_path:
            from oracle.report import draw_report, from_ape

            draw_report(from_ape(result.market, chain), report_path)
            click.echo(f"report written to {report_path}")
    for p in result.problems:
        click.echo(f"FAILED: {p}", err=True)
    if result.problems:
        sys.exit(1)
    click.echo(f"demo OK: {epochs} epoch(s); balances backed, every job paid at most once, "
               "every share of emission equal to the share of work")


_NETWORK = click.option("--network", default="ethereum:local:foundry", show_default=True,
                        help="Which deployment record to read (deployments/<key>.json).")
_DEPLOYMENTS = click.option("--deployments", "deployments_dir", default="deployments",
                            show_default=True, type=click.Path(file_okay=False),
                            help="Directory of deployment records.")
_RPC = click.option("--rpc", default="http://127.0.0.1:8545", show_default=True,
                    help="JSON-RPC URL of the node.")
_KEYFILE = click.option("--keyfile", required=True, type=click.Path(dir_okay=False),
                        help="Encrypted keystore (e.g. an Ape account file) or raw hex key file.")
_PWFILE = click.option("--password-file", type=click.Path(dir_okay=False),
                       help="File holding the keystore password.")
_PWENV = click.option("--password-env", help="Environment variable holding the password.")
_SPECS = click.option("--spec-store", "spec_stores", multiple=True, required=True,
                      help="Where specs are read: an http(s) blob server or a directory (repeat).")


def _connect(network: str, deployments_dir: str, rpc: str) -> Any:
    from pathlib import Path

    from oracle import deployments
    from oracle.chain import Chain

    chain = Chain(rpc, deployments.load(network, Path(deployments_dir)))
    chain.check()
    return chain


def _account(keyfile: str, password_file: str | None, password_env: str | None) -> Any:
    from pathlib import Path

    from oracle.keys import load_account

    return load_account(Path(keyfile), password_file=Path(password_file) if password_file
                        else None, password_env=password_env)


def _serve_forever(service: Any) -> None:
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        service.close()


@cli.command()
@click.option("--port", type=int, default=8545, show_default=True, help="Port (0: any free).")
def node(port: int) -> None:
    """Start a local anvil node (chain id 31337, anvil's well-known test accounts)."""
    import signal

    from oracle.anvil import start_anvil, stop_anvil

    proc, url = start_anvil(port, quiet=False)
    click.echo(f"anvil listening on {url}", err=True)
    # anvil runs in its own session: stop it ourselves on Ctrl-C or SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: (stop_anvil(proc), sys.exit(0)))
    try:
        proc.wait()
    except KeyboardInterrupt:
        stop_anvil(proc)


@cli.group()
def oracle() -> None:
    """Run an oracle node."""


@oracle.command("run")
@_NETWORK
@_DEPLOYMENTS
@_RPC
@_KEYFILE
@_PWFILE
@_PWENV
@_SPECS
@click.option("--db", "db_path", default=".pouw/oracle.db", show_default=True,
              help="SQLite state file.")
@click.option("--peer", "peers", multiple=True, help="Base URL of a peer oracle (repeat).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=int, default=0, show_default=True, help="Listen port (0: any).")
@click.option("--confirmations", type=click.IntRange(0, 1000), default=2, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 128), default=32, show_default=True)
@click.option("--max-wait", type=click.FloatRange(0), default=2.0, show_default=True,
              help="Seconds the oldest verdict waits before a partial batch is settled.")
@click.option("--poll", type=click.FloatRange(0.01), default=0.5, show_default=True)
@click.option("--worker-url", "worker_urls", multiple=True,
              help="Static ADDRESS=URL of a worker's result server (repeat).")
@click.option("--kill-at", type=click.Choice(["after_verdict", "after_sign", "after_tx_signed",
                                              "after_broadcast"]), hidden=True)
def oracle_run(network: str, deployments_dir: str, rpc: str, keyfile: str,
               password_file: str | None, password_env: str | None, spec_stores: tuple[str],
               db_path: str, peers: tuple[str], host: str, port: int, confirmations: int,
               batch_size: int, max_wait: float, poll: float, worker_urls: tuple[str],
               kill_at: str | None) -> None:
    """Follow the chain, verify submissions, sign and settle attestations (k-of-n)."""
    from oracle.exceptions import ConfigError
    from oracle.logs import setup_logging
    from oracle.oracle_node import OracleConfig, OracleNode

    setup_logging()
    static = {}
    for item in worker_urls:
        addr, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise ConfigError(f"--worker-url must be ADDRESS=http(s)://..., got {item!r}")
        static[addr] = url
    chain = _connect(network, deployments_dir, rpc)
    cfg = OracleConfig(rpc_url=rpc, db_path=db_path, spec_stores=spec_stores,
                       confirmations=confirmations, poll_interval=poll, batch_size=batch_size,
                       max_wait=max_wait, peers=peers, host=host, port=port,
                       worker_urls=static, kill_at=kill_at)
    node = OracleNode(cfg, chain, _account(keyfile, password_file, password_env))
    url = node.start_server()
    click.echo(f"oracle {node.account.address} serving {url}", err=True)
    _serve_forever(node)


@cli.group()
def worker() -> None:
    """Run a worker (miner)."""


@worker.command("run")
@_NETWORK
@_DEPLOYMENTS
@_RPC
@_KEYFILE
@_PWFILE
@_PWENV
@_SPECS
@click.option("--db", "db_path", default=".pouw/worker.db", show_default=True)
@click.option("--store", "store_dir", default=".pouw/worker-blobs", show_default=True,
              help="Directory of the worker's result blobs.")
@click.option("--oracle-url", "oracle_urls", multiple=True,
              help="An oracle's base URL to announce this worker's endpoint to (repeat).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True)
@click.option("--public-url", help="URL oracles use to reach this worker (default: listen URL).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["matmul", "mlp"]),
              help="Job kinds to accept (default: all).")
@click.option("--max-units", type=click.IntRange(1), default=1 << 50, show_default=True,
              help="Largest job, in work units.")
@click.option("--min-price", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Smallest escrow per work unit, in wei.")
def worker_run(network: str, deployments_dir: str, rpc: str, keyfile: str,
               password_file: str | None, password_env: str | None, spec_stores: tuple[str],
               db_path: str, store_dir: str, oracle_urls: tuple[str], host: str, port: int,
               public_url: str | None, kinds: tuple[str], max_units: int,
               min_price: float) -> None:
    """Bond, compute open jobs, commit and serve results, claim pay and rewards."""
    from oracle.logs import setup_logging
    from oracle.worker import Worker, WorkerConfig

    setup_logging()
    chain = _connect(network, deployments_dir, rpc)
    cfg = WorkerConfig(rpc_url=rpc, db_path=db_path, store_dir=store_dir,
                       spec_stores=spec_stores, oracle_urls=oracle_urls,
                       kinds=kinds or ("matmul", "mlp"), max_work_units=max_units,
                       min_price_per_unit=min_price, host=host, port=port,
                       public_url=public_url)
    w = Worker(cfg, chain, _account(keyfile, password_file, password_env))
    url = w.start_server()
    click.echo(f"worker {w.address} serving {url}", err=True)
    _serve_forever(w)


@cli.command()
@_NETWORK
@_DEPLOYMENTS
@_RPC
@click.option("--out", default="report.png", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the PNG.")
def report(network: str, deployments_dir: str, rpc: str, out: str) -> None:
    """Draw the emission schedule, work share per worker per epoch and price per work unit,
    from chain state alone (the market's immutables and its events)."""
    from oracle.report import draw_report, from_chain

    draw_report(from_chain(_connect(network, deployments_dir, rpc)), out)
    click.echo(f"report written to {out}")


def main() -> None:
    """Entry point that turns pouw errors into one-line messages."""
    try:
        cli(standalone_mode=True)
    except PouwError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
