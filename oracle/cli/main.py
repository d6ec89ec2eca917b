"""`pouw`: the command line of the protocol.

`demo` plays a full round trip on the embedded chain. `node` starts anvil and `deploy` puts
pouw on it (or any chain, from a key file); `oracle run` and `worker run` are the
long-running services (web3.py, SQLite); `job create` / `job show` / `job refund` and
`withdraw` are the requester's and the earner's commands; `status` shows the emission and the
leaderboard; `audit` re-derives a posted verdict from public data. Every chain command reads
the deployment record of `--network` from `--deployments` and turns bad input into a
one-line error (``error: ...``) with exit status 2.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

import click

from oracle.exceptions import PouwError


class _Failed(click.ClickException):
    """A pouw error shown as one line (``error: ...``), exit code 2 (bad input)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    """A group whose commands turn pouw, chain and transport errors into one-line errors."""

    def invoke(self, ctx: click.Context) -> Any:
        from requests import RequestException
        from web3.exceptions import Web3Exception

        try:
            return super().invoke(ctx)
        except PouwError as exc:
            raise _Failed(str(exc)) from None
        except (Web3Exception, RequestException) as exc:
            raise _Failed(f"chain: {type(exc).__name__}: {exc}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """pouw — proof of useful work: escrowed AI compute jobs, verification far cheaper than
    the work, and a halving token emission shared by verified work alone."""


@cli.command()
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

            draw_report(from_ape(result.market, chain), report_path)
            click.echo(f"report written to {report_path}")
    for p in result.problems:
        click.echo(f"FAILED: {p}", err=True)
    if result.problems:
        sys.exit(1)
    click.echo(
        f"demo OK: {epochs} epoch(s); balances backed, every job paid at most once, "
        "every share of emission equal to the share of work"
    )


_NETWORK = click.option(
    "--network",
    default="ethereum:local:foundry",
    show_default=True,
    help="Which deployment record to read (deployments/<key>.json).",
)
_DEPLOYMENTS = click.option(
    "--deployments",
    "deployments_dir",
    default="deployments",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of deployment records.",
)
_RPC = click.option(
    "--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC URL of the node."
)
_KEYFILE = click.option(
    "--keyfile",
    required=True,
    type=click.Path(dir_okay=False),
    help="Encrypted keystore (e.g. an Ape account file) or raw hex key file.",
)
_PWFILE = click.option(
    "--password-file", type=click.Path(dir_okay=False), help="File holding the keystore password."
)
_PWENV = click.option("--password-env", help="Environment variable holding the password.")
_SPECS = click.option(
    "--spec-store",
    "spec_stores",
    multiple=True,
    required=True,
    help="Where specs are read: an http(s) blob server or a directory (repeat).",
)


def _signer_on_chain(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that signs on a deployment: network, deployments, RPC,
    key file and its password."""
    for option in (_PWENV, _PWFILE, _KEYFILE, _RPC, _DEPLOYMENTS, _NETWORK):
        f = option(f)
    return f


def _connect(network: str, deployments_dir: str, rpc: str) -> Any:
    from pathlib import Path

    from oracle.chain import deployments
    from oracle.chain.client import Chain

    chain = Chain(rpc, deployments.load(network, Path(deployments_dir)))
    chain.check()
    return chain


def _account(keyfile: str, password_file: str | None, password_env: str | None) -> Any:
    from pathlib import Path

    from oracle.chain.keys import load_account

    return load_account(
        Path(keyfile),
        password_file=Path(password_file) if password_file else None,
        password_env=password_env,
    )


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
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8545,
    show_default=True,
    help="Port (0: any free).",
)
@click.option(
    "--block-time",
    type=click.IntRange(0, 3600),
    default=1,
    show_default=True,
    help="Also mine an empty block every N seconds (transactions are still mined at "
    "once), so challenge blocks and confirmations appear; 0: only on demand.",
)
@click.option(
    "--write-dev-keys",
    "keys_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write anvil's well-known test keys to DIR/account<i>.key (mode 0600) for "
    "the local walk-through. Public keys: never use them on a live network.",
)
def node(port: int, block_time: int, keys_dir: str | None) -> None:
    """Start a local anvil node (chain id 31337, anvil's well-known test accounts)."""
    import signal

    from oracle.chain.anvil import start_anvil, stop_anvil, test_accounts

    if keys_dir:
        from pathlib import Path

        out = Path(keys_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i, acct in enumerate(test_accounts(10)):
            path = out / f"account{i}.key"
            path.write_text("0x" + acct.key.hex().removeprefix("0x") + "\n")
            path.chmod(0o600)
            click.echo(f"{path}  {acct.address}", err=True)
    proc, url = start_anvil(port, quiet=False, block_time=block_time)
    click.echo(f"anvil listening on {url}", err=True)
    # anvil runs in its own session: stop it ourselves on Ctrl-C or SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: (stop_anvil(proc), sys.exit(0)))
    try:
        proc.wait()
    except KeyboardInterrupt:
        stop_anvil(proc)


@cli.group(cls=_Group)
def store() -> None:
    """Content-addressed blob store (specs, results) over HTTP."""


@store.command("serve")
@click.option(
    "--dir",
    "root",
    default=".pouw/specs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory holding the blobs.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=click.IntRange(0, 65535), default=8600, show_default=True)
def store_serve(root: str, host: str, port: int) -> None:
    """Serve a blob directory at /blobs/<keccak hash> (GET, HEAD, PUT of hash-checked
    content): the spec store requesters publish to and workers and oracles read from."""
    import threading
    from pathlib import Path

    from oracle.store.blobs import BlobServer, LocalBlobStore

    with BlobServer(LocalBlobStore(Path(root)), host=host, port=port) as srv:
        click.echo(f"blob store {root} serving {srv.url}", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


@cli.group(cls=_Group)
def oracle() -> None:
    """Run an oracle node."""


@oracle.command("run")
@_signer_on_chain
@_SPECS
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
    spec_stores: tuple[str],
    db_path: str,
    peers: tuple[str],
    host: str,
    port: int,
    confirmations: int,
    batch_size: int,
    max_wait: float,
    poll: float,
    worker_urls: tuple[str],
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
    chain = _connect(network, deployments_dir, rpc)
    cfg = OracleConfig(
        rpc_url=rpc,
        db_path=db_path,
        spec_stores=spec_stores,
        confirmations=confirmations,
        poll_interval=poll,
        batch_size=batch_size,
        max_wait=max_wait,
        peers=peers,
        host=host,
        port=port,
        worker_urls=static,
        kill_at=kill_at,
    )
    node = OracleNode(cfg, chain, _account(keyfile, password_file, password_env))
    url = node.start_server()
    click.echo(f"oracle {node.account.address} serving {url}", err=True)
    _serve_forever(node)


@cli.group(cls=_Group)
def worker() -> None:
    """Run a worker (miner)."""


@worker.command("run")
@_signer_on_chain
@_SPECS
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
    type=click.Choice(["matmul", "mlp"]),
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
    spec_stores: tuple[str],
    db_path: str,
    store_dir: str,
    oracle_urls: tuple[str],
    host: str,
    port: int,
    public_url: str | None,
    kinds: tuple[str],
    max_units: int,
    min_price: float,
    poll: float,
    kill_at: str | None,
) -> None:
    """Bond, compute open jobs, commit and serve results, claim pay and rewards."""
    from oracle.infra.logs import setup_logging
    from oracle.worker.service import Worker, WorkerConfig

    setup_logging()
    chain = _connect(network, deployments_dir, rpc)
    cfg = WorkerConfig(
        rpc_url=rpc,
        db_path=db_path,
        store_dir=store_dir,
        spec_stores=spec_stores,
        oracle_urls=oracle_urls,
        kinds=kinds or ("matmul", "mlp"),
        max_work_units=max_units,
        min_price_per_unit=min_price,
        host=host,
        port=port,
        public_url=public_url,
        poll_interval=poll,
        kill_at=kill_at,
    )
    w = Worker(cfg, chain, _account(keyfile, password_file, password_env))
    url = w.start_server()
    click.echo(f"worker {w.address} serving {url}", err=True)
    _serve_forever(w)


@cli.command()
@_NETWORK
@_DEPLOYMENTS
@_RPC
@click.option(
    "--out",
    default="report.png",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the PNG.",
)
def report(network: str, deployments_dir: str, rpc: str, out: str) -> None:
    """Draw the emission schedule, work share per worker per epoch and price per work unit,
    from chain state alone (the market's immutables and its events)."""
    from oracle.client.report import draw_report, from_chain

    draw_report(from_chain(_connect(network, deployments_dir, rpc)), out)
    click.echo(f"report written to {out}")


# -- deployment, requesters, auditors ---------------------------------------------------------

#: Chain ids of local development chains (anvil, Hardhat, Ape's embedded chain).
_LOCAL_CHAIN_IDS = (31337, 1337)
_KEYFILE_OPT = click.option(
    "--keyfile",
    type=click.Path(dir_okay=False),
    help="Encrypted keystore (e.g. an Ape account file) or raw hex key file.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


class _Amount(click.ParamType):
    """An amount in base units: ``10000``, ``1e16``, ``0.01ether``, ``5gwei``, ``7wei``."""

    name = "AMOUNT"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        from decimal import Decimal, InvalidOperation

        if isinstance(value, int):
            return value
        text, scale = str(value).strip().lower(), 1
        for unit, factor in (("ether", 10**18), ("eth", 10**18), ("gwei", 10**9), ("wei", 1)):
            if text.endswith(unit):
                text, scale = text[: -len(unit)].strip(), factor
                break
        try:
            amount = Decimal(text) * scale
        except InvalidOperation:
            self.fail(f"{value!r} is not an amount (e.g. 10000, 1e16, 0.01ether)", param, ctx)
        if amount < 0 or amount != amount.to_integral_value():
            self.fail(f"{value!r} is not a whole, non-negative number of base units", param, ctx)
        return int(amount)


def _signer(
    keyfile: str | None,
    password_file: str | None,
    password_env: str | None,
    dev: bool,
    chain_id: int,
) -> Any:
    """The signing account: a key file, or (``--dev``, local chains) anvil's first account."""
    from oracle.exceptions import ConfigError

    if dev:
        if keyfile:
            raise ConfigError("give either --keyfile or --dev, not both")
        if chain_id not in _LOCAL_CHAIN_IDS:
            raise ConfigError(
                f"--dev uses anvil's well-known keys: local chains only (chain id "
                f"{chain_id} is not one of {_LOCAL_CHAIN_IDS})"
            )
        from oracle.chain.anvil import test_accounts

        return test_accounts(1)[0]
    if not keyfile:
        raise ConfigError("a signing key is needed: --keyfile (or --dev on a local chain)")
    return _account(keyfile, password_file, password_env)


def _web3(rpc: str) -> Any:
    from web3 import Web3

    from oracle.exceptions import ChainError

    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 10}))
    try:
        w3.eth.chain_id  # noqa: B018 - reachability check
    except Exception as exc:
        raise ChainError(f"no node answers at {rpc}: {type(exc).__name__}") from None
    return w3


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def _print_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))


