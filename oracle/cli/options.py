"""What the commands share: their click options, the parsing of amounts, addresses, assets and
job kinds (one implementation each), and the plumbing around them: connecting to a
deployment, loading a signing key, printing tables and JSON, serving until stopped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from rich.console import Console

    from oracle.chain.client import Chain

F = TypeVar("F", bound=Callable[..., Any])

# -- options ----------------------------------------------------------------------------------

NETWORK = click.option(
    "--network",
    default="ethereum:local:foundry",
    show_default=True,
    help="Which deployment record to read (deployments/<key>.json).",
)
DEPLOYMENTS = click.option(
    "--deployments",
    "deployments_dir",
    default="deployments",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of deployment records.",
)
RPC = click.option(
    "--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC URL of the node."
)
PASSWORD_FILE = click.option(
    "--password-file", type=click.Path(dir_okay=False), help="File holding the keystore password."
)
PASSWORD_ENV = click.option("--password-env", help="Environment variable holding the password.")
SPEC_STORES = click.option(
    "--spec-store",
    "spec_stores",
    multiple=True,
    required=True,
    help="A job store (an http(s) `pouw store serve` or a directory; repeat): where specs and "
    "blob inputs are read and full results are delivered and read back.",
)
JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")


def keyfile_option(*, required: bool) -> Callable[[F], F]:
    """``--keyfile``: required by the commands that always sign, optional for ``deploy``
    (which can sign with ``--dev`` instead)."""
    return click.option(
        "--keyfile",
        required=required,
        type=click.Path(dir_okay=False),
        help="Encrypted keystore (e.g. an Ape account file) or raw hex key file.",
    )


def on_chain(f: F) -> F:
    """The options of every command that reads a deployment: network, deployments, RPC."""
    for option in (RPC, DEPLOYMENTS, NETWORK):
        f = option(f)
    return f


def signer_on_chain(*, key_required: bool = True) -> Callable[[F], F]:
    """The options of every command that signs on a deployment: network, deployments, RPC,
    key file and its password."""

    def decorate(f: F) -> F:
        for option in (PASSWORD_ENV, PASSWORD_FILE, keyfile_option(required=key_required)):
            f = option(f)
        return on_chain(f)

    return decorate


# -- parsing ----------------------------------------------------------------------------------

#: Unit suffixes an amount may carry, longest match first ("ether" before "eth").
AMOUNT_UNITS = (("ether", 10**18), ("eth", 10**18), ("gwei", 10**9), ("wei", 1))


def parse_amount(value: str | int) -> int:
    """An amount in base units: ``10000``, ``1e16``, ``0.01ether``, ``5gwei``, ``7wei``
    (case and a space before the unit do not matter). ValueError if it is not a whole,
    non-negative number of base units."""
    from decimal import Decimal, Inexact, InvalidOperation, localcontext

    if isinstance(value, int):
        return value
    text, scale = str(value).strip().lower(), 1
    for unit, factor in AMOUNT_UNITS:
        if text.endswith(unit):
            text, scale = text[: -len(unit)].strip(), factor
            break
    not_whole = ValueError(f"{value!r} is not a whole, non-negative number of base units")
    # Exact arithmetic: the default 28 digits would round a large or finely divided amount
    # (silently, to a different number of base units).
    with localcontext() as ctx:
        ctx.prec, ctx.traps[Inexact] = 120, True
        try:
            amount = Decimal(text) * scale
        except Inexact:
            raise not_whole from None
        except InvalidOperation:
            raise ValueError(f"{value!r} is not an amount (e.g. 10000, 1e16, 0.01ether)") from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise not_whole
    return int(amount)


class Amount(click.ParamType):
    """An amount in base units: ``10000``, ``1e16``, ``0.01ether``, ``5gwei``, ``7wei``."""

    name = "AMOUNT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return parse_amount(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def parse_address(value: str, flag: str) -> str:
    """``value`` as a checksummed address; ConfigError naming ``flag`` if it is not one."""
    from eth_utils import is_address, to_checksum_address

    from oracle.exceptions import ConfigError

    if not is_address(value):
        raise ConfigError(f"{flag} {value!r} is not an address")
    return str(to_checksum_address(value))


def parse_asset(value: str) -> str:
    """``--asset``: ``ETH`` (any case) is the zero address, else a checksummed ERC-20 address;
    ConfigError otherwise."""
    from eth_utils import is_address, to_checksum_address

    from oracle.chain.client import ZERO_ADDRESS
    from oracle.exceptions import ConfigError

    if value.upper() == "ETH":
        return ZERO_ADDRESS
    if not is_address(value):
        raise ConfigError(f"--asset must be ETH or an ERC-20 address, got {value!r}")
    return str(to_checksum_address(value))


def kind_names() -> tuple[str, ...]:
    """The job kinds a spec may name: the keys of the registry in oracle.compute.kinds."""
    from oracle.compute.kinds import KINDS

    return tuple(KINDS)


class KindChoice(click.Choice):
    """A choice of :func:`kind_names`, read from the registry when first needed (help, parsing)
    so that starting ``pouw`` does not load the compute kernels."""

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> Sequence[str]:
        return kind_names()

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:
        """click.Choice sets the choices in its constructor; the registry is the only source."""


# -- plumbing ---------------------------------------------------------------------------------


def connect(network: str, deployments_dir: str, rpc: str) -> Chain:
    """The deployment of ``network`` recorded in ``deployments_dir``, through ``rpc``, checked."""
    from pathlib import Path

    from oracle.chain import deployments
    from oracle.chain.client import Chain

    chain = Chain(rpc, deployments.load(network, Path(deployments_dir)))
    chain.check()
    return chain


def load_signer(keyfile: str, password_file: str | None, password_env: str | None) -> LocalAccount:
    """The account of a key file (keystore or raw hex), unlocked with the password given."""
    from pathlib import Path

    from oracle.chain.keys import load_account

    return load_account(
        Path(keyfile),
        password_file=Path(password_file) if password_file else None,
        password_env=password_env,
    )


def serve_forever(service: Any) -> None:
    """Run a service (``run(stop)``, ``close()``) until Ctrl-C or SIGTERM, then close it."""
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


def console(stderr: bool = False) -> Console:
    """A rich console (on stderr if asked: progress that must not mix with output); 200
    columns wide when not on a terminal."""
    from rich.console import Console

    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, width=None if tty else 200)


def print_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))
