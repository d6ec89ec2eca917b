"""The HTTP layer of the worker, the oracle node and the blob store: ``aiohttp.web`` on an
event loop of its own, in a daemon thread beside the service's synchronous loop.

What every endpoint gets from here:

* **Limits before buffering.** A JSON body is refused with ``413`` from its declared
  ``Content-Length`` before a byte of it is read, and a chunked one as soon as it grows past
  ``max_body`` (aiohttp's ``client_max_size``); a route that takes large bodies (a blob
  ``PUT``) streams them itself. Request lines and headers are bounded by aiohttp. A body that
  stalls (no byte for ``body_timeout`` seconds, or a chunked framing that breaks, which aiohttp
  leaves waiting) is a ``408``: nobody holds a connection slot by sending half a request.
* **A bounded number of connections.** Past ``max_connections`` open connections a new one is
  answered ``503`` and closed at once; idle keep-alive connections close after
  ``keepalive_timeout`` seconds.
* **Typed bodies.** :func:`decode_json` decodes a body with ``msgspec`` straight into a typed
  struct: a wrong type, a missing field or an integer out of range is a ``400`` whose message
  names the field (``Expected `int` <= 9223372036854775807 - at `$.items[0].job_id```), and
  nesting deeper than the schema fails at its first extra level (no recursion to exhaust).
* **Plain-text errors, never a stack.** Every error is ``text/plain``, one line; a handler that
  raises is logged and answered ``500 internal error`` while the server goes on (unless the
  request's body broke off, the client hanging up: that is a ``400``, not logged). Request
  bodies are never decompressed (a ``Content-Encoding`` is not undone).
* **Blocking work off the loop.** :func:`blocking` runs a synchronous function (SQLite, numpy,
  signing) on the server's thread pool, so a slow request never stalls the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self, TypeVar

import msgspec
from aiohttp import web

from oracle.infra.logs import event
from oracle.infra.metrics import CONTENT_TYPE, Metrics

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_CONNECTIONS",
    "INT64_MAX",
    "WebServer",
    "blocking",
    "body_chunks",
    "decode_json",
    "error",
    "json_response",
    "metrics_response",
    "path_int",
    "read_body",
    "text",
]

log = logging.getLogger("pouw.http")

T = TypeVar("T")

#: Largest JSON body an endpoint reads (a /sign proposal of 128 attestations is ~40 KB).
DEFAULT_MAX_BODY = 1 << 20
#: Connections served at once; more are answered 503 and closed.
DEFAULT_MAX_CONNECTIONS = 128
#: Seconds a request body may go without a byte before it is answered 408.
DEFAULT_BODY_TIMEOUT = 15.0
#: Largest integer SQLite stores (ids and timestamps above it are refused, not overflowed).
INT64_MAX = 2**63 - 1

_EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
_BODY_TIMEOUT = web.AppKey("body_timeout", float)
_BUSY_BODY = b"too many connections\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


def text(status: int, body: str) -> web.Response:
    """A one-line plain-text answer."""
    return web.Response(status=status, text=body.rstrip("\n") + "\n", content_type="text/plain")


def error(status: int, message: str) -> web.HTTPException:
    """An HTTP error to raise, with a plain-text one-line body."""
    exc = web.HTTPException(text=message.rstrip("\n") + "\n", content_type="text/plain")
    exc.set_status(status)
    return exc


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` encoded with msgspec as ``application/json``."""
    return web.Response(
        status=status, body=msgspec.json.encode(data), content_type="application/json"
    )


async def body_chunks(request: web.Request, size: int = 1 << 16) -> AsyncIterator[bytes]:
    """The request's body in chunks of at most ``size`` bytes; 408 once no byte has come for
    the server's ``body_timeout`` seconds."""
    timeout = request.app[_BODY_TIMEOUT]
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await request.content.read(size)
        except TimeoutError:
            raise error(408, f"request body stalled for {timeout:g} s") from None
        if not chunk:
            return
        yield chunk


async def read_body(request: web.Request) -> bytes:
    """The request's whole body; 413 if it is larger than the app's ``client_max_size``
    (declared, or as soon as it grows past it), 408 if it stalls (:func:`body_chunks`)."""
    limit = request.client_max_size
    declared = request.content_length
    if declared is not None and declared > limit:
        raise error(413, f"body of {declared} bytes above the limit of {limit}")
    body = bytearray()
    async for chunk in body_chunks(request):
        body += chunk
        if len(body) > limit:
            raise error(413, f"body above the limit of {limit} bytes")
    return bytes(body)


