"""`pouw demo`: a small pouw network played for a few epochs on a local chain, then checked.

Two requesters post a mix of seeded jobs every epoch — `matmul` int8 and fp32 in full and
sampled mode, and `mlp` (ReLU, GELU) — one paying in ETH, one in an ERC-20, each also
posting one job too large for any worker (it is refunded). Three workers of different speeds
take jobs from the queue as they become free (a faster worker finishes more jobs: work units
per second is the efficiency the protocol rewards); the slow one cheats now and then. Three
oracle keys verify every submission from the challenge seed (the hash of the block after the
submission), the full result or the worker's sampled-mode answer, and two of them sign each
batch (threshold 2). Cheaters are slashed and their jobs go back to the queue. After every
epoch the workers claim their share of its emission.

The run ends with a table per worker and per requester and checks the outcome against the
contracts' own state: escrow + bonds + credited balances == the market's balance of each
asset, every job paid at most once, each epoch's minted total == the sum of the rounded-down
shares <= its emission, and every share of emission == the share of work (to the wei, after
rounding down). `run_demo` returns the problems found; the CLI exits non-zero on any.

Worker speeds are simulated: every job is really computed once (numpy) and timed; a worker
that is k times slower takes k times as long in the demo's clock, which orders commitments.

The job store is a directory: alice also posts one job on her own matrices (int8 A and B
published as blob inputs with their row roots), every worker delivers each full result to the
store before it commits (the oracles verify full-mode results from there), and at the end
alice fetches her paid job's result from the store, checks it against the worker's commitment
and compares it with ``A @ B`` computed locally.

alice also posts one ``llm`` job in the first epoch: greedy generation of 8 tokens after
"The capital of France is" on the default model (SmolLM2-135M-Instruct, the GGUF file
``make setup`` fetched; the model goes to the job store as a blob). A worker generates with the
trace, the oracles challenge it and check the answer (every linear map by Freivalds, the
sampled positions' elementwise steps, every generated token's argmax), and at the end alice
reads the verified completion from the delivered result. The cheater does not tamper with
llm results (its tampered result would have no trace to answer from). Without the model file
the demo runs without the llm job and says so.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from oracle.chain.ape_batches import finalize_batches, settled_batch
from oracle.chain.ape_deploy import deploy_protocol
from oracle.compute.blob_inputs import matmul_blobs
from oracle.compute.verify import check_full, check_sampled, prepare
from oracle.compute.work import answer_challenge, compute, result_root
from oracle.protocol.attestation import (
    SIGNATURE_TTL,
    Attestation,
    order_signatures,
    sign_settlement,
)
from oracle.protocol.challenge import challenge_block, challenge_seed
from oracle.protocol.commitment import commitment
from oracle.protocol.emission import epoch_emission
from oracle.protocol.params import LOCAL
from oracle.protocol.results import (
    decode_llm_result,
    decode_result,
    encode_result,
    result_layout,
)
from oracle.protocol.settled import SettledBatch
from oracle.protocol.spec import Spec, parse_spec, spec_hash, work_units
from oracle.sim.simulate import oracle_keys
from oracle.store.blobs import LocalBlobStore
from oracle.store.results import ResultStores, StoredResult
from oracle.store.specs import InputStore

ZERO = "0x0000000000000000000000000000000000000000"
THRESHOLD = 2
MAX_ROUNDS = 3
#: Largest job (work units) any demo worker accepts; the oversized job is above it.
MAX_UNITS = 50_000_000


@dataclass
class WorkerSim:
    name: str
    account: Any
    slowdown: float
    cheat_every: int  # 0: honest; k: cheats on its 1st, (k+1)th, (2k+1)th... job
    busy_s: float = 0.0
    taken: int = 0
    jobs: int = 0
    units: int = 0
    slashed: int = 0
    minted: int = 0
    escrow: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class RequesterSim:
    name: str
    account: Any
    asset: str
    price: int  # base units of the asset per work unit
    posted: int = 0
    settled: int = 0
    refunded: int = 0
    spent: int = 0


@dataclass
class DemoResult:
    problems: list[str]
    workers: list[WorkerSim]
    requesters: list[RequesterSim]
    epochs: int
    market: Any = None
    #: alice's job on her own matrices (its fetched result was checked against A @ B).
    own_job: int | None = None
    #: alice's llm job and its verified completion (None without the model file).
    llm_job: int | None = None
    completion: str | None = None


def job_mix(epoch: int, who: int) -> list[dict[str, Any]]:
    """The specs one requester posts in one epoch (seeds differ per epoch and requester)."""
    base = 1_000 * epoch + 100 * who
    mm = [
        ("int8", "full", 128),
        ("fp32", "full", 96),
        ("int8", "sampled", 160),
        ("fp32", "sampled", 128),
    ]
    specs: list[dict[str, Any]] = [
        {
            "version": 1,
            "kind": "matmul",
            "dtype": dt,
            "m": n,
            "n": n,
            "k": n,
            "inputs": {"seed": base + i},
            "verify": {"mode": mode, **({"openings": 8} if mode == "sampled" else {})},
        }
        for i, (dt, mode, n) in enumerate(mm)
    ]
    specs.append(
        {
            "version": 1,
            "kind": "mlp",
            "dtype": "fp32",
            "batch": 32,
            "dims": [64, 128, 64, 16],
            "activation": "gelu" if who else "relu",
            "inputs": {"seed": base + 10},
            "verify": {"mode": "full"},
        }
    )
    # Too large for every worker's filter: nobody takes it, the requester is refunded.
    specs.append(
        {
            "version": 1,
            "kind": "matmul",
            "dtype": "fp32",
            "m": 512,
            "n": 512,
            "k": 512,
            "inputs": {"seed": base + 20},
            "verify": {"mode": "full"},
        }
    )
    return specs


class Network:
    """The actors and the chain handles of one demo run."""

    def __init__(
        self, project: Any, chain: Any, accounts: Any, network: str, console: Console, seed: int
    ) -> None:
        self.chain = chain
        self.console = console
        self.rng = random.Random(seed)
        self.keys = oracle_keys()
        deployer = accounts[0]
        self.token, self.market, _ = deploy_protocol(
            project,
            deployer,
            [k.address for k in self.keys],
            THRESHOLD,
            LOCAL,
            network,
            chain.chain_id,
        )
        self.usd = project.MockToken.deploy("Mock USD", "mUSD", sender=deployer)
        self.market.set_asset_allowed(self.usd, True, sender=deployer)
        self.requesters = [
            RequesterSim("alice (ETH)", accounts[1], ZERO, 5 * 10**6),
            RequesterSim("bob (mUSD)", accounts[2], str(self.usd.address), 10**7),
        ]
        self.usd.mint(accounts[2], 10**27, sender=deployer)
        self.usd.approve(self.market, 2**256 - 1, sender=accounts[2])
        self.workers = [
            WorkerSim("fast", accounts[3], 1.0, 0),
            WorkerSim("medium", accounts[4], 2.5, 0),
            WorkerSim("slow-cheat", accounts[5], 6.0, 3),
        ]
        self.specs: dict[int, Spec] = {}
        self.owner: dict[int, RequesterSim] = {}
        self.results: dict[int, tuple[np.ndarray, float]] = {}  # job -> (result, seconds)
        self.paid: dict[int, int] = defaultdict(int)
        self.paid_to: dict[int, str] = {}
        #: Settled batches whose challenge window is not over (paid by ``finalize_all``).
        self.pending: list[SettledBatch] = []
        #: Every (job, worker) that submitted: the submissions whose stakes the books count.
        self.submitted: set[tuple[int, Any]] = set()
        self.minted_by_epoch: dict[int, int] = defaultdict(int)
        self.line = console.print
        self.problems: list[str] = []
        # The job store: specs' blob inputs and delivered results (a directory here).
        self._store_dir = tempfile.TemporaryDirectory(prefix="pouw-demo-store-")
        self.store = LocalBlobStore(self._store_dir.name)
        self.inputs = InputStore([self._store_dir.name])
        self.delivered = ResultStores([self._store_dir.name])
        #: (job, worker address) -> the commitment it submitted.
        self.commitments: dict[tuple[int, str], bytes] = {}
        #: alice's own matrices and the job that computes A @ B on them.
        rng = np.random.default_rng(seed)
        self.own_a = rng.integers(-128, 128, (64, 48), dtype=np.int8)
        self.own_b = rng.integers(-128, 128, (48, 40), dtype=np.int8)
        self.own_job: int | None = None
        self.llm_job: int | None = None
        self.llm_prompt = "The capital of France is"
        self.completion: str | None = None

    def own_data_spec(self) -> dict[str, Any]:
        """alice's job on her own A and B: both published to the job store as blobs."""
        made = matmul_blobs(self.own_a, self.own_b)
        for data in made.blobs.values():
            self.store.put(data)
        (m, k), n = self.own_a.shape, self.own_b.shape[1]
        return {
            "version": 1,
            "kind": "matmul",
            "dtype": "int8",
            "m": m,
            "n": n,
            "k": k,
            "inputs": made.inputs,
            "verify": {"mode": "full"},
        }

    def llm_spec(self) -> dict[str, Any] | None:
        """alice's llm job on the default model (published to the job store as a blob), or
        None with a line when the model file is absent."""
        from oracle.client.llm_job import default_model_path, llm_job

        path = default_model_path()
        if not path.is_file():
            self.line(f"  [yellow]no llm job[/]: {path} is absent (`make setup` fetches it)")
            return None
        # llm_job keeps the loaded model in MODELS: the demo's workers and oracles use it
        job = llm_job(path, prompt=self.llm_prompt, prompt_ids=None, max_new_tokens=8)
        self.store.put(job.model_bytes)
        return json.loads(job.spec.canonical)

    # -- requesters ----------------------------------------------------------------------
    def post(self, epoch: int) -> list[int]:
        posted = []
        deadline = self.chain.pending_timestamp + LOCAL.epoch_length // 2
        for who, req in enumerate(self.requesters):
            mix = job_mix(epoch, who)
            if epoch == 0 and who == 0:
                mix.insert(0, self.own_data_spec())
                llm = self.llm_spec()
                if llm is not None:
                    mix.insert(0, llm)  # first: the fastest worker takes it
            specs = [parse_spec(s) for s in mix]
            for spec in specs:
                self.store.put(spec.canonical)
            reqs = [
                (spec_hash(s), work_units(s), req.asset, work_units(s) * req.price, deadline)
                for s in specs
            ]
            value = sum(r[3] for r in reqs) if req.asset == ZERO else 0
            tx = self.market.create_jobs(reqs, sender=req.account, value=value)
            for log, spec in zip(tx.decode_logs(self.market.JobCreated), specs, strict=True):
                if spec.kind == "llm":
                    self.llm_job = log.job_id
                elif spec.params.seed is None:
                    self.own_job = log.job_id
                self.specs[log.job_id] = spec
                self.owner[log.job_id] = req
                req.posted += 1
                posted.append(log.job_id)
        self.line(f"  {len(posted)} jobs posted by {len(self.requesters)} requesters")
        return posted

    # -- workers -------------------------------------------------------------------------
    def result_of(self, job_id: int) -> tuple[np.ndarray, float]:
        if job_id not in self.results:
            start = time.perf_counter()
            result = compute(self.specs[job_id], store=self.inputs)
            self.results[job_id] = (result, time.perf_counter() - start)
        return self.results[job_id]

    def assign(self, open_jobs: list[int]) -> list[tuple[float, WorkerSim, int]]:
        """Jobs go to whichever worker is free first (virtual clock): (finish, worker, job)."""
        free_at = {w.name: 0.0 for w in self.workers}
        plan = []
        for job_id in open_jobs:
            spec = self.specs[job_id]
            if spec.kind != "llm" and work_units(spec) > MAX_UNITS:
                continue
            w = min(self.workers, key=lambda x: (free_at[x.name], x.slowdown))
            _, seconds = self.result_of(job_id)
            free_at[w.name] += seconds * w.slowdown
            w.busy_s += seconds * w.slowdown
            plan.append((free_at[w.name], w, job_id))
        return sorted(plan, key=lambda p: p[0])

    def submit(self, plan: list[tuple[float, WorkerSim, int]]) -> list[tuple[int, WorkerSim, Any]]:
        served = []
        for _, w, job_id in plan:
            if self.market.bonds(w.account) < LOCAL.min_bond:
                self.market.register(sender=w.account, value=LOCAL.min_bond)
            result, _ = self.result_of(job_id)
            out = result
            spec = self.specs[job_id]
            if spec.kind != "llm":  # an llm result is all token ids and trace roots
                w.taken += 1
                if w.cheat_every and (w.taken - 1) % w.cheat_every == 0:  # one wrong element
                    out = result.copy()
                    out.flat[self.rng.randrange(out.size)] += 1
            root = result_root(spec, out)
            c = commitment(str(w.account.address), root)
            # Delivered to the job store before the commitment is sent, as a worker does.
            row_bytes = result_layout(spec)[0][1] * out.dtype.itemsize
            held, errors = self.delivered.deliver(
                [StoredResult(c, str(w.account.address), row_bytes, encode_result(out))]
            )
            if c not in held:
                self.problems.append(f"job {job_id}: delivery failed: {errors}")
            self.commitments[(job_id, str(w.account.address))] = c
            self.market.submit_result(job_id, c, sender=w.account)
            self.submitted.add((job_id, w.account))
            served.append((job_id, w, (out, root)))
        return served

    # -- oracles -------------------------------------------------------------------------
    def verify(self, job_id: int, worker: WorkerSim, served: tuple[np.ndarray, bytes]) -> Any:
        spec = self.specs[job_id]
        sub = self.market.submissions(job_id, worker.account)
        block_hash = bytes(self.chain.blocks[challenge_block(sub.block_number)].hash)
        seed = challenge_seed(block_hash, job_id, str(worker.account.address))
        out, root = served
        verdicts = []
        for _ in self.keys:  # every oracle node verifies on its own
            prepared = prepare(spec, seed, store=self.inputs)
            if spec.mode == "sampled":
                # the worker answers the challenge (llm: from the trace it kept)
                answer = answer_challenge(spec, out, seed, store=self.inputs)
                verdicts.append(check_sampled(prepared, answer, root))
            else:  # the delivered result, from the job store (checked against the commitment)
                size = len(encode_result(out))
                got = self.delivered.fetch(bytes(sub.commitment), size)
                verdicts.append(check_full(prepared, bytes(got.data)))
        assert len({v.transcript_hash for v in verdicts}) == 1, "oracles disagree"
        return verdicts[0]

    def settle(self, served: list[tuple[int, WorkerSim, Any]], epoch: int) -> None:
        self.chain.mine()  # the challenge block of the last submission
        batch = []
        for job_id, w, data in served:
            v = self.verify(job_id, w, data)
            sub = self.market.submissions(job_id, w.account)
            batch.append(
                Attestation(
                    job_id,
                    str(w.account.address),
                    bytes(sub.commitment),
                    int(sub.block_number),
                    work_units(self.specs[job_id]),
                    int(v.verdict),
                    v.transcript_hash,
                )
            )
        signers = self.rng.sample(self.keys, THRESHOLD)
        valid_until = self.chain.pending_timestamp + SIGNATURE_TTL
        sigs = order_signatures(
            sign_settlement(k, self.chain.chain_id, self.market.address, batch, valid_until)
            for k in signers
        )
        tx = self.market.settle(
            [a.as_tuple() for a in batch],
            valid_until,
            [s.as_tuple() for s in sigs],
            sender=self.requesters[0].account,
        )
        recorded = settled_batch(self.market, tx)
        if recorded is not None:
            self.pending.append(recorded)
        by_address = {str(w.account.address): w for w in self.workers}
        for log in tx.decode_logs(self.market.WorkerSlashed):
            w = by_address[str(log.worker)]
            w.slashed += 1
            self.line(
                f"  [red]slash[/]   job {log.job_id:>3}  {w.name:<10} bond "
                f"{log.amount / 1e18:.2f} ETH -> requester"
            )
        for log in tx.decode_logs(self.market.JobSettled):
            w = by_address[str(log.worker)]
            units = work_units(self.specs[log.job_id])
            req = self.owner[log.job_id]
            w.jobs += 1
            w.units += units
            w.escrow[req.asset] += units * req.price
            req.settled += 1
            req.spent += units * req.price
            self.paid[log.job_id] += 1
            self.paid_to[log.job_id] = str(log.worker)
            spec = self.specs[log.job_id]
            label = f"{spec.kind} {spec.params.dtype} {spec.mode}"
            self.line(
                f"  [green]settle[/]  job {log.job_id:>3}  {w.name:<10} {label:<22} "
                f"{units:>11,} units"
            )

    def finalize_all(self) -> None:
        """Pay every settled batch whose challenge window is over (no dispute came)."""
        n = finalize_batches(self.market, self.chain, self.pending, self.requesters[0].account)
        if n:
            self.line(f"  [green]final[/]   {n} batches past their challenge window: paid")

    # -- emission ------------------------------------------------------------------------
    def claim_all(self) -> None:
        current = self.market.current_epoch()
        for w in self.workers:
            epochs = [e for e in range(current) if self.market.epoch_work(e, w.account) > 0]
            if not epochs:
                continue
            # The share each claim must mint: emission * work // total work, nothing else.
            expected = {
                e: epoch_emission(LOCAL.initial_emission, LOCAL.halving_epochs, e)
                * self.market.epoch_work(e, w.account)
                // self.market.epoch_total_work(e)
                for e in epochs
            }
            tx = self.market.claim(epochs, sender=w.account)
            for log in tx.decode_logs(self.market.RewardClaimed):
                if log.amount != expected[log.epoch]:
                    self.problems.append(
                        f"{w.name} epoch {log.epoch}: minted {log.amount}, "
                        f"share of work says {expected[log.epoch]}"
                    )
                w.minted += log.amount
                self.minted_by_epoch[log.epoch] += log.amount
                self.line(
                    f"  [cyan]claim[/]   epoch {log.epoch}  {w.name:<10} "
                    f"{log.amount / 1e18:,.3f} WORK for {log.work_units:,} units"
                )

    def paid_result(self, job_id: int | None, what: str) -> bytes | None:
        """The result of a job paid once, from the job store (the paid worker's commitment
        opens it), or None with a problem noted."""
        if job_id is None or self.paid[job_id] != 1:
            self.problems.append(f"alice's {what} job {job_id} was not paid once")
            return None
        (rows, cols), dtype = result_layout(self.specs[job_id])
        c = self.commitments[(job_id, self.paid_to[job_id])]
        return bytes(self.delivered.fetch(c, rows * cols * dtype.itemsize).data)  # opens c

    def fetch_own_result(self) -> None:
        """alice takes her own-data job's result from the job store: the paid worker's
        commitment opens it, and it equals ``A @ B`` computed here."""
        job_id = self.own_job
        data = self.paid_result(job_id, "own-data")
        if job_id is None or data is None:
            return
        spec = self.specs[job_id]
        (rows, cols), _ = result_layout(spec)
        local = self.own_a.astype(np.int32) @ self.own_b.astype(np.int32)
        if not np.array_equal(decode_result(spec, data), local):
            self.problems.append(f"alice's own-data job {job_id}: the result is not A @ B")
            return
        self.line(
            f"  [bold green]own data[/] alice's job {job_id}: result from the job store, "
            f"verified against its commitment, equals her local A @ B ({rows}×{cols} int32)"
        )

    def fetch_completion(self) -> None:
        """alice reads her llm job's verified completion: the delivered result opens the
        paid worker's commitment, and its tokens decode with the model's tokenizer."""
        from oracle.client.llm_job import completion_text

        job_id = self.llm_job
        if job_id is None:  # no model file: no llm job was posted
            return
        data = self.paid_result(job_id, "llm")
        if data is None:
            return
        spec = self.specs[job_id]
        _, tokens = decode_llm_result(spec, data)
        prompt, self.completion = completion_text(spec, tokens, [self._store_dir.name])
        self.line(
            f"  [bold green]llm[/] alice's job {job_id}: {len(tokens)} tokens verified by the "
            f"oracles and opened from the job store\n"
            f"      prompt:     {prompt!r}\n      completion: {self.completion!r}"
        )

    def refund_expired(self, jobs: list[int]) -> None:
        now = self.chain.pending_timestamp
        for job_id in jobs:
            job = self.market.job(job_id)
            if job.status == 1 and job.deadline < now and job.submissions == 0:
                req = self.owner[job_id]
                self.market.refund(job_id, sender=req.account)
                req.refunded += 1
                self.line(f"  [yellow]refund[/]  job {job_id:>3}  {req.name}  nobody took it")


