"""The requester's and the earner's commands: ``job create`` / ``job show`` / ``job wait`` /
``job result`` / ``job refund`` / ``job cancel`` (post, inspect, follow, fetch the verified
result, refund and cancel jobs) and
``withdraw`` (take out what the market credited)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
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
    from eth_account.signers.local import LocalAccount

    from oracle.chain.client import Chain
    from oracle.client.inputs import JobInputs
    from oracle.client.llm_job import LlmJob
    from oracle.client.result import JobResult
    from oracle.protocol.spec import Spec


@click.group(cls=PouwGroup)
def job() -> None:
    """Post, inspect, follow, fetch results of, refund and cancel jobs (the requester's side)."""


#: The flags that build a spec; ``--spec-file`` replaces them all.
_KIND_FLAGS = (
    "kind",
    "dtype",
    "m",
    "n",
    "k",
    "seed",
    "keccak_inputs",
    "mode",
    "openings",
    "rounds",
    "batch",
    "dims",
    "activation",
    "count",
    "a_path",
    "b_path",
    "weights_path",
    "x_path",
    "prompt",
    "prompt_ids",
    "max_new_tokens",
    "model_path",
    "chat",
)

#: The flags of ``--kind llm`` (with --openings).
_LLM_FLAGS = ("prompt", "prompt_ids", "max_new_tokens", "model_path", "chat")

#: The flags a requester's own data replaces (the files give the sizes and the dtype).
_SEEDED_FLAGS = ("dtype", "m", "n", "k", "seed", "count", "batch", "dims", "keccak_inputs")


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
    "--keccak-inputs",
    is_flag=True,
    help="matmul: generate the seeded inputs from the keccak counter-mode stream (spec "
    "version 2) instead of SFC64. A contract can regenerate them, so a wrong VALID verdict "
    "is disputable on-chain by one entry (`pouw dispute`, `pouw watch`); generating them takes "
    "~2.7x longer (int8, ~4.8x fp32) for workers and oracles.",
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
@click.option(
    "--a",
    "a_path",
    type=click.Path(dir_okay=False),
    help="matmul on your data: A (m×k) as a .npy file, int8 or float32 (with --b).",
)
@click.option(
    "--b",
    "b_path",
    type=click.Path(dir_okay=False),
    help="matmul on your data: B (k×n) as a .npy file, the same dtype as A (with --a).",
)
@click.option(
    "--weights",
    "weights_path",
    type=click.Path(dir_okay=False),
    help="mlp on your data: the layers as a .safetensors file (with --x).",
)
@click.option(
    "--x",
    "x_path",
    type=click.Path(dir_okay=False),
    help="mlp on your data: the batch (batch×d0) as a float32 .npy file (with --weights).",
)
@click.option("--prompt", help="llm: the prompt text (tokenized with the model's tokenizer).")
@click.option(
    "--prompt-ids",
    metavar="ID,ID,...",
    help="llm: the prompt as token ids of the model (instead of --prompt).",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="llm: tokens to generate at most (greedy; stops at the model's end-of-sequence token).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False),
    help="llm: a Llama-architecture GGUF file [default: $POUW_MODEL, else the SmolLM2-135M-"
    "Instruct file `make setup` put in .pouw/models/].",
)
@click.option(
    "--chat",
    is_flag=True,
    help="llm: wrap --prompt as one user message in the model's chat template.",
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
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Then follow the jobs to settlement for at most SECONDS (as `job wait`; exit 1 if any "
    "was refunded, cancelled or still open).",
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
    keccak_inputs: bool,
    mode: str,
    openings: int | None,
    rounds: int | None,
    batch: int | None,
    dims: str | None,
    activation: str,
    count: int,
    a_path: str | None,
    b_path: str | None,
    weights_path: str | None,
    x_path: str | None,
    prompt: str | None,
    prompt_ids: str | None,
    max_new_tokens: int,
    model_path: str | None,
    chat: bool,
    price: int | None,
    amount: int | None,
    asset: str,
    deadline_in: int,
    wait_s: float | None,
    as_json: bool,
) -> None:
    """Publish a job spec to the spec store(s) and escrow payment for it; prints the job id.

    The inputs are generated from --seed, or are your own data:

    \b
    --kind matmul --a A.npy --b B.npy: C = A·B with A m×k and B k×n, each
      a 2-D .npy file (numpy.save; read with allow_pickle=False, so no
      object arrays). Both int8: an int8 job, exact int32 result. Both
      float32: an fp32 job. Give B as a normal k×n array: pouw stores it
      column-major itself.
    --kind mlp --weights model.safetensors --x inputs.npy: the tensors
      layers.{l}.weight (d_out, d_in), as PyTorch's nn.Linear.weight, and
      layers.{l}.bias (d_out,) for l = 0..L-1, float32, nothing else, each
      layer's d_in equal to the previous d_out; x is batch×d0 float32.
    --kind llm --prompt TEXT [--max-new-tokens N] [--model FILE.gguf] [--chat]:
      greedy generation on a Llama-architecture GGUF model (default: the
      SmolLM2-135M-Instruct file of `make setup`); the model file is a blob
      (published to stores that lack it), the prompt is tokenized with the
      model's own tokenizer (at most 512 tokens; --prompt-ids for ids).

    Float inputs must be finite (NaN/Inf are refused: the verification
    bounds assume finite inputs). They replace --dtype/--m/--n/--k/--seed/--count
    and --batch/--dims; --mode/--openings/--rounds/--activation still apply.
    The input blobs go to every --spec-store first, then the spec, then the
    escrow; everything is checked before anything is published or escrowed.

    \b
    Examples:
      pouw job create --keyfile req.key --spec-store http://127.0.0.1:8000 \\
          --kind matmul --dtype int8 --n 1024 --price 1gwei
      pouw job create --keyfile req.key --spec-store specs/ --spec-file job.json \\
          --amount 0.01ether
      pouw job create --keyfile req.key --spec-store http://127.0.0.1:8000 \\
          --kind matmul --a A.npy --b B.npy --mode sampled --openings 16 --price 1gwei
      pouw job create --keyfile req.key --spec-store http://127.0.0.1:8000 \\
          --kind mlp --weights model.safetensors --x inputs.npy --activation gelu \\
          --price 1gwei
      pouw job create --keyfile req.key --spec-store http://127.0.0.1:8000 \\
          --kind llm --prompt "The capital of France is" --max-new-tokens 8 --price 1
    """
    from oracle.client.jobs import create_jobs, matmul_spec, mlp_spec, publish_spec, spec_from_file
    from oracle.exceptions import ConfigError
    from oracle.protocol.spec import work_units

    if (price is None) == (amount is None):
        raise ConfigError("give exactly one of --price (per work unit) or --amount (per job)")
    asset = parse_asset(asset)
    own: JobInputs | None = None
    llm: LlmJob | None = None

    def given(flags: Sequence[str]) -> list[str]:
        return [
            f"--{f.removesuffix('_path').replace('_', '-')}"
            for f in flags
            if ctx.get_parameter_source(f) is ParameterSource.COMMANDLINE
        ]

    if spec_file:
        if combined := given(_KIND_FLAGS):
            raise ConfigError(f"--spec-file cannot be combined with {', '.join(combined)}")
        specs = [spec_from_file(spec_file)]
        if specs[0].kind == "llm":
            from oracle.client.llm_job import model_in_stores

            blob = specs[0].params.model.blob  # type: ignore[union-attr]
            if not model_in_stores(specs[0], spec_stores):
                raise ConfigError(
                    f"{spec_file}: the model blob {blob} is in none of the --spec-store "
                    "locations (publish it first, or use --kind llm --model FILE.gguf)"
                )
    elif kind == "llm":
        other = given([f for f in _KIND_FLAGS if f not in (*_LLM_FLAGS, "kind", "openings")])
        if other:
            raise ConfigError(
                f"--kind llm takes --prompt/--prompt-ids, --max-new-tokens, --model, --chat and "
                f"--openings, not {', '.join(other)}"
            )
        from oracle.client.llm_job import default_model_path, llm_job

        click.echo(f"model {model_path or default_model_path()}: loading and checking", err=True)
        llm = llm_job(
            model_path,
            prompt=prompt,
            prompt_ids=prompt_ids,
            max_new_tokens=max_new_tokens,
            chat=chat,
            openings=openings,
        )
        specs = [llm.spec]
    elif llm_only := given(_LLM_FLAGS):
        raise ConfigError(f"{', '.join(llm_only)} apply to --kind llm only")
    elif any(p is not None for p in (a_path, b_path, weights_path, x_path)):
        own, spec = _own_data_spec(
            ctx, kind, a_path, b_path, weights_path, x_path, mode, openings, rounds, activation
        )
        specs = [spec]
    elif kind == "matmul":
        if n is None:
            raise ConfigError("matmul needs --n (and optionally --m, --k)")
        if batch is not None or dims is not None:
            raise ConfigError("--batch and --dims apply to --kind mlp only")
        flags = {"m": "--m" if m else "--n", "n": "--n", "k": "--k" if k else "--n"}
        specs = [
            _parse_flags(
                matmul_spec(
                    dtype=dtype,
                    m=m or n,
                    n=n,
                    k=k or n,
                    seed=seed + i,
                    mode=mode,
                    openings=openings,
                    rounds=rounds,
                    keccak_inputs=keccak_inputs,
                ),
                flags,
            )
            for i in range(count)
        ]
    else:
        if batch is None or dims is None:
            raise ConfigError("mlp needs --batch and --dims d0,d1,...")
        if keccak_inputs:
            raise ConfigError("--keccak-inputs applies to --kind matmul only")
        if mode != "full" or any(x is not None for x in (m, n, k, openings)):
            raise ConfigError("mlp takes --batch, --dims, --activation, --rounds only (full mode)")
        try:
            widths = [int(x) for x in dims.split(",")]
        except ValueError:
            raise ConfigError(f"--dims must be comma-separated integers, got {dims!r}") from None
        specs = [
            _parse_flags(
                mlp_spec(
                    batch=batch, dims=widths, activation=activation, seed=seed + i, rounds=rounds
                ),
                {"batch": "--batch", "dims": "--dims"},
            )
            for i in range(count)
        ]
    amounts = [amount if amount is not None else (price or 0) * work_units(s) for s in specs]
    if any(a <= 0 for a in amounts):
        raise ConfigError("the escrow per job must be positive")
    chain = connect(network, deployments_dir, rpc)
    account = load_signer(keyfile, password_file, password_env)
    horizon = int(chain.call("max_horizon"))
    if deadline_in > horizon:
        raise ConfigError(
            f"--deadline-in {deadline_in} s is beyond this market's max_horizon of {horizon} s "
            f"({horizon / 86_400:g} days)"
        )
    if own is not None:
        from oracle.client.inputs import publish_blobs

        publish_blobs(own.blobs.blobs, spec_stores)
    if llm is not None:
        from oracle.client.llm_job import publish_model

        size = len(llm.model_bytes) / 1e6
        click.echo(f"model {llm.blob}: {size:.1f} MB, publishing where missing", err=True)
        sent = publish_model(llm, spec_stores)
        click.echo(f"model published to {', '.join(sent) or 'no store (all had it)'}", err=True)
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
                    **({"inputs": own.names()} if own is not None else {}),
                    **({"model": llm.blob, "prompt": llm.prompt_text} if llm is not None else {}),
                }
                for j, s, a in zip(ids, specs, amounts, strict=True)
            ]
        )
        return
    for j, s, a in zip(ids, specs, amounts, strict=True):
        click.echo(
            f"job {j}: spec 0x{s.hash.hex()}, {work_units(s):,} work units, escrow {a:,}", err=True
        )
    if own is not None:
        names = ", ".join(f"{key} {name}" for key, name in own.names().items())
        click.echo(f"inputs published: {names}", err=True)
    if llm is not None:
        n_prompt = len(llm.spec.params.prompt)  # type: ignore[union-attr]
        click.echo(f"prompt ({n_prompt} tokens): {llm.prompt_text!r}", err=True)
    for j in ids:
        click.echo(j)
    if wait_s is not None:
        _wait(chain, ids, wait_s, 1.0)