@cli.command()
@_NETWORK
@_DEPLOYMENTS
@_RPC
@_KEYFILE_OPT
@_PWFILE
@_PWENV
@click.option(
    "--dev",
    is_flag=True,
    help="Local chains only: deploy from anvil's first test account; without "
    "--oracle, anvil's accounts 5-7 become the oracles (well-known keys).",
)
@click.option(
    "--oracle",
    "oracles",
    multiple=True,
    metavar="ADDRESS",
    help="An oracle signer address (repeat).",
)
@click.option(
    "--threshold",
    type=click.IntRange(1),
    default=None,
    help="Signatures needed to settle [default: a majority of the oracles].",
)
@click.option(
    "--preset",
    type=click.Choice(["local", "live"]),
    default=None,
    help="Parameter preset [default: local on chain id 31337/1337, else live].",
)
@click.option("--epoch-length", type=click.IntRange(60), help="Seconds per epoch.")
@click.option("--initial-emission", type=_Amount(), help="Tokens emitted in epoch 0.")
@click.option("--halving-epochs", type=click.IntRange(1), help="Epochs between halvings.")
@click.option("--min-bond", type=_Amount(), help="A worker's minimum bond, in wei.")
@click.option("--reveal-window", type=click.IntRange(60), help="Seconds to serve a result.")
@click.option("--force", is_flag=True, help="Replace a record whose market is still live.")
@click.option("--yes", is_flag=True, help="Do not ask before spending funds on a live network.")
def deploy(
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str | None,
    password_file: str | None,
    password_env: str | None,
    dev: bool,
    oracles: tuple[str],
    threshold: int | None,
    preset: str | None,
    epoch_length: int | None,
    initial_emission: int | None,
    halving_epochs: int | None,
    min_bond: int | None,
    reveal_window: int | None,
    force: bool,
    yes: bool,
) -> None:
    """Deploy WorkToken and JobMarket with web3 and write deployments/<network>.json.

    The token's cap is the emission schedule's total; the market becomes its only minter and
    the token's ownership is renounced. Prints the market address.
    """
    from pathlib import Path

    from eth_utils import is_address, to_checksum_address

    from oracle.chain import deployments
    from oracle.chain.deploy import deploy_with_web3
    from oracle.exceptions import ChainError, ConfigError
    from oracle.protocol.params import LIVE, LOCAL

    try:
        deployments.network_key(network)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    bad = [o for o in oracles if not is_address(o)]
    if bad:
        raise ConfigError(f"--oracle {bad[0]!r} is not an address")
    w3 = _web3(rpc)
    chain_id = int(w3.eth.chain_id)
    account = _signer(keyfile, password_file, password_env, dev, chain_id)
    if not oracles and dev:
        from oracle.chain.anvil import test_accounts

        oracles = tuple(a.address for a in test_accounts(8)[5:8])
    if not oracles:
        raise ConfigError("at least one --oracle ADDRESS is needed")
    if len({to_checksum_address(o) for o in oracles}) != len(oracles):
        raise ConfigError("--oracle addresses must be distinct")
    threshold = threshold or len(oracles) // 2 + 1
    if threshold > len(oracles):
        raise ConfigError(f"--threshold {threshold} exceeds the {len(oracles)} oracle(s)")
    local = chain_id in _LOCAL_CHAIN_IDS
    base = {"local": LOCAL, "live": LIVE}[preset or ("local" if local else "live")]
    params = base.with_overrides(
        epoch_length=epoch_length,
        initial_emission=initial_emission,
        halving_epochs=halving_epochs,
        min_bond=min_bond,
        reveal_window=reveal_window,
    )
    root = Path(deployments_dir)
    path = deployments.path_for(network, root)
    if path.exists() and not force:
        old = deployments.load(network, root)
        if old.chain_id == chain_id and w3.eth.get_code(to_checksum_address(old.market)):
            raise ConfigError(
                f"{path} records a live market at {old.market}; pass --force to replace it"
            )
    if not local and not yes:
        click.confirm(f"Deploy on chain {chain_id} from {account.address}?", abort=True)
    from web3.exceptions import Web3Exception

    try:
        rec = deploy_with_web3(w3, account, oracles, threshold, params, network)
    except (Web3Exception, ValueError) as exc:
        raise ChainError(f"deployment failed: {exc}") from None
    saved = deployments.save(rec, root)
    click.echo(
        f"deployed on chain {chain_id}: market {rec.market}, token {rec.token}, "
        f"{threshold}-of-{len(oracles)} oracles; record {saved}",
        err=True,
    )
    click.echo(rec.market)


