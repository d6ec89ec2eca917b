"""Chain access for long-running services, with web3.py (no Ape at run time).

* :func:`artifact` — the committed ABI and bytecode of a contract (``oracle/abi/<Name>.json``,
  exported from the compiled build by ``make abi``).
* :class:`Chain` — one RPC endpoint and one deployment: contract handles, the confirmed head
  (``head - confirmations``), every market event of a block range decoded in chain order,
  block hashes.
* :class:`TxSender` — signs transactions locally with an explicit nonce and hands each signed
  transaction to an ``on_signed`` hook *before* broadcasting it, so a caller can persist it
  and, after a crash, re-broadcast exactly the same bytes instead of signing something new.

Every RPC failure surfaces as :class:`~oracle.exceptions.ChainError` (a ``RuntimeError``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any, cast

from eth_abi import decode as abi_decode
from eth_abi.exceptions import EncodingError
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils import function_abi_to_4byte_selector, get_abi_input_types, to_checksum_address
from web3 import Web3
from web3.contract.contract import ContractConstructor
from web3.exceptions import TransactionNotFound, Web3Exception
from web3.types import TxParams

from oracle.chain.deployments import Deployment
from oracle.exceptions import ChainError

__all__ = [
    "ALL_EVENTS",
    "JOB_EVENTS",
    "MARKET_EVENTS",
    "Chain",
    "ChainEvent",
    "SentTx",
    "TxSender",
    "artifact",
    "calldata",
    "rpc_int",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: The market events services follow, in the order they are decoded.
MARKET_EVENTS = (
    "JobCreated",
    "ResultSubmitted",
    "JobSettled",
    "WorkerSlashed",
    "AttestationSkipped",
    "BatchSettled",
    "WorkRecorded",
    "JobRefunded",
    "JobCancelled",
)
#: The events of one job (first indexed argument: the job id), read by `pouw job show/audit`.
JOB_EVENTS = (
    "JobCreated",
    "ResultSubmitted",
    "JobSettled",
    "WorkerSlashed",
    "AttestationSkipped",
    "JobRefunded",
    "JobCancelled",
    "StakeReleased",
)
#: Every market event :meth:`Chain.events` can decode (``MARKET_EVENTS`` is its default).
ALL_EVENTS = (
    *MARKET_EVENTS,
    "StakeReleased",
    "RewardClaimed",
    "Withdrawn",
    "Bonded",
    "Refuted",
    "Overturned",
)
#: Gas added to an estimate (with a quarter of it) before signing: see :meth:`TxSender.sign`.
ESTIMATE_MARGIN = 20_000
#: Job status codes of ``JobMarket.job(id).status``.
STATUS_OPEN, STATUS_PAID, STATUS_REFUNDED, STATUS_CANCELLED = 1, 2, 3, 4


@cache
def artifact(name: str) -> dict[str, Any]:
    """``{"abi": [...], "bytecode": "0x..."}`` of ``JobMarket`` or ``WorkToken``."""
    text = resources.files("oracle.abi").joinpath(f"{name}.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass(frozen=True)
class ChainEvent:
    """One decoded market event with its position in the chain."""

    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: bytes
    log_index: int
    tx_hash: bytes


@dataclass(frozen=True)
class SentTx:
    """A signed transaction as it was (or will be) broadcast."""

    nonce: int
    tx_hash: bytes
    raw: bytes


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


_STATIC_TYPE = re.compile(r"^(u?int\d*|address|bool|bytes([1-9]|[12]\d|3[0-2]))$")


class _EventCodec:
    """Decodes one market event's log straight with eth_abi: the same args as web3's
    ``process_log`` (checksummed addresses, bytes, ints; ``test_fast_event_decoding`` holds
    them equal) at a fraction of its cost — web3 re-derives the event's topic and walks
    generic formatters for every log, which dominated a follower's time."""

    def __init__(self, abi: Mapping[str, Any]) -> None:
        self.name = str(abi["name"])
        self.indexed = [(i["name"], i["type"]) for i in abi["inputs"] if i["indexed"]]
        self.data = [(i["name"], i["type"]) for i in abi["inputs"] if not i["indexed"]]
        self.data_types = [t for _, t in self.data]
        # Most market events have only 32-byte static fields: the indexed topics followed by
        # the data are then one ABI tuple, read by one eth_abi call instead of one per topic
        # (BatchSettled's signers are a dynamic array: decoded in two steps).
        self.fields = self.indexed + self.data
        self.static = all(_STATIC_TYPE.match(t) for _, t in self.fields)
        self.types = [t for _, t in self.fields]

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        if len(topics) != 1 + len(self.indexed):
            raise ValueError(f"{self.name}: {len(topics)} topics, expected {1 + len(self.indexed)}")
        if self.static:
            values = abi_decode(self.types, b"".join(bytes(t) for t in topics[1:]) + bytes(data))
            return {
                name: self._clean(typ, v)
                for (name, typ), v in zip(self.fields, values, strict=True)
            }
        out: dict[str, Any] = {}
        for (name, typ), topic in zip(self.indexed, topics[1:], strict=True):
            out[name] = self._clean(typ, abi_decode([typ], bytes(topic))[0])
        for (name, typ), value in zip(
            self.data, abi_decode(self.data_types, bytes(data)), strict=True
        ):
            out[name] = self._clean(typ, value)
        return out

    @staticmethod
    def _clean(typ: str, value: Any) -> Any:
        if typ == "address":
            return _checksum(value)
        if typ == "address[]":  # BatchSettled's signers, as web3 gives them
            return [_checksum(v) for v in value]
        return value


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _as_bytes(value: str | bytes) -> bytes:
    """Bytes of a raw JSON-RPC hex string or of web3's HexBytes."""
    return _hex_bytes(value) if isinstance(value, str) else bytes(value)


