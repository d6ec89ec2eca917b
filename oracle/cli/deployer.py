"""The deployer's and local operator's commands: ``deploy`` (the contracts, through web3),
``node`` (a local anvil) and ``store serve`` (the spec store requesters publish to)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import click

from oracle.cli.errors import PouwGroup
from oracle.cli.options import Amount, load_signer, parse_address, signer_on_chain

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

#: Chain ids of local development chains (anvil, Hardhat, Ape's embedded chain).
LOCAL_CHAIN_IDS = (31337, 1337)


def _signer(
    keyfile: str | None,
    password_file: str | None,
    password_env: str | None,
    dev: bool,
    chain_id: int,
) -> LocalAccount:
    """The signing account: a key file, or (``--dev``, local chains) anvil's first account."""
    from oracle.exceptions import ConfigError

    if dev:
        if keyfile:
            raise ConfigError("give either --keyfile or --dev, not both")
        if chain_id not in LOCAL_CHAIN_IDS:
            raise ConfigError(
                f"--dev uses anvil's well-known keys: local chains only (chain id "
                f"{chain_id} is not one of {LOCAL_CHAIN_IDS})"
            )
        from oracle.chain.anvil import test_accounts

        return test_accounts(1)[0]
    if not keyfile:
        raise ConfigError("a signing key is needed: --keyfile (or --dev on a local chain)")
    return load_signer(keyfile, password_file, password_env)


def oracle_set(
    oracles: tuple[str, ...], threshold: int | None, dev: bool
) -> tuple[tuple[str, ...], int]:
    """The oracle addresses and threshold to deploy with: those given, or with ``--dev`` and
    none given the dev set of :func:`oracle.chain.anvil.dev_oracles`; the threshold given, or a
    majority. ConfigError if there are none, repeats, or too high a threshold."""
    from eth_utils import to_checksum_address

    from oracle.exceptions import ConfigError

    if not oracles and dev:
        from oracle.chain.anvil import dev_oracles

        oracles = tuple(a.address for a in dev_oracles())
    if not oracles:
        raise ConfigError("at least one --oracle ADDRESS is needed")
    if len({to_checksum_address(o) for o in oracles}) != len(oracles):
        raise ConfigError("--oracle addresses must be distinct")
    threshold = threshold or len(oracles) // 2 + 1
    if threshold > len(oracles):
        raise ConfigError(f"--threshold {threshold} exceeds the {len(oracles)} oracle(s)")
    return oracles, threshold


def _web3(rpc: str) -> Web3:
    from web3 import Web3

    from oracle.exceptions import ChainError

    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 10}))
    try:
        w3.eth.chain_id  # noqa: B018 - reachability check
    except Exception as exc:
        raise ChainError(f"no node answers at {rpc}: {type(exc).__name__}") from None
    return w3


@click.command()
@signer_on_chain(key_required=False)
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
@click.option("--initial-emission", type=Amount(), help="Tokens emitted in epoch 0.")
@click.option("--halving-epochs", type=click.IntRange(1), help="Epochs between halvings.")
@click.option("--min-bond", type=Amount(), help="A worker's minimum bond, in wei.")
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
    oracles: tuple[str, ...],
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

    from eth_utils import to_checksum_address

    from oracle.chain import deployments
    from oracle.chain.deploy import deploy_with_web3
    from oracle.exceptions import ChainError, ConfigError
    from oracle.protocol.params import LIVE, LOCAL

    try:
        deployments.network_key(network)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    oracles = tuple(parse_address(o, "--oracle") for o in oracles)
    w3 = _web3(rpc)
    chain_id = int(w3.eth.chain_id)
    account = _signer(keyfile, password_file, password_env, dev, chain_id)
    oracles, threshold = oracle_set(oracles, threshold, dev)
    local = chain_id in LOCAL_CHAIN_IDS
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


@click.command()
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
    """Start a local anvil node (chain id 31337, anvil's well-known test accounts) until
    Ctrl-C or SIGTERM."""
    import signal
    import threading

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
    # anvil runs in its own session: stop it ourselves on Ctrl-C or SIGTERM. The handlers only
    # say so; the main loop stops anvil (waiting on it from a handler, while the main thread
    # waits on it too, hung for 20 s and ended in a TimeoutExpired traceback).
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    proc, url = start_anvil(port, quiet=False, block_time=block_time)
    click.echo(f"anvil listening on {url}", err=True)
    while proc.poll() is None and not stopping.is_set():
        stopping.wait(0.2)
    code = proc.poll()
    stop_anvil(proc)
    if code is not None and not stopping.is_set():
        raise click.ClickException(f"anvil exited on its own with status {code}")
    click.echo("anvil stopped", err=True)


@click.group(cls=PouwGroup)
def store() -> None:
    """Content-addressed blob store (specs, inputs, results) over HTTP or in a directory."""


@store.command("put")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--store",
    "stores",
    multiple=True,
    required=True,
    help="An http(s) blob server or a directory to publish to (repeat: every one gets it).",
)
def store_put(files: tuple[str, ...], stores: tuple[str, ...]) -> None:
    """Publish files, as they are, to every store; prints each one's name (0x + keccak256 of
    its bytes), which is how a spec or a command refers to it. Every store is checked first:
    one that does not answer (or refuses) is one line and exit 2, and nothing is published
    (should one fail later, the files already published stay).

    \b
    Example:
      pouw store put inputs.bin --store http://127.0.0.1:8600 --store .pouw/specs
    """
    from pathlib import Path

    from oracle.store.specs import SpecStore

    targets = SpecStore(list(stores))
    targets.require_all()
    for path in files:
        data = Path(path).read_bytes()
        click.echo(f"0x{targets.put_blob(data)}")
        click.echo(f"{path}: {len(data):,} bytes in {len(stores)} store(s)", err=True)


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
@click.option(
    "--result-retention-days",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Delete a delivered result this many days after it arrived.",
)
def store_serve(root: str, host: str, port: int, result_retention_days: float) -> None:
    """Serve a job store: blobs at /blobs/<keccak hash> (GET, HEAD, PUT of hash-checked
    content: the specs and inputs requesters publish) and delivered results at
    /results/<commitment> (PUT/POST by workers, kept only if the bytes open the commitment;
    read by oracles and by `pouw job result`) for --result-retention-days."""
    import threading
    from pathlib import Path

    from oracle.store.blobs import LocalBlobStore
    from oracle.store.server import BlobServer

    retention = result_retention_days * 86_400
    with BlobServer(
        LocalBlobStore(Path(root)), host=host, port=port, result_retention=retention
    ) as srv:
        click.echo(
            f"job store {root} serving {srv.url} (results kept {result_retention_days:g} days)",
            err=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
