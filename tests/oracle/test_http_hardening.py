"""Every malformed request to the HTTP servers gets a clear 4xx and the service keeps working
(issue 11, items 7 and 9).

Real servers on 127.0.0.1, no chain:

* the oracle node's routes (:class:`~oracle.node.api.NodeApi` over a real SQLite ``OracleDB``,
  real ``Metrics`` and ``Settler``, and a stand-in chain with what those read: the chain id, the
  market address, a pending nonce), with one recorded verdict it agrees to sign;
* the worker's routes (:class:`~oracle.worker.api.WorkerApi` over a real ``WorkerDB``, blob and
  spec store) with one committed result of a small real matmul job;
* a :class:`~oracle.store.server.BlobServer` whose store takes blobs of up to 1 MiB.

Requests go over raw sockets (:func:`request_bytes`, :func:`exchange`), so that paths, headers
and framing (Content-Length too short or too long, chunked, both, none) are exactly what a test
says. A handler on the ``pouw.http`` logger records every ``http_error`` (what a handler's
unexpected exception, answered ``500``, logs) and one on ``aiohttp.server`` every error aiohttp
logs itself, except its parser's ``400`` for a malformed HTTP message: each test ends with
:func:`assert_serving`, which fails on any such record and unless ``GET /health`` answers 200
(:func:`test_detector__a_handler_that_raises__500_logged_and_caught` shows it catches a 500).
The fuzz tests (hypothesis, 50 examples each, loopback only) check every example the same way.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import msgspec
import numpy as np
import pytest
import requests
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from oracle.compute.merkle import chunks_per_row, merkle_root
from oracle.compute.work import answer_challenge, compute, result_root
from oracle.infra.metrics import Metrics
from oracle.infra.web import DEFAULT_MAX_BODY, WebServer
from oracle.node.api import NodeApi
from oracle.node.context import NodeContext
from oracle.node.db import OracleDB, StoredVerdict
from oracle.node.settler import Settler
from oracle.node.wire import to_item
from oracle.protocol.announce import make_announcement
from oracle.protocol.attestation import Attestation, CompactSignature, recover_signer
from oracle.protocol.bundle import decode_bundle, encode_bundle
from oracle.protocol.commitment import commitment
from oracle.protocol.params import MAX_BATCH
from oracle.protocol.results import encode_result
from oracle.protocol.spec import parse_spec
from oracle.protocol.verdict import VerdictKey
from oracle.store.blobs import LocalBlobStore, blob_name
from oracle.store.results import StoredResult
from oracle.store.server import BlobServer
from oracle.store.specs import SpecStore
from oracle.worker.api import MAX_BUNDLE_ITEMS, WorkerApi
from oracle.worker.db import WorkerDB

CHAIN_ID = 31337
MARKET = to_checksum_address("0x" + "3c" * 20)
NODE = Account.from_key("0x" + "4e" * 32)
WORKER = Account.from_key("0x" + "57" * 32)
JOB = 7
#: The blob store's limit in these tests.
BLOB_LIMIT = 1 << 20
#: Seconds a request body may stall on the test servers before a 408.
BODY_TIMEOUT = 1.0
#: What a 400 must not read like: a Python error message instead of the request's fault.
INTERNALS = ("Traceback", "object is not", "is not iterable", "NoneType", 'File "', "Error:")


# --- watching for server errors ------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _server_fault(record: logging.LogRecord) -> bool:
    """A record that shows a request ended in a server fault: ``http_error`` (a handler raised,
    answered 500) or an error aiohttp logged itself other than its parser's 400 for a
    malformed HTTP message (e.g. an exception that escaped the middleware)."""
    if record.name == "pouw.http":
        return record.getMessage() == "http_error"
    if record.levelno < logging.ERROR:
        return False
    exc = record.exc_info[1] if record.exc_info else None
    # The client hung up while the answer was being written (a fuzzed body cut short, racing
    # an early 413): aiohttp logs that at ERROR, but it is the client's doing and the server
    # goes on (each test still asks /health afterwards).
    return not isinstance(exc, HttpProcessingError | ConnectionResetError)


def _describe(record: logging.LogRecord) -> str:
    fields = getattr(record, "fields", None)
    return f"{record.name}: {record.getMessage()} {fields or ''} {record.exc_info or ''}"


@pytest.fixture(scope="module")
def faults() -> Iterator[list[logging.LogRecord]]:
    """Every record of the ``pouw.http`` and ``aiohttp.server`` loggers (at any level) while
    the module runs; :func:`_server_fault` tells the faults."""
    recorder = _Recorder()
    loggers = [logging.getLogger("pouw.http"), logging.getLogger("aiohttp.server")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(recorder)
        lg.setLevel(logging.DEBUG)
    yield recorder.records
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(recorder)
        lg.setLevel(level)


@pytest.fixture(autouse=True)
def _fresh(faults: list[logging.LogRecord]) -> None:
    faults.clear()


def assert_serving(url: str, faults: list[logging.LogRecord]) -> None:
    """No server fault was logged and ``GET /health`` answers 200."""
    bad = [_describe(r) for r in faults if _server_fault(r)]
    assert not bad, bad
    assert requests.get(f"{url}/health", timeout=5).status_code == 200


class _Answered:
    """How many answers a server has begun (aiohttp's ``on_response_prepare``: after the
    handler and the middlewares, logging included, whether or not the client still listens),
    to wait for the handling of a request whose client hung up before the answer."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    async def on_prepare(self, _request: web.Request, _response: web.StreamResponse) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_beyond(self, count: int, timeout: float = 2.0) -> bool:
        """Whether an answer beyond the first ``count`` began within ``timeout`` (not so for
        a request aiohttp's parser refused: those answers are not signalled)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count > count, timeout)


#: The answer counters of the servers started with :func:`serve`, by port.
_ANSWERED: dict[int, _Answered] = {}


def serve(server: WebServer) -> WebServer:
    """Start ``server``, counting the answers it begins (see :class:`_Answered`)."""
    answered = _Answered()
    server.app.on_response_prepare.append(answered.on_prepare)
    server.start()
    _ANSWERED[server.port] = answered
    return server


# --- raw HTTP ------------------------------------------------------------------------------------


@dataclass
class Reply:
    """An HTTP answer as read off the socket (header names lower-case)."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _parse(raw: bytes) -> Reply:
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        if 100 <= status < 200 and rest:  # "100 Continue", then the answer
            raw = rest
            continue
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Reply(status, headers, rest)


def _complete(raw: bytes) -> bool:
    """Whether ``raw`` holds a whole answer with a Content-Length (after any 1xx)."""
    while b"\r\n\r\n" in raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 1"):
            raw = rest
            continue
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return len(rest) >= int(value)
        return False
    return False


def exchange(
    port: int,
    data: bytes,
    *,
    half_close: bool = False,
    timeout: float = 5.0,
    then: bytes = b"",
) -> Reply | None:
    """Send ``data`` (and, 0.2 s later, ``then``) on a new connection and read the answer
    (until its Content-Length is in, or the server closes: send ``Connection: close``); None if
    the server closed without answering. A server that does neither within ``timeout`` fails
    the test (TimeoutError)."""
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if then:
            time.sleep(0.2)
            sock.sendall(then)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        try:
            while not _complete(raw) and (chunk := sock.recv(1 << 16)):
                raw += chunk
        except ConnectionResetError:
            pass
    return _parse(raw) if raw else None