@cli.group(cls=_Group)
def job() -> None:
    """Post, inspect and refund jobs (the requester's side)."""


_KIND_FLAGS = (
    "kind",
    "dtype",
    "m",
    "n",
    "k",
    "seed",
    "mode",
    "openings",
    "rounds",
    "batch",
    "dims",
    "activation",
    "count",
)


@job.command("create")
@_signer_on_chain
@click.option(
    "--spec-store",
    "spec_stores",
    multiple=True,
    required=True,
    help="Where to publish the spec: an http(s) blob server or a directory (repeat).",
)
@click.option(
    "--spec-file",
    type=click.Path(dir_okay=False),
    help="A spec JSON file (instead of the flags below).",
)
@click.option("--kind", type=click.Choice(["matmul", "mlp"]), default="matmul", show_default=True)
@click.option(
    "--dtype",
    type=click.Choice(["int8", "fp32"]),
    default="int8",
    show_default=True,
    help="matmul element type (mlp is fp32).",
)
@click.option("--m", type=click.IntRange(1), help="Rows of A and C [default: --n].")
@click.option("--n", type=click.IntRange(1), help="Columns of B and C (matmul).")
@click.option("--k", type=click.IntRange(1), help="Columns of A, rows of B [default: --n].")
@click.option(
    "--seed",
    type=click.IntRange(0, 2**64 - 1),
    default=0,
    show_default=True,
    help="Seed the inputs are generated from.",
)
@click.option(
    "--mode",
    type=click.Choice(["full", "sampled"]),
    default="full",
    show_default=True,
    help="Verification mode (mlp: full only).",
)
@click.option("--openings", type=click.IntRange(1), help="Rows opened in sampled mode.")
@click.option("--rounds", type=click.IntRange(1), help="Freivalds rounds (fp32 and mlp).")
@click.option("--batch", type=click.IntRange(1), help="mlp: inputs per batch.")
@click.option("--dims", help="mlp: layer widths d0,d1,...,dL (e.g. 256,512,10).")
@click.option(
    "--activation",
    type=click.Choice(["relu", "gelu"]),
    default="relu",
    show_default=True,
    help="mlp activation.",
)
@click.option(
    "--count",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Post this many jobs (seeds --seed, --seed+1, ...) in one transaction.",
)
@click.option("--price", type=_Amount(), help="Escrow per work unit (base units of --asset).")
@click.option("--amount", type=_Amount(), help="Escrow per job (base units of --asset).")
@click.option(
    "--asset",
    default="ETH",
    show_default=True,
    help="ETH, or the address of an allow-listed ERC-20 (approved as needed).",
)
@click.option(
    "--deadline-in",
    type=click.IntRange(60),
    default=3_600,
    show_default=True,
    help="Seconds from the latest block until the job expires.",
)
@_JSON
@click.pass_context
def job_create(
    ctx: click.Context,
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
    spec_stores: tuple[str],
    spec_file: str | None,
    kind: str,
    dtype: str,
    m: int | None,
    n: int | None,
    k: int | None,
    seed: int,
    mode: str,
    openings: int | None,
    rounds: int | None,
    batch: int | None,
    dims: str | None,
    activation: str,
    count: int,
    price: int | None,
    amount: int | None,
    asset: str,
    deadline_in: int,
    as_json: bool,
) -> None:
    """Publish a job spec to the spec store(s) and escrow payment for it; prints the job id.

    \b
    Examples:
      pouw job create --keyfile req.key --spec-store http://127.0.0.1:8000 \\
          --kind matmul --dtype int8 --n 1024 --price 1gwei
      pouw job create --keyfile req.key --spec-store specs/ --spec-file job.json \\
          --amount 0.01ether
    """
    from eth_utils import is_address

    from oracle.chain.client import ZERO_ADDRESS
    from oracle.client.jobs import create_jobs, matmul_spec, mlp_spec, publish_spec, spec_from_file
    from oracle.exceptions import ConfigError
    from oracle.protocol.spec import parse_spec, work_units

    if (price is None) == (amount is None):
        raise ConfigError("give exactly one of --price (per work unit) or --amount (per job)")
    if asset.upper() == "ETH":
        asset = ZERO_ADDRESS
    elif not is_address(asset):
        raise ConfigError(f"--asset must be ETH or an ERC-20 address, got {asset!r}")
    if spec_file:
        given = [
            f"--{f}"
            for f in _KIND_FLAGS
            if ctx.get_parameter_source(f) is not None
            and ctx.get_parameter_source(f).name == "COMMANDLINE"
        ]
        if given:
            raise ConfigError(f"--spec-file cannot be combined with {', '.join(given)}")
        specs = [spec_from_file(spec_file)]
    elif kind == "matmul":
        if n is None:
            raise ConfigError("matmul needs --n (and optionally --m, --k)")
        if batch is not None or dims is not None:
            raise ConfigError("--batch and --dims apply to --kind mlp only")
        specs = [
            parse_spec(
                matmul_spec(
                    dtype=dtype,
                    m=m or n,
                    n=n,
                    k=k or n,
                    seed=seed + i,
                    mode=mode,
                    openings=openings,
                    rounds=rounds,
                )
            )
            for i in range(count)
        ]
    else:
        if batch is None or dims is None:
            raise ConfigError("mlp needs --batch and --dims d0,d1,...")
        if mode != "full" or any(x is not None for x in (m, n, k, openings)):
            raise ConfigError("mlp takes --batch, --dims, --activation, --rounds only (full mode)")
        try:
            widths = [int(x) for x in dims.split(",")]
        except ValueError:
            raise ConfigError(f"--dims must be comma-separated integers, got {dims!r}") from None
        specs = [
            parse_spec(
                mlp_spec(
                    batch=batch, dims=widths, activation=activation, seed=seed + i, rounds=rounds
                )
            )
            for i in range(count)
        ]
    amounts = [amount if amount is not None else (price or 0) * work_units(s) for s in specs]
    if any(a <= 0 for a in amounts):
        raise ConfigError("the escrow per job must be positive")
    chain = _connect(network, deployments_dir, rpc)
    account = _account(keyfile, password_file, password_env)
    for s in specs:
        publish_spec(s, spec_stores)
    deadline = chain.block_timestamp(chain.head()) + deadline_in
    ids = create_jobs(chain, account, specs, asset=asset, amounts=amounts, deadline=deadline)
    if as_json:
        _print_json(
            [
                {
                    "job_id": j,
                    "spec_hash": "0x" + s.hash.hex(),
                    "work_units": work_units(s),
                    "amount": a,
                    "deadline": deadline,
                }
                for j, s, a in zip(ids, specs, amounts, strict=True)
            ]
        )
        return
    for j, s, a in zip(ids, specs, amounts, strict=True):
        click.echo(
            f"job {j}: spec 0x{s.hash.hex()}, {work_units(s):,} work units, escrow {a:,}", err=True
        )
    for j in ids:
        click.echo(j)