def _own_data_spec(
    ctx: click.Context,
    kind: str,
    a_path: str | None,
    b_path: str | None,
    weights_path: str | None,
    x_path: str | None,
    mode: str,
    openings: int | None,
    rounds: int | None,
    activation: str,
) -> tuple[JobInputs, Spec]:
    """The spec of a job on the requester's files, and its inputs ready to publish. Every
    check (the flags, the files, the spec's limits and verify options) runs before the
    inputs are hashed, and nothing is published here."""
    from oracle.client.inputs import matmul_job_inputs, mlp_job_inputs
    from oracle.client.jobs import matmul_spec, mlp_spec
    from oracle.exceptions import ConfigError
    from oracle.protocol.spec import parse_spec

    pairs = {
        "matmul": ("--a", "--b", a_path, b_path),
        "mlp": ("--weights", "--x", weights_path, x_path),
    }
    other = "mlp" if kind == "matmul" else "matmul"
    o1, o2, p1, p2 = pairs[other]
    if p1 is not None or p2 is not None:
        raise ConfigError(f"{o1} and {o2} apply to --kind {other} only")
    f1, f2, p1, p2 = pairs[kind]
    if p1 is None or p2 is None:
        raise ConfigError(f"{f1} and {f2} go together: give both")
    replaced = [*_SEEDED_FLAGS, *(("activation",) if kind == "matmul" else ())]
    given = [
        f"--{f.replace('_', '-')}"
        for f in replaced
        if ctx.get_parameter_source(f) is ParameterSource.COMMANDLINE
    ]
    if kind == "mlp" and (mode != "full" or openings is not None):
        raise ConfigError("mlp verifies in full mode only (--mode sampled, --openings: matmul)")
    if given:
        raise ConfigError(
            f"{f1} and {f2} cannot be combined with {', '.join(given)} (the files give the "
            "sizes and the dtype)"
        )
    own = matmul_job_inputs(p1, p2) if kind == "matmul" else mlp_job_inputs(p1, p2)

    def build(inputs: dict[str, Any]) -> Spec:
        if own.kind == "matmul":
            return parse_spec(
                matmul_spec(
                    **own.fields, mode=mode, openings=openings, rounds=rounds, inputs=inputs
                )
            )
        return parse_spec(
            mlp_spec(**own.fields, activation=activation, rounds=rounds, inputs=inputs)
        )

    build(own.placeholder())  # the limits and verify options, before hashing the data
    return own, build(own.blobs.inputs)