def request_bytes(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    framing: str = "exact",
) -> bytes:
    """An HTTP/1.1 request with ``Connection: close``. ``framing``: ``exact`` (Content-Length
    of the body), ``short`` (half of it: the rest follows as garbage), ``long`` (10 bytes more
    than sent: send it with ``half_close``), ``chunked``, ``both`` (chunked and a
    Content-Length), ``twice`` (two different Content-Lengths) or ``none`` (no length)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if framing in ("exact", "twice"):
        lines.append(f"Content-Length: {len(body)}")
    if framing == "twice":
        lines.append(f"Content-Length: {len(body) + 1}")
    elif framing == "short":
        lines.append(f"Content-Length: {len(body) // 2}")
    elif framing == "long":
        lines.append(f"Content-Length: {len(body) + 10}")
    elif framing in ("chunked", "both"):
        lines.append("Transfer-Encoding: chunked")
        if framing == "both":
            lines.append(f"Content-Length: {len(body)}")
        half = len(body) // 2
        parts = [p for p in (body[:half], body[half:]) if p]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def send(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    framing: str = "exact",
) -> Reply | None:
    """:func:`request_bytes` sent with :func:`exchange` (half-closed for ``long`` framing).
    If the server closed without answering, this waits (up to 2 s) until it has finished
    handling the request (a server started with :func:`serve`), so what it logs is in."""
    data = request_bytes(method, path, body, headers, framing=framing)
    counter = _ANSWERED.get(port)
    before = counter.count if counter is not None else 0
    reply = exchange(port, data, half_close=framing == "long")
    if reply is None and counter is not None:
        counter.wait_beyond(before)
    return reply


def hang_up(port: int, data: bytes) -> Reply | None:
    """Send ``data`` (a request whose body stops short), hang up, and wait until the server
    has handled it (it must begin an answer within 2 s, whether anyone listens or not)."""
    counter = _ANSWERED[port]
    before = counter.count
    reply = exchange(port, data, half_close=True)
    assert counter.wait_beyond(before), "the server never answered the request"
    return reply


def answered(reply: Reply | None) -> Reply:
    """``reply``, which must exist (the connection was not dropped without an answer)."""
    assert reply is not None, "connection closed without an answer"
    return reply


def assert_clear_4xx(reply: Reply | None, status: int = 400, *names: str) -> str:
    """A one-line ``text/plain`` error of ``status`` that names each of ``names`` and reads
    like no Python internal; returns its text."""
    reply = answered(reply)
    assert reply.status == status, (reply.status, reply.text)
    assert reply.headers["content-type"].startswith("text/plain"), reply.headers
    text = reply.text
    assert text.endswith("\n") and "\n" not in text[:-1], text
    for name in names:
        assert name in text, (name, text)
    for marker in INTERNALS:
        assert marker not in text, (marker, text)
    return text


def post_json(port: int, path: str, value: Any) -> Reply:
    return answered(send(port, "POST", path, json.dumps(value).encode()))


# --- the servers ---------------------------------------------------------------------------------


class _StandInChain:
    """What the node's routes read of its :class:`~oracle.chain.client.Chain`: the chain id
    and market address (announcements and settlement digests are bound to both) and the
    pending nonce the Settler's TxSender starts from."""

    chain_id = CHAIN_ID
    market = SimpleNamespace(address=MARKET)
    w3 = SimpleNamespace(eth=SimpleNamespace(get_transaction_count=lambda address, block: 0))

    @staticmethod
    def now() -> int:
        return NOW


#: The chain's now as the stand-in reads it, and a proposal's expiry the node accepts.
NOW = 1_700_000_000
UNTIL = NOW + 600


#: The attestation the node has a verdict for (so it signs a proposal of it).
AGREED = Attestation(JOB, WORKER.address, b"\x07" * 32, 42, 1000, 1, b"\x77" * 32)


@dataclass
class Node:
    server: WebServer
    db: OracleDB

    @property
    def port(self) -> int:
        return self.server.port


def start_node(root: Path) -> Node:
    """The oracle node's routes over a fresh SQLite state holding a verdict on AGREED."""
    db = OracleDB(root / "oracle.db")
    db.record_verdict(
        StoredVerdict(
            key=VerdictKey(
                AGREED.job_id, AGREED.worker, AGREED.commitment, AGREED.submission_block
            ),
            seed=b"\x01" * 32,
            challenge_block=1,
            challenge_hash=b"\x02" * 32,
            work_units=AGREED.work_units,
            verdict=AGREED.verdict,
            reason="ok",
            transcript={},
            transcript_hash=AGREED.transcript_hash,
        )
    )
    metrics = Metrics("pouw_oracle", counters=("jobs_seen",))
    metrics.add_rows("db", "rows in the node's SQLite state", db.counts)
    ctx = NodeContext(
        cfg=SimpleNamespace(signature_ttl=900),  # type: ignore[arg-type]  # what /sign reads
        chain=_StandInChain(),  # type: ignore[arg-type]  # what the routes read of one
        account=NODE,
        db=db,
        metrics=metrics,
        http=requests.Session(),
        oracles=[NODE.address],
        index=0,
        threshold=1,
        reveal_window=100,
        refund_grace=200,
        kill=lambda point: None,
    )
    return Node(
        serve(WebServer(NodeApi(ctx, Settler(ctx)).routes(), body_timeout=BODY_TIMEOUT)), db
    )


SPEC = parse_spec(
    {
        "version": 1,
        "kind": "matmul",
        "dtype": "int8",
        "m": 8,
        "n": 8,
        "k": 8,
        "inputs": {"seed": 7},
        "verify": {"mode": "sampled", "openings": 2},
    }
)


@dataclass
class Worker:
    server: WebServer
    blob: str  # the committed result's blob name
    commitment: str  # 0x-hex
    result: bytes

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def result_path(self) -> str:
        return f"/results/{JOB}/{WORKER.address}/{self.commitment}"


def start_worker(root: Path) -> Worker:
    """The worker's routes with one committed result (job JOB, a small sampled matmul)."""
    specs = LocalBlobStore(root / "specs")
    specs.put(SPEC.canonical)
    store = LocalBlobStore(root / "blobs")
    result = compute(SPEC)
    data = encode_result(result)
    name = store.put(data)
    root_hash = result_root(SPEC, result)
    c = commitment(WORKER.address, root_hash)
    db = WorkerDB(root / "worker.db")
    db.add_jobs(
        [{"job_id": JOB, "spec_hash": SPEC.hash, "work_units": 1, "amount": 1, "deadline": 2**40}],
        1,
    )
    db.set_computed_many([(JOB, name, root_hash, c)])
    db.set_state(JOB, "committed")
    api = WorkerApi(WORKER.address, db, store, SpecStore([str(root / "specs")]), Metrics("pouw_w"))
    answer_challenge(SPEC, result, b"\x00" * 32)  # load the Merkle kernels before any timing
    server = serve(WebServer(api.routes(), body_timeout=BODY_TIMEOUT))
    return Worker(server, name, "0x" + c.hex(), data)


def start_blobs(root: Path) -> BlobServer:
    """A blob store taking blobs of up to BLOB_LIMIT bytes."""
    server = BlobServer(
        LocalBlobStore(root / "store", max_size=BLOB_LIMIT), body_timeout=BODY_TIMEOUT
    )
    serve(server)
    return server


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = start_node(tmp_path_factory.mktemp("node"))
    yield n
    n.server.stop()
    n.db.close()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = start_worker(tmp_path_factory.mktemp("worker"))
    yield w
    w.server.stop()


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlobServer]:
    srv = start_blobs(tmp_path_factory.mktemp("blobs"))
    yield srv
    srv.stop()