@job.command("show")
@click.argument("job_id", type=click.IntRange(0))
@_NETWORK
@_DEPLOYMENTS
@_RPC
@_JSON
def job_show(job_id: int, network: str, deployments_dir: str, rpc: str, as_json: bool) -> None:
    """Show a job's terms, status, submissions and settlement events."""
    from oracle.client.jobs import job_info

    info = job_info(_connect(network, deployments_dir, rpc), job_id)
    if as_json:
        _print_json(info)
        return
    from rich.table import Table

    con = _console()
    con.print(
        f"[bold]job {job_id}[/]: {info['status']}, {info['work_units']:,} work units, "
        f"escrow {info['amount']:,} "
        f"{'wei' if info['asset'] == 'ETH' else 'base units of ' + info['asset']}, "
        f"deadline {info['deadline']}"
    )
    con.print(f"requester {info['requester']}, spec {info['spec_hash']}")
    if info["submissions"]:
        t = Table("worker", "commitment", "block", title="submissions")
        for sub in info["submissions"]:
            t.add_row(sub["worker"], sub["commitment"], str(sub["block"]))
        con.print(t)
    if info["outcomes"]:
        t = Table("event", "worker", "detail", "block", title="outcomes")
        for o in info["outcomes"]:
            detail = o.get("transcript_hash") or f"reason {o.get('reason', '')}"
            if "amount" in o:
                detail = (
                    f"{detail} amount {o['amount']:,}"
                    if "transcript_hash" in o
                    else f"amount {o['amount']:,}"
                )
            t.add_row(o["event"], o.get("worker", ""), detail, str(o["block"]))
        con.print(t)