def _wait(chain: Chain, ids: list[int], timeout: float, poll: float) -> None:
    """Follow ``ids`` with a live table on stderr; exit 0 when all are paid, else 1."""
    from rich.live import Live
    from rich.table import Table

    from oracle.client.wait import JobWatch, follow

    def table(watch: JobWatch, elapsed: float) -> Table:
        t = Table(title=f"following {len(ids)} job(s), {elapsed:.0f} s")
        for col in ("job", "state", "submissions", "slashed", "paid to", "after", "events"):
            t.add_column(col)
        for st in watch.jobs.values():
            t.add_row(
                str(st.job_id),
                st.state,
                str(st.submissions),
                str(st.slashed),
                st.worker or "",
                "" if st.ended_at is None else f"{st.ended_at:.1f} s",
                "; ".join(st.log[-2:]),
            )
        return t

    con = console(stderr=True)
    with Live(table(JobWatch(ids), 0.0), console=con, refresh_per_second=4) as live:
        watch = follow(
            chain,
            ids,
            timeout=timeout,
            poll=poll,
            on_round=lambda w, elapsed: live.update(table(w, elapsed)),
        )
    for st in watch.jobs.values():
        after = "" if st.ended_at is None else f" after {st.ended_at:.1f} s"
        extra = f", {st.slashed} slashed" if st.slashed else ""
        paid = f" to {st.worker}" if st.worker else ""
        click.echo(f"job {st.job_id}: {st.state}{paid}{after}{extra}")
    code = watch.exit_code()
    if code:
        sys.exit(code)