def rpc_int(value: str | int) -> int:
    """A raw JSON-RPC quantity (hex string) or web3's int."""
    return int(value, 16) if isinstance(value, str) else int(value)


@lru_cache(maxsize=64)
def _function_codec(abi_json: str) -> tuple[bytes, tuple[str, ...]]:
    abi = json.loads(abi_json)
    return function_abi_to_4byte_selector(abi), tuple(get_abi_input_types(abi))


def calldata(fn: Any) -> bytes:
    """The call data of a bound web3 contract call (``contract.functions.f(*args)``), encoded
    by web3's own strict codec (``w3.codec``: a bytesN value must have exactly N bytes) without
    ``build_transaction``'s formatting pass: byte-identical, and a 64-item ``settle`` takes
    about 2 ms instead of 20. A value that does not fit its ABI type is a ChainError."""
    if fn.kwargs:
        raise ChainError(f"{fn.fn_name}: pass arguments by position")
    selector, types = _function_codec(json.dumps(fn.abi, sort_keys=True))
    try:
        return selector + fn.w3.codec.encode(types, fn.args)
    except (EncodingError, TypeError, ValueError) as exc:
        raise ChainError(f"encode {fn.fn_name}: {exc}") from exc


def _wrap(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (Web3Exception, OSError, ValueError) as exc:
        raise ChainError(f"{what}: {exc}") from exc


class Chain:
    """A web3 connection to one pouw deployment.

    ``confirmations`` is the depth below the head that services treat as final: events and
    block hashes above ``head - confirmations`` are never read by :meth:`events` callers that
    use :meth:`safe_head`.
    """

    def __init__(self, rpc_url: str, deployment: Deployment, *, timeout: float = 10.0) -> None:
        # web3 validates every eth_call against the node's chain id (one eth_chainId round
        # trip per call); the chain id of an endpoint does not change, so that one is cached.
        self.w3 = Web3(
            Web3.HTTPProvider(
                rpc_url,
                request_kwargs={"timeout": timeout},
                cache_allowed_requests=True,
                cacheable_requests={"eth_chainId"},
            )
        )
        self.deployment = deployment
        self.market = self.w3.eth.contract(
            address=to_checksum_address(deployment.market), abi=artifact("JobMarket")["abi"]
        )
        self.token = self.w3.eth.contract(
            address=to_checksum_address(deployment.token), abi=artifact("WorkToken")["abi"]
        )
        self._oracle_set: Any = None
        self._disputes: Any = None
        self._by_topic = {bytes.fromhex(self.market.events[n]().topic[2:]): n for n in ALL_EVENTS}
        events_abi = {e["name"]: e for e in self.market.abi if e["type"] == "event"}
        self._codecs = {n: _EventCodec(events_abi[n]) for n in ALL_EVENTS}

    @property
    def chain_id(self) -> int:
        """The deployment's chain id (checked against the node by :meth:`check`)."""
        return self.deployment.chain_id

    def check(self) -> None:
        """Fail with ChainError unless the node is reachable, on the deployment's chain id,
        and has code at the market address."""
        cid = _wrap("eth_chainId", lambda: self.w3.eth.chain_id)
        if cid != self.deployment.chain_id:
            raise ChainError(f"node is on chain {cid}, deployment is on {self.deployment.chain_id}")
        code = _wrap("eth_getCode", lambda: self.w3.eth.get_code(self.market.address))
        if not code:
            raise ChainError(f"no contract at {self.market.address} on chain {cid}")

    def head(self) -> int:
        """The latest block number."""
        return int(_wrap("eth_blockNumber", lambda: self._rpc("eth_blockNumber", [])), 16)

    def safe_head(self, confirmations: int) -> int:
        """The newest block with at least ``confirmations`` blocks on top (may be -1)."""
        return self.head() - confirmations

    def _header(self, number: int) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            header = self._rpc("eth_getBlockByNumber", [hex(number), False])
            if header is None:
                raise ValueError("no such block")
            return dict(header)

        return dict(_wrap(f"eth_getBlockByNumber({number})", get))

    def block_hash(self, number: int) -> bytes:
        """The 32-byte hash of block ``number`` (raw JSON-RPC: no web3 formatting)."""
        return _hex_bytes(self._header(number)["hash"])

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block ``number``."""
        return int(self._header(number)["timestamp"], 16)

    def now(self) -> int:
        """The chain's idea of now: the latest block's timestamp, or the wall clock if that is
        later (a quiet local chain mines no blocks, and its next one is stamped with the
        wall clock)."""

        def get() -> int:
            header = self._rpc("eth_getBlockByNumber", ["latest", False])
            return int(header["timestamp"], 16)

        return max(int(_wrap("eth_getBlockByNumber(latest)", get)), int(time.time()))

    def events(
        self,
        from_block: int,
        to_block: int,
        *,
        job_id: int | None = None,
        names: Sequence[str] = MARKET_EVENTS,
    ) -> list[ChainEvent]:
        """Every market event of ``names`` in [from_block, to_block], in chain order.

        The node filters by topic: only events of ``names`` are sent and decoded (a worker
        that skips every ``ResultSubmitted`` reads a third fewer logs). With ``job_id``, only
        events whose first indexed argument is that job id (``names`` must then be events
        indexed by job id).
        """
        if to_block < from_block:
            return []
        topic0 = ["0x" + t.hex() for t, n in self._by_topic.items() if n in names]
        topics: list[Any] = [topic0]
        if job_id is not None:
            topics.append("0x" + job_id.to_bytes(32, "big").hex())
        query: dict[str, Any] = {
            "address": self.market.address,
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
            "topics": topics,
        }
        # The raw JSON-RPC answer, decoded here: web3's response formatters cost more than the
        # node's work on a busy range.
        logs = _wrap(
            f"eth_getLogs({from_block}..{to_block})", lambda: self._rpc("eth_getLogs", [query])
        )
        out = self._decode_logs(logs, names)
        out.sort(key=lambda e: (e.block_number, e.log_index))
        return out

    def _decode_logs(self, logs: Sequence[Any], names: Sequence[str]) -> list[ChainEvent]:
        """The market events of ``names`` among ``logs``, raw JSON-RPC (hex strings) or as
        web3 formats them (bytes, ints); other contracts' logs are left out."""
        by_topic = {t: n for t, n in self._by_topic.items() if n in names}
        out = []
        for log in logs:
            if not log["topics"] or _checksum(log["address"]) != self.market.address:
                continue
            topics = [_as_bytes(t) for t in log["topics"]]
            name = by_topic.get(topics[0])
            if name is None:
                continue
            out.append(
                ChainEvent(
                    name=name,
                    args=self._codecs[name].decode(topics, _as_bytes(log["data"])),
                    block_number=rpc_int(log["blockNumber"]),
                    block_hash=_as_bytes(log["blockHash"]),
                    log_index=rpc_int(log["logIndex"]),
                    tx_hash=_as_bytes(log["transactionHash"]),
                )
            )
        return out

    def _rpc(self, method: str, params: list[Any]) -> Any:
        reply = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in reply:
            raise ValueError(f"{method}: {reply['error']}")
        return reply["result"]

    def receipt_events(self, rcpt: Any, names: Sequence[str] = MARKET_EVENTS) -> list[ChainEvent]:
        """The market events of ``names`` in a transaction receipt (raw, as
        ``TxSender.wait(decoded=False)`` returns it, or web3's), in log order."""
        out = self._decode_logs(rcpt["logs"], names)
        out.sort(key=lambda e: e.log_index)
        return out

    def call(self, fn: str, *args: Any) -> Any:
        """A read-only call to the market."""
        return _wrap(f"call {fn}", lambda: getattr(self.market.functions, fn)(*args).call())

    @property
    def disputes(self) -> Any:
        """The market's dispute contract (web3), which refutes VALID matmul verdicts."""
        if self._disputes is None:
            address = self.deployment.disputes or self.call("DISPUTES")
            self._disputes = self.w3.eth.contract(
                address=to_checksum_address(address), abi=artifact("Disputes")["abi"]
            )
        return self._disputes

    @property
    def oracle_set(self) -> Any:
        """The market's OracleSet (web3): membership, threshold, oracle bonds."""
        if self._oracle_set is None:
            address = self.deployment.oracle_set or self.call("ORACLES")
            self._oracle_set = self.w3.eth.contract(
                address=to_checksum_address(address), abi=artifact("OracleSet")["abi"]
            )
        return self._oracle_set

    def oracle_set_call(self, fn: str, *args: Any) -> Any:
        """A read-only call to the market's OracleSet (membership, threshold, oracle bonds)."""
        oracle_set = self.oracle_set
        return _wrap(f"call {fn}", lambda: getattr(oracle_set.functions, fn)(*args).call())

    def submission(self, job_id: int, worker: str) -> tuple[bytes, int]:
        """(commitment, block number) of ``worker``'s live submission to ``job_id``."""
        c, b, _stake = self.call("submissions", job_id, to_checksum_address(worker))
        return bytes(c), int(b)

    def stake(self, job_id: int, worker: str) -> int:
        """The part of ``worker``'s bond its submission to ``job_id`` holds (0: none)."""
        return int(self.call("submissions", job_id, to_checksum_address(worker))[2])

    def job_status(self, job_id: int) -> int:
        """The job's status code (0: no such job)."""
        return int(self.call("job", job_id)[5])

    def job(self, job_id: int) -> dict[str, Any]:
        """The job's terms and state as ``JobMarket.job`` returns them (status 0: unknown)."""
        fields = ("requester", "asset", "amount", "work_units", "deadline", "status", "submissions")
        return dict(zip(fields, self.call("job", job_id), strict=True))


class TxSender:
    """Signs and sends market transactions from one local key, nonces assigned locally.

    ``on_signed(SentTx, label)`` runs after signing and before broadcasting (persist it there);
    :meth:`rebroadcast` re-sends stored bytes after a restart (a duplicate is harmless: same
    nonce, same hash). A transaction that reverts raises ChainError after it is mined.
    """

    def __init__(
        self,
        chain: Chain,
        account: LocalAccount,
        *,
        on_signed: Callable[[SentTx, str], None] | None = None,
        next_nonce: int | None = None,
        receipt_timeout: float = 30.0,
        receipt_poll: float = 0.25,
    ) -> None:
        self.chain = chain
        self.account = account
        self.on_signed = on_signed
        self.receipt_timeout = receipt_timeout
        self.receipt_poll = receipt_poll
        pending = int(
            _wrap(
                "eth_getTransactionCount",
                lambda: chain.w3.eth.get_transaction_count(account.address, "pending"),
            )
        )
        self.nonce = max(pending, next_nonce or 0)

    def sign(self, fn: Any, *, value: int = 0, gas: int | None = None) -> SentTx:
        """Sign a contract call (or a ``ContractConstructor``: a deployment) with the next
        nonce (not yet sent); without ``gas``, the node estimates it (a dry run: a revert is a
        ChainError here, before anything is sent)."""
        tx: dict[str, Any] = {
            "from": self.account.address,
            "nonce": self.nonce,
            "value": value,
            "chainId": self.chain.chain_id,
        }
        if isinstance(fn, ContractConstructor):
            tx["data"] = _wrap("encode constructor", lambda: fn.data_in_transaction)
        else:
            tx["to"], tx["data"] = fn.address, calldata(fn)
        base = _wrap(
            "eth_getBlock(latest)",
            lambda: self.chain._rpc("eth_getBlockByNumber", ["latest", False]),
        )
        fee = int(base.get("baseFeePerGas") or "0x0", 16)
        tip = 10**9
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = 2 * fee + tip
        # Given: no eth_estimateGas round trip (a whole dry run). Estimated: with a margin, as
        # the state it is mined in may cost more than the one it was estimated in (a new epoch's
        # first work written, a slot another transaction cleared); unused gas is not charged.
        if gas is None:
            estimate = _wrap(
                "eth_estimateGas", lambda: self.chain.w3.eth.estimate_gas(cast(TxParams, tx))
            )
            gas = int(estimate) * 5 // 4 + ESTIMATE_MARGIN
        tx["gas"] = gas
        signed = self.account.sign_transaction(tx)
        self.nonce += 1
        return SentTx(
            nonce=tx["nonce"], tx_hash=bytes(signed.hash), raw=bytes(signed.raw_transaction)
        )

    def send(self, fn: Any, label: str, *, value: int = 0, gas: int | None = None) -> Any:
        """Sign, persist through ``on_signed``, broadcast and wait; returns the receipt."""
        sent = self.sign(fn, value=value, gas=gas)
        if self.on_signed is not None:
            self.on_signed(sent, label)
        self.broadcast(sent.raw)
        return self.wait(sent.tx_hash)

    def broadcast(self, raw: bytes) -> None:
        """Send raw bytes; "already known" / "nonce too low" mean it is already in."""
        try:  # raw JSON-RPC: web3's request formatting and middleware add nothing here
            self.chain._rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        except (Web3Exception, ValueError) as exc:
            text = str(exc).lower()
            if "already" in text or "nonce too low" in text or "known" in text:
                return
            raise ChainError(f"eth_sendRawTransaction: {exc}") from exc
        except OSError as exc:
            raise ChainError(f"eth_sendRawTransaction: {exc}") from exc

    def receipt(self, tx_hash: bytes) -> Any | None:
        """The receipt, or None while the transaction is not mined."""
        try:
            return self.chain.w3.eth.get_transaction_receipt(Hash32(tx_hash))
        except TransactionNotFound:
            return None
        except (Web3Exception, OSError, ValueError) as exc:
            raise ChainError(f"eth_getTransactionReceipt: {exc}") from exc

    def wait(self, tx_hash: bytes, *, decoded: bool = True) -> Any:
        """Wait for the receipt (ChainError on timeout or revert), polling after 3 ms, then
        less and less often, up to every ``receipt_poll`` seconds. Polls read the raw JSON-RPC
        answer; ``decoded`` returns web3's receipt (one more call, formatted), otherwise the raw
        one (hex strings), which is all a caller that only needs "mined, not reverted" wants:
        web3 formats every log of a 64-item batch."""
        deadline = time.monotonic() + self.receipt_timeout
        delay = min(self.receipt_poll, 0.003)  # a local node mines at once: look again soon
        while True:
            raw = _wrap(
                "eth_getTransactionReceipt",
                lambda: self.chain._rpc("eth_getTransactionReceipt", ["0x" + tx_hash.hex()]),
            )
            if raw is not None:
                if int(raw["status"], 16) != 1:
                    raise ChainError(f"transaction 0x{tx_hash.hex()} reverted")
                return self.receipt(tx_hash) if decoded else raw
            if time.monotonic() > deadline:
                raise ChainError(f"no receipt for 0x{tx_hash.hex()} in {self.receipt_timeout}s")
            time.sleep(delay)
            delay = min(self.receipt_poll, delay * 1.5)