def _send_market(
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
    fn_name: str,
    *args: Any,
) -> Any:
    from oracle.chain.client import TxSender
    from oracle.client.jobs import simulate

    chain = _connect(network, deployments_dir, rpc)
    account = _account(keyfile, password_file, password_env)
    fn = getattr(chain.market.functions, fn_name)(*args)
    simulate(chain, fn, account.address)
    return chain, TxSender(chain, account).send(fn, fn_name)


@job.command("refund")
@click.argument("job_id", type=click.IntRange(0))
@_signer_on_chain
def job_refund(
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
) -> None:
    """Refund an unsettled job after its deadline (the escrow returns to the requester)."""
    chain, rcpt = _send_market(
        network, deployments_dir, rpc, keyfile, password_file, password_env, "refund", job_id
    )
    for ev in chain.receipt_events(rcpt, ("JobRefunded",)):
        click.echo(f"job {job_id} refunded: {ev.args['amount']:,} to {ev.args['requester']}")


@cli.command()
@_signer_on_chain
@click.option("--asset", default="ETH", show_default=True, help="ETH or an ERC-20 address.")
def withdraw(
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
    asset: str,
) -> None:
    """Withdraw the balance credited to this account (escrow earned, slashed bonds)."""
    from eth_utils import is_address, to_checksum_address

    from oracle.chain.client import ZERO_ADDRESS
    from oracle.exceptions import ConfigError

    if asset.upper() == "ETH":
        asset = ZERO_ADDRESS
    elif not is_address(asset):
        raise ConfigError(f"--asset must be ETH or an ERC-20 address, got {asset!r}")
    chain, rcpt = _send_market(
        network,
        deployments_dir,
        rpc,
        keyfile,
        password_file,
        password_env,
        "withdraw",
        to_checksum_address(asset),
    )
    total = sum(int(e.args["amount"]) for e in chain.receipt_events(rcpt, ("Withdrawn",)))
    click.echo(f"withdrawn {total:,}")