def url(server: Node | Worker | WebServer) -> str:
    return server.server.url if isinstance(server, Node | Worker) else server.url


# --- the detector itself -------------------------------------------------------------------------


def test_detector__a_handler_that_raises__500_logged_and_caught(
    faults: list[logging.LogRecord],
) -> None:
    """The checks below can fail: a handler's unexpected exception is answered 500 and shows
    up as a server fault, while the server goes on."""

    async def boom(_req: web.Request) -> web.Response:
        raise RuntimeError("boom")

    async def health(_req: web.Request) -> web.Response:
        return web.Response(text="ok")

    with WebServer([web.get("/boom", boom), web.get("/health", health)]) as srv:
        reply = answered(send(srv.port, "GET", "/boom"))
        assert (reply.status, reply.text) == (500, "internal error\n")
        assert [r for r in faults if _server_fault(r)]
        with pytest.raises(AssertionError):
            assert_serving(srv.url, faults)
        faults.clear()
        assert_serving(srv.url, faults)


# --- POST /sign ----------------------------------------------------------------------------------


def _item(**changes: Any) -> dict[str, Any]:
    """AGREED's wire form with ``changes``."""
    return {**msgspec.structs.asdict(to_item(AGREED)), **changes}


def test_sign__well_formed_proposal__signed(node: Node, faults: list[logging.LogRecord]) -> None:
    """The control: a proposal of the recorded verdict is agreed and signed by the node; an
    item it has no verdict for is left out."""
    other = _item(job_id=JOB + 1)
    reply = post_json(node.port, "/sign", {"items": [other, _item()], "valid_until": UNTIL})
    assert reply.status == 200, reply.text
    answer = json.loads(reply.body)
    assert answer["agreed"] == [1] and answer["signer"] == NODE.address
    sig = CompactSignature(answer["signer"], int(answer["r"], 16), int(answer["vs"], 16))
    assert recover_signer(CHAIN_ID, MARKET, [AGREED], UNTIL, sig) == NODE.address
    assert_serving(url(node), faults)


@pytest.mark.parametrize("until", [NOW - 1, NOW + 900 + 61, 2**63 - 1, 2**64, -1])
def test_sign__expiry_outside_the_window__400_naming_valid_until(
    node: Node, faults: list[logging.LogRecord], until: int
) -> None:
    """A proposal already expired, or valid for longer than this node's signature_ttl (plus a
    minute of skew), is refused: no signature of the node outlives its promised freshness."""
    body = {"items": [_item()], "valid_until": until}
    before = node.db.counts().get("signatures", 0)
    assert_clear_4xx(post_json(node.port, "/sign", body), 400, "valid_until")
    assert node.db.counts().get("signatures", 0) == before  # nothing signed
    assert_serving(url(node), faults)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"job_id": 2**64}, "job_id"),
        ({"job_id": 2**63}, "job_id"),
        ({"job_id": -1}, "job_id"),
        ({"job_id": 10**400}, "job_id"),
        ({"work_units": 2**256}, "work_units"),
        ({"work_units": -(2**300)}, "work_units"),
        ({"verdict": 2**64}, "verdict"),
        ({"verdict": 3}, "verdict"),
    ],
)
def test_sign__integer_out_of_range__400_naming_the_field(
    node: Node, faults: list[logging.LogRecord], changes: dict[str, int], field: str
) -> None:
    """An integer beyond its field's range (64 bits for a job id, 256 for work units) is a 400
    that names the field, not a SQLite overflow."""
    assert_clear_4xx(
        post_json(node.port, "/sign", {"items": [_item(**changes)], "valid_until": UNTIL}),
        400,
        field,
    )
    assert_serving(url(node), faults)


def test_sign__wide_but_legal_work_units__answered(
    node: Node, faults: list[logging.LogRecord]
) -> None:
    """Work units above 64 bits but within uint256 are legal: answered 200 (not agreed, as the
    recorded verdict says 1000)."""
    reply = post_json(
        node.port, "/sign", {"items": [_item(work_units=2**255)], "valid_until": UNTIL}
    )
    assert reply.status == 200 and json.loads(reply.body)["agreed"] == []
    assert_serving(url(node), faults)


@pytest.mark.parametrize(
    "body",
    [
        b'{"items": 5}',
        b"[]",
        b'"x"',
        b"5",
        b"null",
        b"{}",
        b'{"items": "x"}',
        b'{"items": {}}',
        b'{"items": [5]}',
        b'{"items": [[]]}',
        b'{"items": [null]}',
        b'{"items": [{}]}',
        b'{"items": [{"job_id": "1"}]}',
        b"",
        b"\xff\xfe",
        b"{",
        b'{"items": [NaN]}',
        b'{"items": [1e999]}',
        b'{"items": [], "items": []}',
    ],
)
def test_sign__wrong_shape__400_without_python_internals(
    node: Node, faults: list[logging.LogRecord], body: bytes
) -> None:
    """A body of the wrong shape (or not JSON at all) is a one-line 400 about the request,
    never a Python message such as "'int' object is not iterable"."""
    assert_clear_4xx(send(node.port, "POST", "/sign", body))
    assert_serving(url(node), faults)


def test_sign__bad_items__400_naming_what_is_wrong(
    node: Node, faults: list[logging.LogRecord]
) -> None:
    """No items, more than MAX_BATCH, an unknown field (top level or in an item), a worker
    that is not an address, a commitment that is not 32 bytes (a trailing newline included),
    a missing field: each a 400 naming it."""
    port = node.port
    assert_clear_4xx(post_json(port, "/sign", {"items": [], "valid_until": UNTIL}), 400, "items")
    assert_clear_4xx(post_json(port, "/sign", {"items": [_item()] * (MAX_BATCH + 1)}), 400, "items")
    assert_clear_4xx(
        post_json(port, "/sign", {"items": [_item()], "extra": 1, "valid_until": UNTIL}),
        400,
        "extra",
    )
    assert_clear_4xx(
        post_json(port, "/sign", {"items": [_item(extra=1)], "valid_until": UNTIL}), 400, "extra"
    )
    assert_clear_4xx(
        post_json(port, "/sign", {"items": [_item(worker="0x12")], "valid_until": UNTIL}),
        400,
        "worker",
    )
    assert_clear_4xx(
        post_json(port, "/sign", {"items": [_item(commitment="0x00")], "valid_until": UNTIL}),
        400,
        "commitment",
    )
    for field, value in (("worker", WORKER.address), ("commitment", "0x" + "07" * 32)):
        newline = {"items": [_item(**{field: value + "\n"})], "valid_until": UNTIL}
        assert_clear_4xx(post_json(port, "/sign", newline), 400, field)
    missing = _item()
    del missing["transcript_hash"]
    assert_clear_4xx(
        post_json(port, "/sign", {"items": [missing], "valid_until": UNTIL}), 400, "transcript_hash"
    )
    assert_serving(url(node), faults)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "GET"])
def test_sign__other_methods__405_plain_text_with_allow(
    node: Node, faults: list[logging.LogRecord], method: str
) -> None:
    """Any method but POST on /sign is a plain-text 405 with an Allow header, no HTML page."""
    reply = answered(send(node.port, method, "/sign", b"{}"))
    assert reply.status == 405
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["allow"] == "POST"
    assert b"<" not in reply.body
    assert_serving(url(node), faults)


