"""The requester's and the earner's commands: ``job create`` / ``job show`` / ``job refund``
(post, inspect and refund jobs) and ``withdraw`` (take out what the market credited)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from oracle.cli.errors import PouwGroup
from oracle.cli.options import (
    JSON,
    Amount,
    KindChoice,
    connect,
    console,
    load_signer,
    on_chain,
    parse_asset,
    print_json,
    signer_on_chain,
)

if TYPE_CHECKING:
    from oracle.chain.client import Chain


@click.group(cls=PouwGroup)
def job() -> None:
    """Post, inspect and refund jobs (the requester's side)."""


#: The flags that build a spec; ``--spec-file`` replaces them all.
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
@signer_on_chain()
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
@click.option("--kind", type=KindChoice(), default="matmul", show_default=True)
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
@click.option("--price", type=Amount(), help="Escrow per work unit (base units of --asset).")
@click.option("--amount", type=Amount(), help="Escrow per job (base units of --asset).")
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
@JSON
@click.pass_context
def job_create(
    ctx: click.Context,
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
    spec_stores: tuple[str, ...],
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
    from oracle.client.jobs import create_jobs, matmul_spec, mlp_spec, publish_spec, spec_from_file
    from oracle.exceptions import ConfigError
    from oracle.protocol.spec import parse_spec, work_units

    if (price is None) == (amount is None):
        raise ConfigError("give exactly one of --price (per work unit) or --amount (per job)")
    asset = parse_asset(asset)
    if spec_file:
        given = [
            f"--{f}"
            for f in _KIND_FLAGS
            if ctx.get_parameter_source(f) is ParameterSource.COMMANDLINE
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
    chain = connect(network, deployments_dir, rpc)
    account = load_signer(keyfile, password_file, password_env)
    for s in specs:
        publish_spec(s, spec_stores)
    deadline = chain.block_timestamp(chain.head()) + deadline_in
    ids = create_jobs(chain, account, specs, asset=asset, amounts=amounts, deadline=deadline)
    if as_json:
        print_json(
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
@on_chain
@JSON
def job_show(job_id: int, network: str, deployments_dir: str, rpc: str, as_json: bool) -> None:
    """Show a job's terms, status, submissions and settlement events."""
    from oracle.client.jobs import job_info

    info = job_info(connect(network, deployments_dir, rpc), job_id)
    if as_json:
        print_json(info)
        return
    from rich.table import Table

    con = console()
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
) -> tuple[Chain, Any]:
    """Simulate, then send ``market.<fn_name>(*args)`` from the key file's account; returns the
    chain and the receipt."""
    from oracle.chain.client import TxSender
    from oracle.client.jobs import simulate

    chain = connect(network, deployments_dir, rpc)
    account = load_signer(keyfile, password_file, password_env)
    fn = getattr(chain.market.functions, fn_name)(*args)
    simulate(chain, fn, account.address)
    return chain, TxSender(chain, account).send(fn, fn_name)


@job.command("refund")
@click.argument("job_id", type=click.IntRange(0))
@signer_on_chain()
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


@click.command()
@signer_on_chain()
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
    chain, rcpt = _send_market(
        network,
        deployments_dir,
        rpc,
        keyfile,
        password_file,
        password_env,
        "withdraw",
        parse_asset(asset),
    )
    total = sum(int(e.args["amount"]) for e in chain.receipt_events(rcpt, ("Withdrawn",)))
    click.echo(f"withdrawn {total:,}")