@job.command("wait")
@click.argument("job_ids", nargs=-1, required=True, type=click.IntRange(1))
@on_chain
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=3_600.0,
    show_default=True,
    help="Seconds to follow before giving up (exit 1).",
)
@click.option("--poll", type=click.FloatRange(0.05), default=1.0, show_default=True)
def job_wait(
    job_ids: tuple[int, ...],
    network: str,
    deployments_dir: str,
    rpc: str,
    timeout: float,
    poll: float,
) -> None:
    """Follow jobs to settlement with a live table (state, submissions, slashes, time) and
    a line per job at the end. Exit 0 when every job was paid, 1 if any was refunded,
    cancelled or is still open at --timeout, 2 on bad input (e.g. a job that does not exist).

    \b
    Example:
      pouw job wait 1 2 3 --timeout 600
    """
    _wait(connect(network, deployments_dir, rpc), list(job_ids), timeout, poll)


@job.command("result")
@click.argument("job_id", type=click.IntRange(1))
@on_chain
@click.option(
    "--store",
    "stores",
    multiple=True,
    required=True,
    help="A job store (http(s) URL or directory) the result was delivered to; repeat to try "
    "several in turn.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Where to write the result as .npy [default: job-<ID>.npy; llm: only if given, the "
    "token ids].",
)
@click.option(
    "--all-layers",
    is_flag=True,
    help="mlp: write every layer's pre-activations and activations, not only the output.",
)
@JSON
def job_result(
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    stores: tuple[str, ...],
    out: str | None,
    all_layers: bool,
    as_json: bool,
) -> None:
    """Fetch the verified result of a settled job and write it as .npy (llm: print it).

    The worker that was paid delivered its full result to the job stores before it
    committed; this finds that worker's commitment on the chain, fetches the result, checks it
    opens the commitment (keccak256(worker ‖ row Merkle root)) and writes it. A store whose
    copy does not match is skipped for the next. matmul: C (int32 for int8 inputs, exact;
    float32 for fp32); mlp: the output batch (batch × last width); llm: the prompt and the
    verified completion are printed (the text decoded with the model's tokenizer; the model
    file is fetched from the stores by its blob name once and cached), and the generated
    token ids written as uint32 .npy only with --out. Stores keep results for
    their retention period (30 days by default), whether or not the worker is still online.

    Exit 0 with the file written; 1 if the job is not settled with a result, or no store holds
    a copy that matches (nothing is written); 2 on bad input (no such job, a store that does
    not answer, an --out that cannot be written).

    \b
    Example:
      pouw job result 7 --store http://127.0.0.1:8600 --out C.npy
      pouw job result 8 --store http://127.0.0.1:8600          # an llm job: prints the text
    """
    from oracle.client.result import NoVerifiedResult, fetch_result, write_npy

    chain = connect(network, deployments_dir, rpc)
    try:
        got = fetch_result(chain, job_id, stores, all_layers=all_layers)
    except NoVerifiedResult as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if got.spec.kind == "llm":
        _print_completion(got, stores, out, as_json)
        return
    target = out or f"job-{job_id}.npy"
    write_npy(target, got.array)
    about = {
        "job_id": job_id,
        "worker": got.worker,
        "commitment": "0x" + got.commitment.hex(),
        "kind": got.spec.kind,
        "shape": list(got.array.shape),
        "dtype": str(got.array.dtype),
        "out": target,
    }
    if as_json:
        print_json(about)
        return
    shape = "×".join(map(str, got.array.shape))
    console().print(
        f"job {job_id}: result of {got.worker} verified against commitment "
        f"0x{got.commitment.hex()[:16]}…, {shape} {got.array.dtype}, written to {target}"
    )