async def decode_json(request: web.Request, schema: type[T]) -> T:
    """The request's JSON body (:func:`read_body`) decoded into ``schema``; 400 naming the
    field if it does not fit."""
    body = await read_body(request)
    try:
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as exc:
        raise error(400, f"bad request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise error(400, f"bad request: not JSON ({exc})") from None


def path_int(request: web.Request, key: str, upper: int = INT64_MAX) -> int:
    """The path parameter ``key`` as an integer in ``[0, upper]``; 400 otherwise."""
    raw = request.match_info[key]
    # ASCII only: str.isdigit() also takes "²" (which int() refuses) and "７" (which it takes).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 80 or int(raw) > upper:
        raise error(400, f"{key} must be an integer from 0 to {upper}")
    return int(raw)


async def blocking(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on the server's thread pool and return its value."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[_EXECUTOR], fn, *args)


async def metrics_response(request: web.Request, metrics: Metrics) -> web.Response:
    """``GET /metrics``: ``metrics`` in the Prometheus text format (rendered off the loop)."""
    body = await blocking(request, metrics.render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status in (408, 413):
            exc.force_close()  # the rest of the body is never read
        if exc.content_type != "text/plain":  # aiohttp's own 404/405/413 pages
            reason = exc.reason if exc.status != 413 else "body too large"
            plain = text(exc.status, f"{exc.status}: {reason}")
            for name in ("Allow",):
                if name in exc.headers:
                    plain.headers[name] = exc.headers[name]
            if exc.status in (408, 413):
                plain.force_close()
            return plain
        raise
    except Exception as exc:  # one bad request never stops the server; the cause is logged
        if request.content.exception() is not None:
            # The body broke off (the client hung up, or its chunked framing broke): the
            # client's failure, not the server's; answered 400 in case it still listens.
            return text(400, "request body incomplete or malformed")
        event(
            log,
            "http_error",
            logging.ERROR,
            method=request.method,
            path=request.path[:200],
            error=f"{type(exc).__name__}: {exc}"[:500],
        )
        return text(500, "internal error")


class _Busy(asyncio.Protocol):
    """Answers a connection over the limit with 503 and closes it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class WebServer:
    """Serve ``routes`` on a daemon thread; ``port=0`` picks a free port (see :attr:`url`).
    Usable as a context manager."""

    def __init__(
        self,
        routes: list[web.RouteDef],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        threads: int = 8,
        keepalive_timeout: float = 15.0,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self.app = web.Application(client_max_size=max_body, middlewares=[_errors])
        self.app.add_routes(routes)
        self.app[_EXECUTOR] = ThreadPoolExecutor(threads, thread_name_prefix="http")
        self.app[_BODY_TIMEOUT] = body_timeout
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.keepalive_timeout = keepalive_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host}:{self.port}"

    async def _start(self) -> None:
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.keepalive_timeout,
            # Bodies are taken as sent: no client of ours compresses one, and a body that does
            # not inflate would fail inside aiohttp (a traceback logged, "install Brotli" sent).
            auto_decompress=False,
        )
        await runner.setup()
        handlers = runner.server
        assert handlers is not None

        def factory() -> asyncio.Protocol:
            if len(handlers.connections) >= self.max_connections:
                return _Busy()
            return handlers()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            factory, self.host, self.port, reuse_address=True, backlog=self.max_connections
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._runner = runner

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> Self:
        """Bind and serve on a daemon thread; returns once the port is bound (raises what
        binding raised, e.g. an OSError for a port in use)."""
        loop = asyncio.new_event_loop()
        started: asyncio.Future[None] = loop.create_future()

        async def main() -> None:
            try:
                await self._start()
            except BaseException as exc:
                started.set_exception(exc)
                return
            started.set_result(None)

        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            exc = started.exception()
            if exc is not None:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop())
            # Handlers of connections cut by the stop (idle keep-alives): end them here, so
            # none is destroyed pending when the loop closes.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="http-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving: close the socket and every connection, end the thread."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self.app[_EXECUTOR].shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
