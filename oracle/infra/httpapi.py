"""A tiny threaded HTTP server with regex routes, for the worker's and the oracle's endpoints.

A route handler gets a :class:`Request` and returns ``(status, content_type, body)``. A
handler that raises is answered ``500`` with a one-line message and the server goes on;
request bodies above ``max_body`` bytes are refused with ``413`` before they are read.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["ApiServer", "Reply", "Request", "Route"]

Reply = tuple[int, str, bytes]


@dataclass(frozen=True)
class Request:
    """One parsed request."""

    method: str
    match: re.Match[str]
    query: dict[str, list[str]]
    body: bytes


Route = tuple[str, str, Callable[[Request], Reply]]


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that logs nothing and sends small replies at once."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm on, a keep-alive
    # client's delayed ACK holds the body back ~40 ms per request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Handler(QuietHandler):
    server: _Server

    def _send(self, status: int, ctype: str, body: bytes, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = b""
        length = self.headers.get("Content-Length")
        if length is not None:
            if not length.isdigit() or int(length) > self.server.max_body:
                self.close_connection = True
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "text/plain", b"too large\n")
                return
            body = self.rfile.read(int(length))
        for m, pattern, fn in self.server.routes:
            match = re.fullmatch(pattern, parts.path)
            if match is None or m != ("GET" if method == "HEAD" else method):
                continue
            try:
                status, ctype, out = fn(Request(method, match, parse_qs(parts.query), body))
            except Exception as exc:  # one bad request never stops the server
                status, ctype = HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain"
                out = f"error: {type(exc).__name__}: {exc}\n".encode()[:1000]
            self._send(status, ctype, out, head=method == "HEAD")
            return
        self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n", head=method == "HEAD")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: list[Route]
    max_body: int


class BackgroundServer:
    """A threading HTTP server on a daemon thread; ``port=0`` picks a free port (see
    :attr:`url`). Usable as a context manager."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self._httpd = httpd
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ApiServer(BackgroundServer):
    """Serve ``routes`` on a daemon thread; ``port=0`` picks a free port (see :attr:`url`)."""

    def __init__(
        self, routes: list[Route], host: str = "127.0.0.1", port: int = 0, max_body: int = 1 << 20
    ) -> None:
        httpd = _Server((host, port), _Handler)
        httpd.routes = routes
        httpd.max_body = max_body
        super().__init__(httpd)