def run_demo(
    project: Any,
    chain: Any,
    accounts: Any,
    network: str,
    epochs: int = 3,
    console: Console | None = None,
    seed: int = 7,
) -> DemoResult:
    """Play the network for `epochs` epochs on the connected local chain and check it."""
    console = console or Console()
    from ape.logging import logger

    logger.set_level("WARNING")  # one line per protocol event, not per transaction
    net = Network(project, chain, accounts, network, console, seed)
    m = net.market
    console.print(
        f"[bold]pouw network[/] market {m.address}  token {net.token.address}  "
        f"oracles 3, threshold {THRESHOLD}"
    )
    all_jobs: list[int] = []
    first_epoch = m.current_epoch()
    progress = Progress(
        TextColumn("[bold]epochs"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=epochs)
        for i in range(epochs):
            epoch = m.current_epoch()
            emission = epoch_emission(LOCAL.initial_emission, LOCAL.halving_epochs, epoch)
            console.rule(f"epoch {epoch}  emission {emission / 1e18:,.0f} WORK")
            progress.update(task, description=f"epoch {epoch}: posting")
            jobs = net.post(i)
            all_jobs += jobs
            for r in range(MAX_ROUNDS):
                open_jobs = [j for j in jobs if m.job(j).status == 1]
                plan = net.assign(open_jobs)
                if not plan:
                    break
                progress.update(
                    task,
                    description=f"epoch {epoch}: round {r + 1}, "
                    f"{len(plan)} jobs computing and verifying",
                )
                net.settle(net.submit(plan), epoch)
            # Next epoch: deadlines pass, unwanted jobs are refunded, rewards claimed.
            progress.update(task, description=f"epoch {epoch}: refunds and claims")
            # The epoch's work is claimable once its last batch is final too.
            start = m.GENESIS() + (epoch + 1) * LOCAL.epoch_length
            final = max((b.final_at for b in net.pending), default=0)
            net.chain.pending_timestamp = max(net.chain.pending_timestamp, start + 1, final)
            net.chain.mine()
            net.finalize_all()
            net.refund_expired(jobs)
            net.claim_all()
            progress.advance(task)

    for w in net.workers:
        for asset in (ZERO, str(net.usd.address)):
            if m.credited(w.account, asset) > 0:
                m.withdraw(asset, sender=w.account)
    net.fetch_own_result()
    net.fetch_completion()
    problems = check_demo(net, all_jobs, first_epoch)
    console.print(summary_table(net))
    return DemoResult(
        problems, net.workers, net.requesters, epochs, m, net.own_job, net.llm_job, net.completion
    )


def check_demo(net: Network, jobs: list[int], first_epoch: int) -> list[str]:
    """Compare the demo's books with the contracts' own state."""
    m, problems = net.market, list(net.problems)
    actors = [r.account for r in net.requesters] + [w.account for w in net.workers]
    terms = [m.job(j) for j in jobs]  # one call per job: the checks below read each thrice
    for asset, balance in (
        (ZERO, net.chain.provider.get_balance(m.address)),
        (str(net.usd.address), net.usd.balanceOf(m)),
    ):
        owed = sum(t.amount for t in terms if t.status == 1 and str(t.asset) == asset)
        owed += sum(m.credited(a, asset) for a in actors) + m.pending(asset)
        if asset == ZERO:  # free bonds, and the stakes live submissions hold
            owed += sum(m.bonds(w.account) for w in net.workers)
            owed += sum(m.submissions(j, who).stake for j, who in net.submitted)
        if owed != balance:
            problems.append(f"market holds {balance} of {asset} but owes {owed}")
    if any(n > 1 for n in net.paid.values()):
        problems.append(f"a job was paid twice: {dict(net.paid)}")
    ended = m.current_epoch()
    minted_total = 0
    for e in range(first_epoch, ended):
        emission = epoch_emission(LOCAL.initial_emission, LOCAL.halving_epochs, e)
        minted = net.minted_by_epoch.get(e, 0)
        minted_total += minted
        if minted > emission:
            problems.append(f"epoch {e} minted {minted} > emission {emission}")
    if net.token.totalSupply() != minted_total:
        problems.append(f"supply {net.token.totalSupply()} != claimed {minted_total}")
    total_units = sum(w.units for w in net.workers)
    if total_units == 0:
        problems.append("no work was settled")
    for w in net.workers:
        if w.cheat_every == 0 and w.slashed:
            problems.append(f"honest worker {w.name} was slashed")
    if not any(w.slashed for w in net.workers):
        problems.append("the cheater was never caught")
    if sum(r.refunded for r in net.requesters) == 0:
        problems.append("no refund happened")
    return problems


def summary_table(net: Network) -> Table:
    total_units = sum(w.units for w in net.workers) or 1
    total_minted = sum(w.minted for w in net.workers) or 1
    t = Table(title="pouw demo: who did what")
    for col in (
        "worker",
        "jobs",
        "work units",
        "units/s",
        "escrow ETH",
        "escrow mUSD",
        "WORK minted",
        "share of emission",
        "share of work",
        "slashed",
    ):
        t.add_column(col, justify="right")
    usd = str(net.usd.address)
    for w in net.workers:
        t.add_row(
            w.name,
            str(w.jobs),
            f"{w.units:,}",
            f"{w.units / w.busy_s:,.3g}" if w.busy_s else "-",
            f"{w.escrow[ZERO] / 1e18:.6f}",
            f"{w.escrow[usd] / 1e18:.6f}",
            f"{w.minted / 1e18:,.3f}",
            f"{100 * w.minted / total_minted:.2f}%",
            f"{100 * w.units / total_units:.2f}%",
            str(w.slashed),
        )
    r = Table(title="requesters")
    for col in ("requester", "posted", "settled", "refunded", "escrow paid out"):
        r.add_column(col, justify="right")
    for q in net.requesters:
        r.add_row(q.name, str(q.posted), str(q.settled), str(q.refunded), f"{q.spent / 1e18:.6f}")
    grid = Table.grid()
    grid.add_row(t)
    grid.add_row(r)
    return grid


__all__ = ["DemoResult", "job_mix", "run_demo"]
