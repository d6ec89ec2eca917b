"""The store's HTTP server: content-addressed blobs (specs, inputs) and delivered results.

Routes (over :mod:`oracle.infra.web`: body limits, stalled-body timeouts, plain errors):

* ``GET``/``HEAD /blobs/<name>``; ``PUT /blobs/<name>`` (streamed to disk, kept only once its
  hash and size check); ``POST /blobs`` with ``{"names": [...]}`` (up to ``MAX_MULTI_NAMES``
  blobs in one :mod:`oracle.protocol.bundle`: a batch of specs in one round trip);
* ``PUT /results/<commitment>?worker=0x…&row_bytes=N`` (one result, streamed to disk, kept only
  if it opens the commitment); ``POST /results`` (a bundle of results with fields
  ``commitment``, ``worker``, ``row_bytes``; answers ``{"stored": [...], "refused": {c: why}}``);
  ``GET /results/<commitment>`` (headers ``X-Pouw-Worker``, ``X-Pouw-Row-Bytes``);
  ``POST /results/fetch`` with ``{"commitments": [...]}`` (a bundle); ``POST
  /results/<commitment>/rows`` with ``{"rows": [...]}`` (those rows back to back);
* ``GET /health``.

Delivered results are deleted ``result_retention`` seconds after they arrived (checked every
``expire_interval`` seconds); ``None`` keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web
from eth_utils import is_address

from oracle.exceptions import BlobHashMismatch, BlobNameError, BlobNotFound, BlobTooLarge, PeerError
from oracle.infra.web import (
    DEFAULT_BODY_TIMEOUT,
    WebServer,
    blocking,
    body_chunks,
    decode_json,
    error,
    text,
)
from oracle.protocol.bundle import decode_bundle, encode_bundle
from oracle.store.blobs import (
    MAX_MULTI_BYTES,
    BlobWriter,
    LocalBlobStore,
    NamesRequest,
    check_name,
)
from oracle.store.results import (
    CommitmentsRequest,
    LocalResultStore,
    ResultWriter,
    RowsRequest,
    StoredResult,
    check_result,
)

__all__ = ["BlobServer"]

_CHUNK = 1 << 20
#: The largest ``POST /results`` body: a bundle of small results (larger ones are PUT).
MAX_DELIVERY_BYTES = MAX_MULTI_BYTES + (1 << 20)


class BlobServer(WebServer):
    """Serve a :class:`LocalBlobStore` (and its results) over HTTP on a background thread.

    Use as a context manager; ``port=0`` picks a free port (see :attr:`url`).
    """

    def __init__(
        self,
        store: LocalBlobStore,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        result_retention: float | None = None,
        expire_interval: float = 3_600.0,
    ) -> None:
        self.store = store
        self.results = LocalResultStore(store.root, max_size=store.max_size)
        self.result_retention = result_retention
        self.expire_interval = expire_interval
        super().__init__(
            [
                web.get("/blobs/{name}", self._get),
                web.put("/blobs/{name}", self._put),
                web.post("/blobs", self._post),
                web.post("/results", self._deliver),
                web.post("/results/fetch", self._fetch_results),
                web.get("/results/{c}", self._get_result),
                web.put("/results/{c}", self._put_result),
                web.post("/results/{c}/rows", self._rows),
                web.get("/health", self._health),
            ],
            host,
            port,
            body_timeout=body_timeout,
        )
        if result_retention is not None:
            self.app.cleanup_ctx.append(self._expiry)

    async def _expiry(self, _app: web.Application) -> Any:
        retention = self.result_retention
        assert retention is not None

        async def loop() -> None:
            while True:
                await asyncio.to_thread(self.results.expire, retention)
                await asyncio.sleep(self.expire_interval)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @staticmethod
    def _name(req: web.Request, key: str = "name") -> str:
        try:
            return check_name(req.match_info[key])
        except BlobNameError:
            raise error(
                400, f"bad {'blob name' if key == 'name' else 'commitment'}: 64 hex digits"
            ) from None

    async def _health(self, _req: web.Request) -> web.Response:
        return text(200, "ok")

    # -- blobs ---------------------------------------------------------------------------

    async def _get(self, req: web.Request) -> web.StreamResponse:
        path = self.store.path(self._name(req))
        if not path.is_file():
            raise error(404, "no such blob")
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    def _declared_size(self, req: web.Request) -> None:
        declared = req.content_length
        if declared is None and "chunked" not in req.headers.get("Transfer-Encoding", ""):
            raise error(411, "content-length required")
        if declared is not None and declared > self.store.max_size:
            raise error(413, f"body of {declared} bytes above the limit of {self.store.max_size}")

    async def _put(self, req: web.Request) -> web.Response:
        name = self._name(req)
        self._declared_size(req)
        if self.store.has(name):
            resp = text(201, "stored")
            resp.force_close()  # the body is not read
            return resp
        writer = await blocking(req, BlobWriter, self.store, name)
        try:
            async for chunk in body_chunks(req, _CHUNK):
                writer.write(chunk)
            await blocking(req, writer.commit)
        except BlobTooLarge as exc:
            raise error(413, str(exc)) from None
        except BlobHashMismatch as exc:
            raise error(400, f"hash mismatch: {exc}") from None
        except BaseException:
            writer.abort()
            raise
        return text(201, "stored")

    async def _post(self, req: web.Request) -> web.Response:
        names = [check_name(n) for n in (await decode_json(req, NamesRequest)).names]
        body = await blocking(req, self._bundle, names)
        return web.Response(body=body, content_type="application/octet-stream")

    def _bundle(self, names: list[str]) -> bytes:
        def blob(name: str) -> tuple[dict[str, Any], bytes]:
            return {}, self.store.get(name)

        return _bundle_of(names, "name", blob, "no such blob")

    # -- results -------------------------------------------------------------------------

    @staticmethod
    def _worker(value: object) -> str:
        if not isinstance(value, str) or not is_address(value) or not value.startswith("0x"):
            raise error(400, "worker must be a 0x-prefixed address")
        return value

    @staticmethod
    def _row_bytes(value: object) -> int:
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
            value = int(value)
        if type(value) is not int or not 0 < value <= 1 << 32:
            raise error(400, "row_bytes must be a positive integer")
        return value

    async def _put_result(self, req: web.Request) -> web.Response:
        c = bytes.fromhex(self._name(req, "c"))
        worker = self._worker(req.query.get("worker"))
        row_bytes = self._row_bytes(req.query.get("row_bytes"))
        self._declared_size(req)
        if self.results.has(c):
            resp = text(201, "stored")
            resp.force_close()
            return resp
        writer = await blocking(req, ResultWriter, self.results, c, worker, row_bytes)
        try:
            async for chunk in body_chunks(req, _CHUNK):
                writer.write(chunk)
            await blocking(req, writer.commit)
        except BlobTooLarge as exc:
            raise error(413, str(exc)) from None
        except BlobHashMismatch as exc:
            raise error(400, str(exc)) from None
        except BaseException:
            writer.abort()
            raise
        return text(201, "stored")

    async def _deliver(self, req: web.Request) -> web.Response:
        declared = req.content_length
        if declared is not None and declared > MAX_DELIVERY_BYTES:
            raise error(413, f"body of {declared} bytes above {MAX_DELIVERY_BYTES}: PUT each")
        body = bytearray()
        async for chunk in body_chunks(req, _CHUNK):
            body += chunk
            if len(body) > MAX_DELIVERY_BYTES:
                raise error(413, f"body above {MAX_DELIVERY_BYTES} bytes: PUT each")
        try:
            entries = decode_bundle(body)
        except PeerError as exc:
            raise error(400, f"bad bundle: {exc}") from None
        results: list[StoredResult] = []
        refused: dict[str, str] = {}
        for fields, data in entries:
            name = fields.get("commitment")
            try:
                c = bytes.fromhex(check_name(str(name)))
                results.append(
                    StoredResult(
                        c,
                        self._worker(fields.get("worker")),
                        self._row_bytes(fields.get("row_bytes")),
                        data,
                    )
                )
            except (BlobNameError, web.HTTPException) as exc:
                refused[str(name)] = getattr(exc, "text", None) or str(exc)
        stored = await blocking(req, self._keep, results, refused)
        return web.json_response({"stored": stored, "refused": refused})

    def _keep(self, results: list[StoredResult], refused: dict[str, str]) -> list[str]:
        good = []
        for r in results:  # each checked alone: one bad result refuses only itself
            try:
                check_result(r.commitment, r.worker, r.row_bytes, r.data)
                good.append(r)
            except BlobHashMismatch as exc:
                refused[r.commitment.hex()] = str(exc)
        self.results.put_many(good)
        return [r.commitment.hex() for r in good]

    async def _get_result(self, req: web.Request) -> web.StreamResponse:
        c = self._name(req, "c")
        try:
            path, offset, size, worker, row_bytes = await blocking(req, self.results.open_range, c)
        except BlobNotFound:
            raise error(404, "no such result") from None
        resp = web.StreamResponse(
            headers={
                "Content-Type": "application/octet-stream",
                "X-Pouw-Worker": worker,
                "X-Pouw-Row-Bytes": str(row_bytes),
            }
        )
        resp.content_length = size
        try:
            fh = await blocking(req, path.open, "rb")
        except FileNotFoundError:  # expired between the lookup and the read
            raise error(404, "no such result") from None
        try:
            await resp.prepare(req)
            pos = 0
            while pos < size:
                n = min(_CHUNK * 4, size - pos)
                chunk = await blocking(req, os.pread, fh.fileno(), n, offset + pos)
                if not chunk:
                    break
                await resp.write(chunk)
                pos += len(chunk)
        finally:
            fh.close()
        await resp.write_eof()
        return resp

    async def _fetch_results(self, req: web.Request) -> web.Response:
        names = [check_name(c) for c in (await decode_json(req, CommitmentsRequest)).commitments]
        body = await blocking(req, self._result_bundle, names)
        return web.Response(body=body, content_type="application/octet-stream")

    def _result_bundle(self, names: list[str]) -> bytes:
        def result(name: str) -> tuple[dict[str, Any], bytes]:
            r = self.results.get(name)
            return {"worker": r.worker, "row_bytes": r.row_bytes}, bytes(r.data)

        return _bundle_of(names, "commitment", result, "no such result")

    async def _rows(self, req: web.Request) -> web.Response:
        c = self._name(req, "c")
        wanted = (await decode_json(req, RowsRequest)).rows
        try:
            rows = await blocking(req, self.results.rows, c, wanted)
        except BlobNotFound:
            raise error(404, "no such result") from None
        except IndexError as exc:
            raise error(400, str(exc)) from None
        return web.Response(body=b"".join(rows), content_type="application/octet-stream")


def _bundle_of(
    names: list[str],
    key: str,
    fetch: Callable[[str], tuple[dict[str, Any], bytes]],
    missing: str,
) -> bytes:
    """A bundle of what ``fetch`` returns for each name, under ``key``: a name not found is an
    error entry, and once ``MAX_MULTI_BYTES`` of payload is in, the rest are "ask again"."""
    entries: list[tuple[dict[str, Any], bytes]] = []
    total = 0
    for name in names:
        if total >= MAX_MULTI_BYTES:
            entries.append(({key: name, "error": "bundle full: ask again"}, b""))
            continue
        try:
            fields, data = fetch(name)
        except BlobNotFound:
            entries.append(({key: name, "error": missing}, b""))
            continue
        total += len(data)
        entries.append(({key: name, **fields}, data))
    return encode_bundle(entries)