@cli.command()
@_NETWORK
@_DEPLOYMENTS
@_RPC
@_JSON
def status(network: str, deployments_dir: str, rpc: str, as_json: bool) -> None:
    """Epoch, emission and halving position; leaderboard of verified work and earnings."""
    from oracle.client.status import market_status

    st = market_status(_connect(network, deployments_dir, rpc))
    if as_json:
        _print_json(st)
        return
    from rich.table import Table

    con = _console()
    ether = 10**18
    con.print(
        f"[bold]epoch {st['epoch']}[/] (ends in {st['epoch_ends_in']} s): emission "
        f"{st['emission_epoch'] / ether:,.4f} WORK; halving {st['halvings']} of the "
        f"schedule, next at epoch {st['next_halving_epoch']}; minted "
        f"{st['minted'] / ether:,.4f} of {st['schedule_total'] / ether:,.4f} WORK"
    )
    j = st["jobs"]
    con.print(
        f"jobs: {j['created']} created, {j['settled']} settled, {j['slashed']} slashed "
        f"results, {j['refunded']} refunded, {j['cancelled']} cancelled"
    )
    t = Table(title=f"leaderboard (work this epoch: {st['work_epoch']:,} units)")
    for col in (
        "worker",
        "settled",
        "slashed",
        "units (epoch)",
        "units (all)",
        "share (epoch)",
        "share (all)",
        "escrow earned",
        "WORK claimed",
        "WORK claimable",
    ):
        t.add_column(col, justify="left" if col == "worker" else "right")
    for r in st["leaderboard"]:
        earned = (
            ", ".join(
                f"{v / ether:,.6g} {a if a == 'ETH' else a[:10]}"
                for a, v in r["escrow_earned"].items()
            )
            or "0"
        )
        t.add_row(
            r["worker"],
            str(r["settled_jobs"]),
            str(r["slashed"]),
            f"{r['units_epoch']:,}",
            f"{r['units_all']:,}",
            f"{r['share_epoch']:.1%}",
            f"{r['share_all']:.1%}",
            earned,
            f"{r['tokens_claimed'] / ether:,.4f}",
            f"{r['tokens_claimable'] / ether:,.4f}",
        )
    con.print(t)