def _print_completion(
    got: JobResult, stores: Sequence[str], out: str | None, as_json: bool
) -> None:
    """An llm job's verified prompt and completion, as text (and the token ids to ``out``)."""
    from oracle.client.llm_job import completion_text
    from oracle.client.result import write_npy

    tokens = [int(t) for t in got.array]
    prompt, text = completion_text(got.spec, tokens, stores)
    if out:
        write_npy(out, got.array)
    if as_json:
        print_json(
            {
                "job_id": got.job_id,
                "worker": got.worker,
                "commitment": "0x" + got.commitment.hex(),
                "kind": "llm",
                "prompt": prompt,
                "completion": text,
                "tokens": tokens,
                **({"out": out} if out else {}),
            }
        )
        return
    click.echo(
        f"job {got.job_id}: completion of {got.worker} verified against commitment "
        f"0x{got.commitment.hex()[:16]}…, {len(tokens)} tokens"
        + (f", token ids written to {out}" if out else ""),
        err=True,
    )
    click.echo(f"prompt:     {prompt}")
    click.echo(f"completion: {text}")


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
        f"deadline {when(info['deadline'], info['now'])}"
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


def _send_market(chain: Chain, account: LocalAccount, fn_name: str, *args: Any) -> Any:
    """Simulate, then send ``market.<fn_name>(*args)`` from ``account``; returns the
    receipt."""
    from oracle.chain.client import TxSender
    from oracle.client.jobs import simulate

    fn = getattr(chain.market.functions, fn_name)(*args)
    simulate(chain, fn, account.address)
    return TxSender(chain, account).send(fn, fn_name)


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
    """Refund an unsettled job after its deadline (anyone may; with submissions, after the
    settlement grace too). The escrow is credited to the requester: take it out with
    `pouw withdraw`."""
    _return_escrow(
        "refund", job_id, network, deployments_dir, rpc, keyfile, password_file, password_env
    )


