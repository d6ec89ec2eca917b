"""Anyone's commands, on public chain state: ``status`` (emission and leaderboard), ``audit``
(re-derive a posted verdict), ``report`` (the charts, as a PNG), ``dispute`` (refute a wrong
VALID matmul verdict on-chain) and ``watch`` (a daemon that re-derives every verdict in its
challenge window and disputes a wrong one itself)."""

from __future__ import annotations

import sys

import click

from oracle.cli.options import (
    JSON,
    SPEC_STORES,
    connect,
    console,
    load_signer,
    on_chain,
    parse_address,
    print_json,
    serve_forever,
    signer_on_chain,
)


@click.command()
@on_chain
@JSON
def status(network: str, deployments_dir: str, rpc: str, as_json: bool) -> None:
    """Epoch, emission and halving position; leaderboard of verified work and earnings."""
    from oracle.client.status import market_status

    st = market_status(connect(network, deployments_dir, rpc))
    if as_json:
        print_json(st)
        return
    from rich.table import Table

    con = console()
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


@click.command()
@click.argument("job_id", type=click.IntRange(0))
@on_chain
@SPEC_STORES
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
@JSON
def audit(
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    spec_stores: tuple[str, ...],
    worker_url: str | None,
    result_file: str | None,
    blob: str | None,
    blob_stores: tuple[str, ...],
    worker_addr: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Re-derive a settled or slashed job's verdict from public data and compare it with the
    transcript hash the oracles posted.

    The challenge seed comes from the block after the submission; the spec (and blob inputs)
    from the job stores (hash-checked); the result from the job stores, where the worker
    delivered it (by its commitment; the default), or from the worker's server or data you
    hold. Exit status:
    0 every posted verdict matches, 1 a mismatch, 2 bad input or a verdict that cannot be
    re-run here (reported UNVERIFIED with the reason; the others are still audited).
    """
    from oracle.client.audit import ResultSource, audit_job
    from oracle.exceptions import ConfigError

    sources = sum(x is not None for x in (worker_url, result_file, blob))
    if sources > 1:
        raise ConfigError(
            "give at most one result source: --worker-url, --result-file or "
            "--blob (with --blob-store); none reads the delivered result from --spec-store"
        )
    if blob is not None and not blob_stores:
        raise ConfigError("--blob needs at least one --blob-store")
    if worker_url is not None and not worker_url.startswith(("http://", "https://")):
        raise ConfigError(f"--worker-url must be an http(s) URL, got {worker_url!r}")
    if worker_addr is not None:
        worker_addr = parse_address(worker_addr, "--worker")
    findings = audit_job(
        connect(network, deployments_dir, rpc),
        job_id,
        spec_stores,
        ResultSource(worker_url, result_file, blob, blob_stores, () if sources else spec_stores),
        worker=worker_addr,
        timeout=timeout,
    )
    ok = all(f.match for f in findings)
    mismatch = any(f.verified and not f.match for f in findings)
    if as_json:
        print_json({"job_id": job_id, "match": ok, "findings": [f.as_dict() for f in findings]})
    else:
        for f in findings:
            word = "MATCH" if f.match else "MISMATCH" if f.verified else "UNVERIFIED"
            click.echo(
                f"{word} job {f.job_id} worker {f.worker}: posted {f.posted_verdict} "
                f"{f.posted_transcript_hash}, derived {f.derived_verdict} "
                f"{f.derived_transcript_hash} ({f.derived_reason})"
                + (f" [{f.note}]" if f.note else "")
            )
    if not ok:
        sys.exit(1 if mismatch else 2)


@click.command()
@on_chain
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

    draw_report(from_chain(connect(network, deployments_dir, rpc)), out)
    click.echo(f"report written to {out}")


@click.command()
@click.argument("job_id", type=click.IntRange(0))
@signer_on_chain(key_required=False)
@SPEC_STORES
@click.option(
    "--result-file",
    type=click.Path(dir_okay=False, exists=True),
    help="The raw result bytes, if you hold them (default: the job stores, by commitment).",
)
@click.option(
    "--worker",
    help="Overturn the INVALID verdict on this worker's result instead: prove the entry the "
    "verdict names right (a worker defending its result; anyone may).",
)
@JSON
def dispute(
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str | None,
    password_file: str | None,
    password_env: str | None,
    spec_stores: tuple[str, ...],
    result_file: str | None,
    worker: str | None,
    as_json: bool,
) -> None:
    """Refute a job's VALID verdict on-chain if its result has a wrong entry (or, with
    --worker, overturn an INVALID verdict whose witness entry is right).

    Finds the job's VALID verdict in a batch still in its challenge window, fetches the spec,
    the inputs and the result from the job stores (hash- and commitment-checked), and looks
    for an entry C[i][j] the dispute contract refutes (int8: not the exact dot product; fp32:
    outside the bound of every fp32 summation). With --keyfile it sends the dispute: the job
    is reopened with its escrow, and the worker's and the signing oracles' bonds go half to
    you, half to the requester. Without it, it only says what it found. Exit status: 0 refuted
    (or refutable, without a key), 1 the result is right, 2 nothing to dispute here (no
    verdict in a window, a kind or job that is committee-only) or bad input.

    An INVALID matmul verdict names the entry C[i][j] it found wrong (in its transcript hash).
    With --worker, the command reads that entry, checks it in the worker's delivered result and,
    if it is right, sends the overturn: the worker's bond comes back, the job's escrow is paid
    to it if the job is still open, and the signing oracles' bonds go half to you, half to the
    worker. Exit status: 0 overturned (or overturnable, without a key), 1 the entry is wrong
    (the verdict stands), 2 as above.

    \b
      pouw dispute 7 --spec-store http://127.0.0.1:8000 --keyfile me.key
    """
    from oracle.client.dispute import dispute_job, overturn_job

    account = load_signer(keyfile, password_file, password_env) if keyfile else None
    chain = connect(network, deployments_dir, rpc)
    if worker is not None:
        outcome = overturn_job(
            chain,
            job_id,
            parse_address(worker, "--worker"),
            spec_stores,
            account,
            result_file=result_file,
        )
    else:
        outcome = dispute_job(chain, job_id, spec_stores, account, result_file=result_file)
    if as_json:
        print_json(outcome.as_dict())
    else:
        text = {
            "refuted": f"REFUTED job {job_id}: {outcome.reason} (tx {outcome.tx_hash})",
            "refutable": f"REFUTABLE job {job_id}: {outcome.reason} (give --keyfile to send)",
            "overturned": f"OVERTURNED job {job_id}: {outcome.reason} (tx {outcome.tx_hash})",
            "overturnable": f"OVERTURNABLE job {job_id}: {outcome.reason} (give --keyfile)",
            "right": f"RIGHT job {job_id}: {outcome.reason}",
        }.get(outcome.status, f"NOT DISPUTED job {job_id}: {outcome.reason}")
        click.echo(text)
    codes = {"refuted": 0, "refutable": 0, "overturned": 0, "overturnable": 0, "right": 1}
    sys.exit(codes.get(outcome.status, 2))


@click.command()
@signer_on_chain(key_required=False)
@SPEC_STORES
@click.option(
    "--db",
    "db_path",
    default=".pouw/watch.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The watcher's SQLite state (the block followed up to, each verdict's outcome).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where /metrics listens.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True)
@click.option(
    "--confirmations",
    type=click.IntRange(0, 1000),
    default=0,
    show_default=True,
    help="Blocks on top of an event before it is followed.",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.01),
    default=2.0,
    show_default=True,
    help="Seconds between loop iterations.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Follow and check once, print every verdict followed so far, and exit.",
)
@JSON
def watch(
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str | None,
    password_file: str | None,
    password_env: str | None,
    spec_stores: tuple[str, ...],
    db_path: str,
    host: str,
    port: int,
    confirmations: int,
    poll: float,
    once: bool,
    as_json: bool,
) -> None:
    """Watch every matmul verdict while its batch is in the challenge window; dispute a wrong one.

    Follows the market's settlements and re-derives each matmul verdict from public data (as
    `pouw dispute` does: the spec and inputs from the job stores, the result the worker
    delivered under its commitment). With --keyfile it sends the dispute itself when a VALID
    verdict's result has a wrong entry (the job is reopened with its escrow; the worker's and
    the signing oracles' bonds go half to you, half to the requester) or an INVALID verdict's
    named entry is right (the worker's bond and pay come back; the oracles' bonds go half to
    you, half to the worker). Without a key it only reports.
    Safety of settled verdicts needs one honest watcher online within each window. The state
    (--db) survives restarts; GET /metrics and /health on --host/--port.

    \b
      pouw watch --spec-store http://127.0.0.1:8000 --keyfile watcher.key --port 9108
    """
    from oracle.client.watch import WatchConfig, Watcher
    from oracle.infra.logs import setup_logging

    account = load_signer(keyfile, password_file, password_env) if keyfile else None
    cfg = WatchConfig(
        db_path=db_path,
        spec_stores=spec_stores,
        confirmations=confirmations,
        poll_interval=poll,
        host=host,
        port=port,
    )
    w = Watcher(cfg, connect(network, deployments_dir, rpc), account)
    if once:
        try:
            w.step()
            items = w.db.items()
        finally:
            w.close()
        if as_json:
            print_json(items)
            return
        from rich.table import Table

        t = Table(title=f"verdicts followed ({len(items)})")
        for col in ("job", "batch", "worker", "status", "entry", "reason"):
            t.add_column(col)
        for it in items:
            t.add_row(
                str(it["job_id"]),
                str(it["batch_id"]),
                it["worker"],
                it["status"],
                it["entry"],
                it["reason"],
            )
        console().print(t)
        return
    setup_logging()
    url = w.start_server()
    mode = "disputing as " + account.address if account else "reporting only (no --keyfile)"
    click.echo(f"watcher {mode}; metrics at {url}/metrics", err=True)
    serve_forever(w)