@cli.command()
@click.argument("job_id", type=click.IntRange(0))
@_NETWORK
@_DEPLOYMENTS
@_RPC
@_SPECS
@click.option("--worker-url", help="The worker's result server (as oracles fetched it).")
@click.option(
    "--result-file",
    type=click.Path(dir_okay=False),
    help="The raw result bytes, held by the auditor.",
)
@click.option("--blob", help="The result's blob name in --blob-store.")
@click.option(
    "--blob-store",
    "blob_stores",
    multiple=True,
    help="A content-addressed store holding --blob (directory or http; repeat).",
)
@click.option("--worker", "worker_addr", help="Audit only this worker's verdict.")
@click.option("--timeout", type=click.FloatRange(0.1), default=10.0, show_default=True)
@_JSON
def audit(
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    spec_stores: tuple[str],
    worker_url: str | None,
    result_file: str | None,
    blob: str | None,
    blob_stores: tuple[str],
    worker_addr: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Re-derive a settled or slashed job's verdict from public data and compare it with the
    transcript hash the oracles posted.

    The challenge seed comes from the block after the submission; the spec from a spec store
    (hash-checked); the result from the worker's server or from data you hold. Exit status:
    0 every posted verdict matches, 1 a mismatch, 2 bad input.
    """
    from eth_utils import is_address

    from oracle.client.audit import ResultSource, audit_job
    from oracle.exceptions import ConfigError

    sources = sum(x is not None for x in (worker_url, result_file, blob))
    if sources != 1:
        raise ConfigError(
            "give exactly one result source: --worker-url, --result-file or "
            "--blob (with --blob-store)"
        )
    if blob is not None and not blob_stores:
        raise ConfigError("--blob needs at least one --blob-store")
    if worker_url is not None and not worker_url.startswith(("http://", "https://")):
        raise ConfigError(f"--worker-url must be an http(s) URL, got {worker_url!r}")
    if worker_addr is not None and not is_address(worker_addr):
        raise ConfigError(f"--worker {worker_addr!r} is not an address")
    findings = audit_job(
        _connect(network, deployments_dir, rpc),
        job_id,
        spec_stores,
        ResultSource(worker_url, result_file, blob, blob_stores),
        worker=worker_addr,
        timeout=timeout,
    )
    ok = all(f.match for f in findings)
    if as_json:
        _print_json({"job_id": job_id, "match": ok, "findings": [f.as_dict() for f in findings]})
    else:
        for f in findings:
            word = "MATCH" if f.match else "MISMATCH"
            click.echo(
                f"{word} job {f.job_id} worker {f.worker}: posted {f.posted_verdict} "
                f"{f.posted_transcript_hash}, derived {f.derived_verdict} "
                f"{f.derived_transcript_hash} ({f.derived_reason})"
                + (f" [{f.note}]" if f.note else "")
            )
    if not ok:
        sys.exit(1)


def main() -> None:
    """Entry point that turns pouw errors into one-line messages."""
    import warnings

    # ape-vyper's settings model trips a pydantic-settings warning on every Ape start:
    # noise for a user of pouw, nothing they can act on.
    warnings.filterwarnings("ignore", message="Field 'import_remapping' has an incomplete")
    try:
        cli(standalone_mode=True)
    except PouwError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