@job.command("cancel")
@click.argument("job_id", type=click.IntRange(0))
@signer_on_chain()
def job_cancel(
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
) -> None:
    """Cancel your own open job before any worker has submitted to it. The escrow is
    credited back to you: take it out with `pouw withdraw`."""
    _return_escrow(
        "cancel", job_id, network, deployments_dir, rpc, keyfile, password_file, password_env
    )


def _return_escrow(
    fn_name: str,
    job_id: int,
    network: str,
    deployments_dir: str,
    rpc: str,
    keyfile: str,
    password_file: str | None,
    password_env: str | None,
) -> None:
    """Send ``refund``/``cancel`` for ``job_id`` (a job the market gave out) and say what
    went back to whom."""
    from oracle.client.jobs import require_jobs

    event, verb = {"refund": ("JobRefunded", "refunded"), "cancel": ("JobCancelled", "cancelled")}[
        fn_name
    ]
    chain = connect(network, deployments_dir, rpc)
    account = load_signer(keyfile, password_file, password_env)
    require_jobs(chain, [job_id])
    rcpt = _send_market(chain, account, fn_name, job_id)
    for ev in chain.receipt_events(rcpt, (event,)):
        click.echo(f"job {job_id} {verb}: {ev.args['amount']:,} to {ev.args['requester']}")


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
    """Withdraw the balance credited to this account: escrow a worker earned, and for a
    requester escrow returned by `job refund` / `job cancel` or a cheater's slashed bond.
    Nothing is credited to a requester whose jobs were all paid: then it says so and sends
    nothing (exit 0)."""
    token = parse_asset(asset)
    chain = connect(network, deployments_dir, rpc)
    account = load_signer(keyfile, password_file, password_env)
    if int(chain.call("credited", account.address, token)) == 0:
        click.echo(f"nothing credited to {account.address} in {asset}: nothing to withdraw")
        return
    rcpt = _send_market(chain, account, "withdraw", token)
    total = sum(int(e.args["amount"]) for e in chain.receipt_events(rcpt, ("Withdrawn",)))
    click.echo(f"withdrawn {total:,}")


def _parse_flags(spec: dict[str, Any], flags: dict[str, str]) -> Spec:
    """parse_spec, with an error naming the flag the user typed (``--n``) rather than the
    spec field it became (``spec.m``)."""
    from oracle.exceptions import ConfigError, SpecError
    from oracle.protocol.spec import parse_spec

    try:
        return parse_spec(spec)
    except SpecError as exc:
        msg = str(exc)
        for field, flag in flags.items():
            if msg.startswith(f"spec.{field}:"):
                raise ConfigError(flag + msg[len(f"spec.{field}") :]) from None
        raise


def when(timestamp: int, now: int) -> str:
    """A unix time as UTC and relative to ``now`` (``2026-12-04 15:00:00 UTC, in 12 min``)."""
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    delta = timestamp - now
    span = abs(delta)
    text = (
        f"{span} s"
        if span < 120
        else f"{span // 60} min"
        if span < 7_200
        else f"{span / 3_600:.1f} h"
        if span < 172_800
        else f"{span / 86_400:.1f} days"
    )
    return f"{stamp} UTC, {'in ' + text if delta >= 0 else text + ' ago'}"
