"""The requester's side of a job: build a spec, publish it, escrow it; read a job back.

* :func:`matmul_spec` / :func:`mlp_spec` — a spec dict from command-line style parameters
  (validated by :func:`oracle.protocol.spec.parse_spec` like any other spec).
* :func:`publish_spec` — store the canonical bytes in every spec store (a directory or an
  HTTP blob server), so that workers and oracles can fetch the spec by its hash.
* :func:`create_jobs` — escrow one job per spec in one ``create_jobs`` transaction (ETH, or an
  allow-listed ERC-20 after an ``approve`` when the allowance is short); returns the job ids.
* :func:`require_jobs` — a clear error for job ids the market never gave out.
* :func:`job_info` — a job's terms, status, submissions and outcomes, from the ``job`` view and
  the job's events (read by topic, so it costs one ``eth_getLogs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.exceptions import ContractLogicError

from oracle.chain.client import JOB_EVENTS, ZERO_ADDRESS, Chain, TxSender
from oracle.exceptions import ChainError, ConfigError
from oracle.protocol.spec import (
    KECCAK_INPUTS_VERSION,
    SPEC_VERSION,
    Spec,
    parse_spec,
    work_units,
)
from oracle.store.specs import SpecStore

__all__ = [
    "STATUS_NAMES",
    "create_jobs",
    "job_info",
    "matmul_spec",
    "mlp_spec",
    "publish_spec",
    "require_jobs",
    "simulate",
    "spec_from_file",
]

#: ``JobMarket.job(id).status`` as words.
STATUS_NAMES = {0: "unknown", 1: "open", 2: "paid", 3: "refunded", 4: "cancelled"}

#: The ERC-20 functions a requester needs (an allow-listed asset is any ERC-20).
_ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]


def matmul_spec(
    *,
    dtype: str,
    m: int,
    n: int,
    k: int,
    seed: int = 0,
    mode: str = "full",
    openings: int | None = None,
    rounds: int | None = None,
    inputs: Mapping[str, Any] | None = None,
    keccak_inputs: bool = False,
) -> dict[str, Any]:
    """A ``matmul`` spec: seeded (inputs generated from ``seed``: nothing to upload; with
    ``keccak_inputs`` from the keccak stream, spec version 2, disputable on-chain), or on blob
    ``inputs`` (the spec's ``inputs`` object, :mod:`oracle.client.inputs`)."""
    if keccak_inputs and inputs is not None:
        raise ConfigError("--keccak-inputs applies to seeded inputs only (not --a/--b)")
    verify: dict[str, Any] = {"mode": mode}
    if mode == "sampled":
        verify["openings"] = openings if openings is not None else min(16, m)
    elif openings is not None:
        raise ConfigError("--openings applies to --mode sampled only")
    if rounds is not None:
        if dtype != "fp32":
            raise ConfigError(f"--rounds applies to fp32 jobs only (this one is {dtype})")
        verify["rounds"] = rounds
    return {
        "version": KECCAK_INPUTS_VERSION if keccak_inputs else SPEC_VERSION,
        "kind": "matmul",
        "dtype": dtype,
        "m": m,
        "n": n,
        "k": k,
        "inputs": {"seed": seed} if inputs is None else dict(inputs),
        "verify": verify,
    }


def mlp_spec(
    *,
    batch: int,
    dims: Sequence[int],
    activation: str,
    seed: int = 0,
    rounds: int | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An ``mlp`` spec (full verification mode, the only one mlp supports), seeded or on blob
    ``inputs`` like :func:`matmul_spec`."""
    verify: dict[str, Any] = {"mode": "full"}
    if rounds is not None:
        verify["rounds"] = rounds
    return {
        "version": 1,
        "kind": "mlp",
        "dtype": "fp32",
        "batch": batch,
        "dims": list(dims),
        "activation": activation,
        "inputs": {"seed": seed} if inputs is None else dict(inputs),
        "verify": verify,
    }


def llm_spec(
    *,
    blob: str,
    shape: Mapping[str, int],
    prompt: Sequence[int],
    max_new_tokens: int,
    eos: int | None,
    openings: int,
) -> dict[str, Any]:
    """An ``llm`` spec: greedy generation on the Llama model of blob ``blob`` (0x + keccak256
    of its GGUF file) with ``shape`` (:func:`oracle.compute.llm.model_cache.spec_shape`)."""
    return {
        "version": 1,
        "kind": "llm",
        "model": {"blob": blob, "arch": "llama", **shape},
        "prompt": list(prompt),
        "max_new_tokens": max_new_tokens,
        "eos": eos,
        "verify": {"mode": "sampled", "openings": openings},
    }


def publish_spec(spec: Spec, locations: Sequence[str]) -> str:
    """Store the spec's canonical bytes in every location; returns the blob name (its hash)."""
    return SpecStore(locations).put(spec)


def simulate(chain: Chain, fn: Any, sender: str, value: int = 0) -> None:
    """Dry-run a call so that a revert becomes a one-line ChainError *before* anything is
    signed (the contract's reason, e.g. ``market: job not open``)."""
    try:
        fn.call({"from": sender, "value": value})
    except ContractLogicError as exc:
        raise ChainError(f"the market refuses: {exc.message or exc}") from None
    except (ValueError, OSError) as exc:
        raise ChainError(f"dry run failed: {exc}") from None


def create_jobs(
    chain: Chain,
    account: LocalAccount,
    specs: Sequence[Spec],
    *,
    asset: str,
    amounts: Sequence[int],
    deadline: int,
) -> list[int]:
    """Escrow one job per spec in one transaction; returns the new job ids in order."""
    if len(specs) != len(amounts) or not specs:
        raise ConfigError("one amount per spec, at least one spec")
    asset = to_checksum_address(asset)
    total = sum(amounts)
    sender = TxSender(chain, account)
    if asset != ZERO_ADDRESS:
        token = chain.w3.eth.contract(address=asset, abi=_ERC20_ABI)
        allowance = int(_call(token.functions.allowance(account.address, chain.market.address)))
        if allowance < total:
            sender.send(token.functions.approve(chain.market.address, total), "approve")
    requests = [
        (s.hash, work_units(s), asset, a, deadline) for s, a in zip(specs, amounts, strict=True)
    ]
    fn = chain.market.functions.create_jobs(requests)
    value = total if asset == ZERO_ADDRESS else 0
    simulate(chain, fn, account.address, value)
    rcpt = sender.send(fn, "create_jobs", value=value, gas=150_000 + 120_000 * len(requests))
    return [int(e.args["job_id"]) for e in chain.receipt_events(rcpt, ("JobCreated",))]


def _call(fn: Any) -> Any:
    try:
        return fn.call()
    except (ContractLogicError, ValueError, OSError) as exc:
        raise ChainError(f"call failed: {exc}") from None


def require_jobs(chain: Chain, job_ids: Sequence[int]) -> None:
    """ConfigError naming the ids this market never gave out (the contract itself would only
    say ``job not open``)."""
    last = int(chain.call("next_job_id")) - 1
    unknown = [j for j in job_ids if not 1 <= j <= last]
    if unknown:
        known = f"jobs 1 to {last}" if last >= 1 else "no jobs yet"
        raise ConfigError(
            f"job {', '.join(map(str, unknown))} does not exist (this market has {known})"
        )


def job_info(chain: Chain, job_id: int) -> dict[str, Any]:
    """Terms, status, submissions and outcomes of one job (ChainError if it does not exist)."""
    terms = chain.job(job_id)
    if terms["status"] == 0:
        raise ChainError(f"job {job_id} does not exist on this market")
    evs = chain.events(chain.deployment.block, chain.head(), job_id=job_id, names=JOB_EVENTS)
    created = next((e for e in evs if e.name == "JobCreated"), None)
    submissions, outcomes = [], []
    for e in evs:
        a = e.args
        if e.name == "ResultSubmitted":
            submissions.append(
                {
                    "worker": a["worker"],
                    "commitment": "0x" + a["commitment"].hex(),
                    "block": int(a["block_number"]),
                }
            )
        elif e.name in ("JobSettled", "WorkerSlashed"):
            outcomes.append(
                {
                    "event": e.name,
                    "worker": a["worker"],
                    "block": e.block_number,
                    "transcript_hash": "0x" + a["transcript_hash"].hex(),
                    **({"amount": int(a["amount"])} if "amount" in a else {}),
                    "tx": "0x" + e.tx_hash.hex(),
                }
            )
        elif e.name == "AttestationSkipped":
            outcomes.append(
                {
                    "event": e.name,
                    "worker": a["worker"],
                    "block": e.block_number,
                    "reason": int(a["reason"]),
                    "tx": "0x" + e.tx_hash.hex(),
                }
            )
        elif e.name == "StakeReleased":
            outcomes.append(
                {
                    "event": e.name,
                    "worker": a["worker"],
                    "block": e.block_number,
                    "amount": int(a["amount"]),
                    "tx": "0x" + e.tx_hash.hex(),
                }
            )
        elif e.name in ("JobRefunded", "JobCancelled"):
            outcomes.append(
                {
                    "event": e.name,
                    "block": e.block_number,
                    "amount": int(a["amount"]),
                    "tx": "0x" + e.tx_hash.hex(),
                }
            )
    return {
        "job_id": job_id,
        "status": STATUS_NAMES.get(int(terms["status"]), str(terms["status"])),
        "requester": terms["requester"],
        "asset": "ETH" if terms["asset"] == ZERO_ADDRESS else terms["asset"],
        "amount": int(terms["amount"]),
        "work_units": int(terms["work_units"]),
        "deadline": int(terms["deadline"]),
        "now": chain.block_timestamp(chain.head()),
        "spec_hash": None if created is None else "0x" + created.args["spec_hash"].hex(),
        "created_block": None if created is None else created.block_number,
        "submissions": submissions,
        "outcomes": outcomes,
    }


def spec_from_file(path: str) -> Spec:
    """Read and validate a spec file (SpecError / ConfigError on bad input)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read spec file {path}: {exc.strerror}") from None
    return parse_spec(raw)