def test_unknown_paths__404_plain_text(
    node: Node, worker: Worker, blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A path no route takes is a plain-text 404 on every server, no HTML page."""
    for server in (node.server, worker.server, blobs):
        for path in ("/nope", "/", "/sign/x", "/../etc/passwd", "/%2e%2e/health"):
            reply = answered(send(server.port, "GET", path))
            assert reply.status == 404, (path, reply.status)
            assert reply.headers["content-type"].startswith("text/plain")
            assert b"<" not in reply.body
        assert_serving(server.url, faults)


# --- bodies declared too large -------------------------------------------------------------------


def _declared_200mb(port: int, method: str, path: str) -> tuple[Reply | None, float]:
    """Declare a 200 MB body, send 3 bytes of it, and read the answer without sending more;
    (answer, seconds it took)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 209715200\r\n\r\n"
    start = time.monotonic()
    reply = exchange(port, head.encode() + b"abc", timeout=2.0)
    return reply, time.monotonic() - start


def test_declared_200mb_body__413_at_once_on_every_json_endpoint(
    node: Node, worker: Worker, blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A JSON endpoint refuses a body declared larger than 1 MiB from its Content-Length: 413
    within 2 s, while the client holds back all but 3 bytes of the 200 MB."""
    for server, path in (
        (node.server, "/sign"),
        (node.server, "/workers"),
        (worker.server, "/results"),
        (blobs, "/blobs"),
        (blobs, "/results"),
        (blobs, "/results/fetch"),
        (blobs, f"/results/{'ab' * 32}/rows"),
    ):
        reply, seconds = _declared_200mb(server.port, "POST", path)
        assert_clear_4xx(reply, 413)
        assert seconds < 2.0
        assert_serving(server.url, faults)


def test_chunked_json_body_beyond_the_limit__413_on_every_json_endpoint(
    node: Node, worker: Worker, blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A chunked JSON body (no Content-Length) is refused with 413 as soon as it grows past
    1 MiB."""
    body = b"[" + b" " * DEFAULT_MAX_BODY + b"]"
    for server, path in (
        (node.server, "/sign"),
        (node.server, "/workers"),
        (worker.server, "/results"),
        (blobs, "/blobs"),
        (blobs, "/results/fetch"),
        (blobs, f"/results/{'ab' * 32}/rows"),
    ):
        reply = answered(send(server.port, "POST", path, body, framing="chunked"))
        assert_clear_4xx(reply, 413, "limit")
        assert_serving(server.url, faults)


# --- POST /workers -------------------------------------------------------------------------------


def _announce(timestamp: int, **kw: Any) -> dict[str, Any]:
    args = {"account": WORKER, "chain_id": CHAIN_ID, "market": MARKET, "url": "http://w.example"}
    args.update(kw)
    return make_announcement(timestamp=timestamp, **args)


def test_workers__valid_announcement__recorded(node: Node, faults: list[logging.LogRecord]) -> None:
    """The control: a validly signed announcement is taken and its URL recorded (a worker of
    its own: the fuzz test announces WORKER with any timestamp)."""
    account = Account.from_key("0x" + "58" * 32)
    body = _announce(5, account=account, url="http://w.example:8001/")
    reply = post_json(node.port, "/workers", body)
    assert reply.status == 200, reply.text
    assert node.db.worker_url(account.address) == "http://w.example:8001"
    assert_serving(url(node), faults)


@pytest.mark.parametrize("timestamp", [2**70, 2**63, 10**30, -1])
def test_workers__signed_timestamp_out_of_range__400_naming_it(
    node: Node, faults: list[logging.LogRecord], timestamp: int
) -> None:
    """A validly signed announcement whose timestamp does not fit a signed 64-bit integer is a
    400 naming the timestamp, not a SQLite overflow."""
    body = _announce(timestamp)
    assert_clear_4xx(post_json(node.port, "/workers", body), 400, "timestamp")
    assert_serving(url(node), faults)


_GARBAGE_ANNOUNCEMENTS = {
    "empty": b"",
    "binary": b"\xff\xfe\x00",
    "bracket": b"[",
    "null": b"null",
    "list": b"[]",
    "no-fields": b"{}",
    "worker-int": b'{"worker": 5}',
    "other-chain": json.dumps(_announce(5, chain_id=1)).encode(),
    "other-market": json.dumps(_announce(5, market="0x" + "11" * 20)).encode(),
    "not-the-signer": json.dumps({**_announce(5), "worker": NODE.address}).encode(),
    "signature-zero": json.dumps({**_announce(5), "signature": "0x" + "00" * 65}).encode(),
    "signature-ff": json.dumps({**_announce(5), "signature": "0x" + "ff" * 65}).encode(),
    "worker-newline": json.dumps({**_announce(5), "worker": WORKER.address + "\n"}).encode(),
    "url-ftp": json.dumps({**_announce(5), "url": "ftp://x"}).encode(),
    "url-long": json.dumps({**_announce(5), "url": "http://" + "a" * 600}).encode(),
    "extra-field": json.dumps({**_announce(5), "extra": 1}).encode(),
}


@pytest.mark.parametrize("body", _GARBAGE_ANNOUNCEMENTS.values(), ids=_GARBAGE_ANNOUNCEMENTS.keys())
def test_workers__garbage__400(node: Node, faults: list[logging.LogRecord], body: bytes) -> None:
    """Anything but a valid announcement for this chain and market is a one-line 400."""
    assert_clear_4xx(send(node.port, "POST", "/workers", body))
    assert_serving(url(node), faults)


# --- the worker ----------------------------------------------------------------------------------


def test_worker__committed_result__served(worker: Worker, faults: list[logging.LogRecord]) -> None:
    """The control: the committed result's manifest, blob, sampled answer and bundle are
    served."""
    base = url(worker)
    manifest = requests.get(base + worker.result_path, timeout=5)
    assert manifest.status_code == 200 and manifest.json()["blob"] == worker.blob
    blob = requests.get(f"{base}/blobs/{worker.blob}", timeout=5)
    assert blob.status_code == 200 and blob.content == worker.result
    seed = "0x" + "01" * 32
    answer = requests.get(f"{base}{worker.result_path}/answer", params={"seed": seed}, timeout=5)
    assert answer.status_code == 200 and len(answer.content) > 0
    items = [{"job_id": JOB, "commitment": worker.commitment}]
    bundle = requests.post(f"{base}/results", json={"items": items}, timeout=5)
    assert bundle.status_code == 200
    [(fields, payload)] = decode_bundle(bundle.content)
    assert fields["blob"] == worker.blob and payload == worker.result
    assert_serving(base, faults)


@pytest.mark.parametrize(
    "job",
    [
        str(2**70),
        str(2**63),
        "9" * 100,
        "-1",
        "0x7",
        "%201",
        "1e3",
        "%C2%B2",  # superscript two: str.isdigit() says yes, int() says no
        "%D9%A1%D9%A2",  # Arabic-Indic digits "12": not an ASCII integer
        "%EF%BC%97",  # fullwidth 7
    ],
)
def test_worker__result_path_with_bad_job_id__400_naming_it(
    worker: Worker, faults: list[logging.LogRecord], job: str
) -> None:
    """A job id in a result path that is not an ASCII integer within 64 bits is a 400 naming
    ``job_id``, on the manifest and on the answer route."""
    path = f"/results/{job}/{WORKER.address}/{worker.commitment}"
    assert_clear_4xx(send(worker.port, "GET", path), 400, "job_id")
    assert_clear_4xx(send(worker.port, "GET", path + "/answer?seed=0x" + "01" * 32), 400, "job_id")
    assert_serving(url(worker), faults)


def test_worker__result_path_bad_parts__400(
    worker: Worker, faults: list[logging.LogRecord]
) -> None:
    """A worker that is not an address, a commitment that is not 32 bytes, a seed that is not
    32 bytes: each a 400 naming it."""
    c = worker.commitment
    port = worker.port
    assert_clear_4xx(send(port, "GET", f"/results/{JOB}/0x12/{c}"), 400, "worker")
    assert_clear_4xx(send(port, "GET", f"/results/{JOB}/{WORKER.address}/0x00"), 400, "commitment")
    for seed in ("", "0x00", "0x" + "zz" * 32, "0x" + "01" * 32 + "%0A"):
        path = f"{worker.result_path}/answer?seed={seed}"
        assert_clear_4xx(send(port, "GET", path), 400, "seed")
    assert_serving(url(worker), faults)


@pytest.mark.parametrize(
    "value",
    [
        {"items": [{"job_id": 2**70, "commitment": "0x" + "00" * 32}]},
        {"items": [{"job_id": 2**63, "commitment": "0x" + "00" * 32}]},
        {"items": [{"job_id": -1, "commitment": "0x" + "00" * 32}]},
        {"items": [{"job_id": 1, "commitment": "0x" + "00" * 32, "seed": 2**70}]},
        {"items": [{"job_id": 1, "commitment": 2**256}]},
        {"items": 5},
        {"items": []},
        {"items": [{"job_id": 1, "commitment": "0x" + "00" * 32}] * (MAX_BUNDLE_ITEMS + 1)},
        {"items": [{"job_id": 1, "commitment": "0x" + "00" * 32, "x": 1}]},
        {"items": [[]]},
        [],
        "x",
        None,
    ],
)
def test_worker__results_post_malformed__400(
    worker: Worker, faults: list[logging.LogRecord], value: Any
) -> None:
    """``POST /results`` with integers beyond 64 bits or a wrong shape is a one-line 400."""
    assert_clear_4xx(post_json(worker.port, "/results", value))
    assert_serving(url(worker), faults)


# --- deeply nested JSON --------------------------------------------------------------------------

#: ~400 KB bodies nesting ~400 000 levels deep, in the places a decoder might recurse.
NESTED = [
    b"[" * 400_000,
    b'{"a":' * 80_000,
    b'{"items":' + b"[" * 400_000,
    b'{"items":[{"job_id":' + b"[" * 400_000,
    b'{"names":' + b"[" * 400_000,
    b'{"worker":' + b"[" * 400_000,
    b'{"unknown":' + b"[" * 400_000,
]
JSON_ENDPOINTS = ["node /sign", "node /workers", "worker /results", "blobs /blobs"]


def _nested_statuses(ports: dict[str, int]) -> dict[str, list[int | None]]:
    """The status of each NESTED body POSTed to each JSON endpoint (None: no answer)."""
    out: dict[str, list[int | None]] = {}
    for endpoint in JSON_ENDPOINTS:
        server, path = endpoint.split(" ")
        replies = [send(ports[server], "POST", path, body) for body in NESTED]
        out[endpoint] = [None if r is None else r.status for r in replies]
    return out


def test_nested_json__400_on_every_json_endpoint(
    node: Node, worker: Worker, blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """~400 KB of nested brackets is a 400 on each JSON endpoint: the bodies are decoded into
    their schemas, which fail at the first level deeper than they allow."""
    ports = {"node": node.port, "worker": worker.port, "blobs": blobs.port}
    statuses = _nested_statuses(ports)
    assert statuses == {e: [400] * len(NESTED) for e in JSON_ENDPOINTS}
    for server in (node.server, worker.server, blobs):
        assert_serving(server.url, faults)


def nested_in_raised_recursion_limit(root: str) -> None:
    """Run in a subprocess by the test below: serve every JSON endpoint in a process whose
    recursion limit is 100 000 (as py_ecc sets it on import; deep enough for a recursive decoder
    to overflow the C stack), POST the nested bodies and print the statuses as JSON."""
    sys.setrecursionlimit(100_000)
    base = Path(root)
    node, worker, blobs = start_node(base), start_worker(base / "w"), start_blobs(base)
    ports = {"node": node.port, "worker": worker.port, "blobs": blobs.port}
    statuses = _nested_statuses(ports)
    health = [
        requests.get(f"{s.url}/health", timeout=5).status_code
        for s in (node.server, worker.server, blobs)
    ]
    print(json.dumps({"statuses": statuses, "health": health}))


def test_nested_json__process_with_raised_recursion_limit__survives(tmp_path: Path) -> None:
    """Under ``sys.setrecursionlimit(100_000)`` the same bodies are still 400s and the process
    lives on (with a recursive JSON decoder such a body overflows the C stack: SIGSEGV)."""
    repo = Path(__file__).resolve().parents[2]
    code = (
        "import sys; from tests.oracle.test_http_hardening import nested_in_raised_recursion_limit"
        " as main; main(sys.argv[1])"
    )
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["statuses"] == {e: [400] * len(NESTED) for e in JSON_ENDPOINTS}
    assert out["health"] == [200, 200, 200]
    assert "http_error" not in proc.stderr


# --- the blob store ------------------------------------------------------------------------------


def _no_temp_files(store: LocalBlobStore) -> bool:
    return not list(store.root.glob("**/.tmp-*"))


def test_blobs__put_and_get__served(blobs: BlobServer, faults: list[logging.LogRecord]) -> None:
    """The control: a blob PUT under its name is stored and served."""
    data = b"control blob"
    name = blob_name(data)
    assert answered(send(blobs.port, "PUT", f"/blobs/{name}", data)).status == 201
    reply = answered(send(blobs.port, "GET", f"/blobs/{name}"))
    assert reply.status == 200 and reply.body == data
    assert_serving(blobs.url, faults)


def test_blobs__put_declaring_200mb__413_before_the_body(
    blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A PUT declaring 200 MB (the store takes 1 MiB) is refused with 413 within 2 s, with
    only 3 bytes of it sent: the refusal comes from the header, not from reading the body."""
    name = "ab" * 32
    reply, seconds = _declared_200mb(blobs.port, "PUT", f"/blobs/{name}")
    assert_clear_4xx(reply, 413)
    assert seconds < 2.0
    assert not blobs.store.has(name) and _no_temp_files(blobs.store)
    assert_serving(blobs.url, faults)


def test_blobs__chunked_put_beyond_the_limit__413_and_nothing_stored(
    blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A chunked PUT (no Content-Length) of one byte more than the store takes is refused with
    413 as it grows past the limit, and leaves nothing behind."""
    data = os.urandom(BLOB_LIMIT + 1)
    name = blob_name(data)
    head = f"PUT /blobs/{name} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    reply = exchange(blobs.port, head.encode() + b"%x\r\n" % len(data) + data + b"\r\n")
    assert_clear_4xx(reply, 413)
    assert not blobs.store.has(name) and _no_temp_files(blobs.store)
    assert_serving(blobs.url, faults)


@pytest.mark.parametrize("framing", ["long", "chunked-cut"])
def test_blobs__client_hangs_up_mid_put__nothing_stored_nothing_logged(
    blobs: BlobServer, faults: list[logging.LogRecord], framing: str
) -> None:
    """A client that stops sending a PUT body half-way and hangs up leaves no blob and no temp
    file, and is the client's failure, not a logged server error."""
    data = b"half a blob" * 100
    name = blob_name(data)
    if framing == "long":
        raw = request_bytes("PUT", f"/blobs/{name}", data, framing="long")
    else:
        head = f"PUT /blobs/{name} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw = head.encode() + b"%x\r\n" % len(data) + data[:100]
    reply = hang_up(blobs.port, raw)
    assert reply is None or 400 <= reply.status < 500
    assert not blobs.store.has(name) and _no_temp_files(blobs.store)
    assert_serving(blobs.url, faults)


def test_blobs__bad_puts__4xx_and_nothing_stored(
    blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """Content that does not hash to the name (400), no length at all (411), a name that is not
    64 hex digits (400): nothing is stored."""
    data = b"some content"
    wrong = "cd" * 32
    assert_clear_4xx(send(blobs.port, "PUT", f"/blobs/{wrong}", data), 400, "hash")
    assert_clear_4xx(send(blobs.port, "PUT", f"/blobs/{wrong}", framing="none"), 411)
    for name in ("..", "%2e%2e", "..%2F..%2Fetc", "zz" * 32, blob_name(data) + "%0A", "0x"):
        assert_clear_4xx(send(blobs.port, "PUT", f"/blobs/{name}", data), 400, "name")
        assert_clear_4xx(send(blobs.port, "GET", f"/blobs/{name}"), 400, "name")
    assert not blobs.store.has(wrong) and not blobs.store.has(blob_name(data))
    assert _no_temp_files(blobs.store)
    assert_serving(blobs.url, faults)


def _result(seed: int, rows: int = 6, cols: int = 5) -> StoredResult:
    data = np.random.default_rng(seed).integers(-9, 9, (rows, cols)).astype("<i4").tobytes()
    worker = WORKER.address
    root = merkle_root(data, rows * chunks_per_row(cols, 4))  # the result tree's leaves
    return StoredResult(commitment(worker, root), worker, cols * 4, data)


def test_results__bad_puts__4xx_and_nothing_stored(
    blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """Bytes that do not open the commitment, a missing or malformed worker or row width, no
    length, a body over the store's limit, a commitment that is not 64 hex digits: 4xx, one
    line, nothing stored."""
    good, other = _result(1), _result(2)
    c = good.commitment.hex()
    q = f"worker={WORKER.address}&row_bytes={good.row_bytes}"
    path = f"/results/{c}?{q}"
    assert_clear_4xx(send(blobs.port, "PUT", path, other.data), 400, "do not open the commitment")
    for query, name in (
        (f"row_bytes={good.row_bytes}", "worker"),
        (f"worker=0x12&row_bytes={good.row_bytes}", "worker"),
        (f"worker={WORKER.address}", "row_bytes"),
        (f"worker={WORKER.address}&row_bytes=0", "row_bytes"),
        (f"worker={WORKER.address}&row_bytes=-4", "row_bytes"),
        (f"worker={WORKER.address}&row_bytes=1e3", "row_bytes"),
    ):
        assert_clear_4xx(send(blobs.port, "PUT", f"/results/{c}?{query}", good.data), 400, name)
    assert_clear_4xx(send(blobs.port, "PUT", path, framing="none"), 411)
    big = b"\0" * (BLOB_LIMIT + 1)
    assert_clear_4xx(send(blobs.port, "PUT", path, big, framing="chunked"), 413)
    for name in ("..", "zz" * 32, c + "%0A", "0x"):
        assert_clear_4xx(send(blobs.port, "PUT", f"/results/{name}?{q}", good.data), 400)
        assert_clear_4xx(send(blobs.port, "GET", f"/results/{name}"), 400, "commitment")
    assert_clear_4xx(send(blobs.port, "GET", f"/results/{c}"), 404, "no such result")
    assert not blobs.results.has(good.commitment)
    assert not list(blobs.results.root.glob("**/.tmp-*"))
    assert_serving(blobs.url, faults)


def test_results__delivery_fetch_and_rows__bad_requests_refused_good_ones_served(
    blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A delivery bundle that is not one (400), one that declares more than a bundle may hold
    (413), a fetch of no or too many commitments and rows out of range or too many (400), a
    result that is not there (404); the good requests of each are answered."""
    r = _result(3)
    assert_clear_4xx(send(blobs.port, "POST", "/results", b"\x00\x00\x00\x05nope!"), 400, "bundle")
    bundle = encode_bundle(
        [({"commitment": r.commitment.hex(), "worker": r.worker, "row_bytes": 20}, r.data)]
    )
    reply = answered(send(blobs.port, "POST", "/results", bundle))
    assert reply.status == 200 and json.loads(reply.text)["stored"] == [r.commitment.hex()]
    assert_clear_4xx(post_json(blobs.port, "/results/fetch", {"commitments": []}), 400)
    too_many = {"commitments": [r.commitment.hex()] * 257}
    assert_clear_4xx(post_json(blobs.port, "/results/fetch", too_many), 400)
    one = post_json(blobs.port, "/results/fetch", {"commitments": [r.commitment.hex()]})
    assert one.status == 200
    rows = f"/results/{r.commitment.hex()}/rows"
    assert_clear_4xx(post_json(blobs.port, rows, {"rows": [6]}), 400, "row 6")
    assert_clear_4xx(post_json(blobs.port, rows, {"rows": [-1]}), 400)
    assert_clear_4xx(post_json(blobs.port, rows, {"rows": [0] * 257}), 400)
    assert_clear_4xx(post_json(blobs.port, f"/results/{'cd' * 32}/rows", {"rows": [0]}), 404)
    got = post_json(blobs.port, rows, {"rows": [5, 0]})
    assert got.status == 200 and got.body == r.data[100:120] + r.data[:20]
    assert_serving(blobs.url, faults)


def test_json_bodies_cut_short__no_server_error(
    node: Node, worker: Worker, blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A JSON body that stops before its declared length (the client hangs up) is the client's
    failure: no server error is logged and the server goes on."""
    for server, path in (
        (node.server, "/sign"),
        (node.server, "/workers"),
        (worker.server, "/results"),
        (blobs, "/blobs"),
    ):
        reply = hang_up(server.port, request_bytes("POST", path, b'{"items": [', framing="long"))
        assert reply is None or 400 <= reply.status < 500
        assert_serving(server.url, faults)


def test_stalled_bodies__408_after_the_body_timeout(
    node: Node, worker: Worker, blobs: BlobServer, faults: list[logging.LogRecord]
) -> None:
    """A body that stops coming while the client stays connected is answered 408 once it has
    stalled for the body timeout (1 s here): a half-sent request does not hold its connection
    and handler for good. So is a chunked body whose framing breaks half-way (aiohttp reports
    that to no handler: without the timeout it waits forever)."""
    name = "ab" * 32
    chunked = f"PUT /blobs/{name} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    cases = [
        (node.server, request_bytes("POST", "/sign", b'{"items": [', framing="long")),
        (node.server, request_bytes("POST", "/workers", b'{"worker": "', framing="long")),
        (worker.server, request_bytes("POST", "/results", b"{", framing="long")),
        (blobs, request_bytes("POST", "/blobs", b'{"names": [', framing="long")),
        (blobs, request_bytes("PUT", f"/blobs/{name}", b"part of a blob", framing="long")),
    ]
    # A chunk size that is not one ("zz"), once the handler is reading the body.
    broken = (blobs, chunked.encode() + b"3\r\nabc\r\n", b"zz\r\nabc\r\n")

    def timed(server: WebServer, data: bytes, then: bytes) -> tuple[Reply | None, float]:
        start = time.monotonic()
        reply = exchange(server.port, data, timeout=BODY_TIMEOUT + 4, then=then)
        return reply, time.monotonic() - start

    runs = [(server, data, b"") for server, data in cases] + [broken]
    with ThreadPoolExecutor(len(runs)) as pool:  # all at once: one timeout to wait, not 6
        results = list(pool.map(lambda run: timed(*run), runs))
    for (server, _, _), (reply, seconds) in zip(runs, results, strict=True):
        assert_clear_4xx(reply, 408, "stalled")
        assert BODY_TIMEOUT <= seconds < BODY_TIMEOUT + 3
        assert answered(reply).headers["connection"] == "close"
        assert_serving(server.url, faults)
    assert not blobs.store.has(name) and _no_temp_files(blobs.store)


# --- the connection cap --------------------------------------------------------------------------


def test_connection_cap__extra_connections_503__then_served_again(
    faults: list[logging.LogRecord],
) -> None:
    """With max_connections=4, four idle keep-alive connections hold every slot: two more are
    answered 503 and closed at once; once the four close, a new connection is served."""

    async def health(_req: web.Request) -> web.Response:
        return web.Response(text="ok")

    with WebServer([web.get("/health", health)], max_connections=4) as srv:
        held = []
        for _ in range(4):  # each served once, then left open and idle
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1 << 16).startswith(b"HTTP/1.1 200")
            held.append(sock)
        for _ in range(2):
            reply = answered(exchange(srv.port, b"", timeout=2.0))
            assert reply.status == 503 and reply.headers["connection"] == "close"
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        while True:
            reply = answered(send(srv.port, "GET", "/health"))
            if reply.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert reply.status == 200
        assert_serving(srv.url, faults)


# --- fuzz ----------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HUGE = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=2**255, max_value=2**300),
    st.integers(max_value=-(2**63) + 1, min_value=-(2**300)),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    HUGE,
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(["0x", "0x" + "00" * 32, "0x" + "ab" * 20]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
HEADER_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " ;=/-_.,*\"'()+", max_size=40
)
HEADERS = st.dictionaries(
    st.sampled_from(
        [
            "Content-Type",
            "Accept",
            "Accept-Encoding",
            "Content-Encoding",
            "Expect",
            "Range",
            "Cookie",
            "If-None-Match",
            "X-Forwarded-For",
            "Origin",
        ]
    ),
    st.one_of(
        HEADER_TEXT,
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "multipart/form-data; boundary=x",
                "application/x-www-form-urlencoded",
                "gzip",
                "deflate",
                "br",
                "100-continue",
                "bytes=0-1",
                "bytes=5-1",
                "bytes=-1",
                "bytes=0-0,2-3",
            ]
        ),
    ),
    max_size=3,
)
FRAMING = st.sampled_from(
    ["exact", "exact", "exact", "short", "long", "chunked", "both", "twice", "none"]
)


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity come out as (invalid) JSON literals


def bodies(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bodies: near-valid structures, arbitrary JSON, raw bytes, deep nesting."""
    return st.one_of(
        structured.map(_encode),
        structured.map(_encode),
        JSON.map(_encode),
        st.binary(max_size=600),
        st.integers(min_value=1, max_value=50_000).map(lambda n: b"[" * n),
    )


def either(valid: Any) -> st.SearchStrategy[Any]:
    """Mostly ``valid``, sometimes any JSON value."""
    return st.one_of(st.just(valid), st.just(valid), st.just(valid), JSON, HUGE)


def _maybe_extra(d: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        d,
        st.tuples(d, st.dictionaries(st.text(max_size=8), JSON, min_size=1, max_size=2)).map(
            lambda p: {**p[0], **p[1]}
        ),
    )


SEGMENT = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "%2e%2e",
            "%2E%2e%2F",
            "%2F",
            "%00",
            "%0A",
            "%C2%B2",
            "%D9%A1",
            "%ff",
            "%zz",
            "%",
            "-1",
            "0x10",
            "%201",
            "1e3",
            "~",
            "*",
            "%3Fa=1",
        ]
    ),
    HUGE.map(str),
    st.text(max_size=70).map(lambda s: quote(s, safe="")),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=62, max_size=66).map(lambda s: "0x" + s),
)


def check(
    reply: Reply | None, framing: str, server_url: str, faults: list[logging.LogRecord]
) -> None:
    """A fuzz example's outcome: an answer below 500 (no answer only where the client cut the
    body short), no server fault logged, the service healthy."""
    if framing != "long":
        reply = answered(reply)
    event(f"answer {'none' if reply is None else reply.status}")  # --hypothesis-show-statistics
    assert reply is None or reply.status < 500, (reply.status, reply.text)
    assert_serving(server_url, faults)


def _sign_items() -> st.SearchStrategy[Any]:
    valid = msgspec.structs.asdict(to_item(AGREED))
    item = _maybe_extra(st.fixed_dictionaries({k: either(v) for k, v in valid.items()}))
    items = st.one_of(st.lists(item, max_size=3), st.just([valid] * (MAX_BATCH + 1)), JSON)
    until = st.one_of(st.just(UNTIL), st.integers(), HUGE)
    return _maybe_extra(st.fixed_dictionaries({"items": items, "valid_until": until}))


@FUZZ
@given(body=bodies(_sign_items()), headers=HEADERS, framing=FRAMING)
def test_fuzz__sign(
    node: Node, faults: list[logging.LogRecord], body: bytes, headers: dict[str, str], framing: str
) -> None:
    """Fuzzed POST /sign bodies, headers and framings: never a 5xx, the node stays healthy."""
    check(
        send(node.port, "POST", "/sign", body, headers, framing=framing), framing, url(node), faults
    )


@st.composite
def announcements(draw: st.DrawFn) -> Any:
    ts = draw(st.one_of(st.integers(min_value=0, max_value=2**63 - 1), HUGE))
    url_ = draw(
        st.one_of(
            st.just("http://w.example"),
            st.text(max_size=30).map(lambda s: "http://" + s),
            st.text(max_size=20),
        )
    )
    chain_id = draw(st.sampled_from([CHAIN_ID, 1]))
    ann = _announce(ts, url=url_, chain_id=chain_id)
    return draw(_maybe_extra(st.fixed_dictionaries({k: either(v) for k, v in ann.items()})))


@FUZZ
@given(body=bodies(announcements()), headers=HEADERS, framing=FRAMING)
def test_fuzz__workers(
    node: Node, faults: list[logging.LogRecord], body: bytes, headers: dict[str, str], framing: str
) -> None:
    """Fuzzed POST /workers (signed announcements with fuzzed fields, timestamps beyond 64 bits,
    garbage): never a 5xx, the node stays healthy."""
    check(
        send(node.port, "POST", "/workers", body, headers, framing=framing),
        framing,
        url(node),
        faults,
    )


@FUZZ
@given(
    parts=st.tuples(
        st.one_of(st.just(str(JOB)), SEGMENT),
        st.one_of(st.just(WORKER.address), SEGMENT),
        st.one_of(st.just("<c>"), SEGMENT),
    ),
    tail=st.one_of(
        st.just(""),
        st.just("/answer"),
        st.one_of(st.just("0x" + "01" * 32), SEGMENT).map(lambda s: "/answer?seed=" + s),
        SEGMENT.map(lambda s: "/" + s),
    ),
    headers=HEADERS,
)
def test_fuzz__worker_results_get(
    worker: Worker,
    faults: list[logging.LogRecord],
    parts: tuple[str, str, str],
    tail: str,
    headers: dict[str, str],
) -> None:
    """Fuzzed GET /results/<job>/<worker>/<commitment>[/answer?seed=…] paths (huge numbers,
    ``..``, percent-escapes, non-ASCII digits): never a 5xx, the worker stays healthy."""
    job, address, c = parts
    path = f"/results/{job}/{address}/{worker.commitment if c == '<c>' else c}{tail}"
    check(
        send(worker.port, "GET", path, headers=headers, framing="none"), "none", url(worker), faults
    )


def _results_items() -> st.SearchStrategy[Any]:
    valid = {"job_id": JOB, "commitment": "0x" + "00" * 32, "seed": "0x" + "01" * 32}
    item = _maybe_extra(st.fixed_dictionaries({k: either(v) for k, v in valid.items()}))
    return _maybe_extra(
        st.fixed_dictionaries({"items": st.one_of(st.lists(item, max_size=3), JSON)})
    )


@FUZZ
@given(body=bodies(_results_items()), headers=HEADERS, framing=FRAMING)
def test_fuzz__worker_results_post(
    worker: Worker,
    faults: list[logging.LogRecord],
    body: bytes,
    headers: dict[str, str],
    framing: str,
) -> None:
    """Fuzzed POST /results bodies: never a 5xx, the worker stays healthy."""
    check(
        send(worker.port, "POST", "/results", body, headers, framing=framing),
        framing,
        url(worker),
        faults,
    )


@FUZZ
@given(
    name=st.one_of(st.just("<blob>"), SEGMENT),
    headers=HEADERS,
    server=st.sampled_from(["worker", "blobs"]),
)
def test_fuzz__blob_get(
    worker: Worker,
    blobs: BlobServer,
    faults: list[logging.LogRecord],
    name: str,
    headers: dict[str, str],
    server: str,
) -> None:
    """Fuzzed GET /blobs/<name> on the worker and the blob store (names, Range headers):
    never a 5xx, the server stays healthy."""
    srv = worker.server if server == "worker" else blobs
    if name == "<blob>":
        name = worker.blob
        if server == "blobs":
            blobs.store.put(worker.result)
    check(
        send(srv.port, "GET", f"/blobs/{name}", headers=headers, framing="none"),
        "none",
        srv.url,
        faults,
    )


@FUZZ
@given(
    data=st.binary(max_size=4096),
    name=st.one_of(st.just("<own>"), st.just("<own>"), SEGMENT),
    headers=HEADERS,
    framing=FRAMING,
)
def test_fuzz__blob_put(
    blobs: BlobServer,
    faults: list[logging.LogRecord],
    data: bytes,
    name: str,
    headers: dict[str, str],
    framing: str,
) -> None:
    """Fuzzed PUT /blobs/<name> (the content's own name or not, every framing): never a 5xx,
    the store stays healthy, and a blob stored is one whose content hashes to its name."""
    path = f"/blobs/{blob_name(data) if name == '<own>' else name}"
    reply = send(blobs.port, "PUT", path, data, headers, framing=framing)
    check(reply, framing, blobs.url, faults)
    if reply is not None and reply.status == 201 and name == "<own>":
        assert blobs.store.get(blob_name(data)) == data


def _names() -> st.SearchStrategy[Any]:
    name = either("ab" * 32)
    return _maybe_extra(
        st.fixed_dictionaries({"names": st.one_of(st.lists(name, max_size=4), JSON)})
    )


@FUZZ
@given(body=bodies(_names()), headers=HEADERS, framing=FRAMING)
def test_fuzz__blob_post(
    blobs: BlobServer,
    faults: list[logging.LogRecord],
    body: bytes,
    headers: dict[str, str],
    framing: str,
) -> None:
    """Fuzzed POST /blobs bodies: never a 5xx, the store stays healthy."""
    check(
        send(blobs.port, "POST", "/blobs", body, headers, framing=framing),
        framing,
        blobs.url,
        faults,
    )


def _commitments() -> st.SearchStrategy[dict[str, Any]]:
    c = either("ab" * 32)
    return _maybe_extra(
        st.fixed_dictionaries({"commitments": st.one_of(st.lists(c, max_size=4), JSON)})
    )


def _rows() -> st.SearchStrategy[dict[str, Any]]:
    row = st.one_of(st.integers(min_value=-2, max_value=10), HUGE, JSON)
    return _maybe_extra(st.fixed_dictionaries({"rows": st.one_of(st.lists(row, max_size=4), JSON)}))


@FUZZ
@given(
    path=st.sampled_from(["/results", "/results/fetch", f"/results/{'ab' * 32}/rows"]),
    body=st.one_of(bodies(_commitments()), bodies(_rows()), st.binary(max_size=256)),
    headers=HEADERS,
    framing=FRAMING,
)
def test_fuzz__results_post(
    blobs: BlobServer,
    faults: list[logging.LogRecord],
    path: str,
    body: bytes,
    headers: dict[str, str],
    framing: str,
) -> None:
    """Fuzzed deliveries, fetches and row requests: never a 5xx, the store stays healthy."""
    check(
        send(blobs.port, "POST", path, body, headers, framing=framing), framing, blobs.url, faults
    )


@FUZZ
@given(
    segment=SEGMENT,
    query=st.one_of(st.just(""), SEGMENT.map(lambda q: f"?{q}")),
    body=st.binary(max_size=128),
    headers=HEADERS,
    framing=FRAMING,
)
def test_fuzz__results_put_and_get(
    blobs: BlobServer,
    faults: list[logging.LogRecord],
    segment: str,
    query: str,
    body: bytes,
    headers: dict[str, str],
    framing: str,
) -> None:
    """Fuzzed result names, queries and bodies on PUT and GET: never a 5xx."""
    check(
        send(blobs.port, "PUT", f"/results/{segment}{query}", body, headers, framing=framing),
        framing,
        blobs.url,
        faults,
    )
    check(send(blobs.port, "GET", f"/results/{segment}"), "exact", blobs.url, faults)


METHODS = st.one_of(
    st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE"]),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=8),
)


@FUZZ
@given(
    server=st.sampled_from(["node", "worker", "blobs"]),
    method=METHODS,
    path=st.one_of(
        st.sampled_from(["/metrics", "/health"]),
        st.tuples(st.sampled_from(["/metrics", "/health"]), SEGMENT).map(
            lambda p: f"{p[0]}?{p[1]}"
        ),
        st.tuples(st.sampled_from(["/metrics", "/health"]), SEGMENT).map(
            lambda p: f"{p[0]}/{p[1]}"
        ),
        SEGMENT.map(lambda s: f"/{s}/metrics"),
    ),
    headers=HEADERS,
    body=st.binary(max_size=64),
)
def test_fuzz__metrics_and_health(
    node: Node,
    worker: Worker,
    blobs: BlobServer,
    faults: list[logging.LogRecord],
    server: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    """Fuzzed methods, queries and headers on /metrics and /health of every server: never a
    5xx, the server stays healthy."""
    srv = {"node": node.server, "worker": worker.server, "blobs": blobs}[server]
    check(send(srv.port, method, path, body, headers), "exact", srv.url, faults)
