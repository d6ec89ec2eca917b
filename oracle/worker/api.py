"""The worker's HTTP API: its committed results, served to oracles and auditors.

* ``GET /results/<job>/<worker>/<commitment>`` — a manifest: ``{"blob", "root"}``;
* ``GET /results/<job>/<worker>/<commitment>/answer?seed=0x…`` — the sampled-mode answer;
* ``GET /blobs/<name>`` — a result blob;
* ``POST /results`` — many results (or sampled answers) in one :mod:`oracle.protocol.bundle`,
  so an oracle needs one round trip per batch, not two per job;
* ``GET /metrics`` (Prometheus text) and ``GET /health``.

Only results whose commitment is mined are served (a result served earlier could be copied
into another worker's commitment). Bodies are decoded into the typed messages below; see
:mod:`oracle.infra.web` for the limits every route has.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from aiohttp import web

from oracle.compute.kinds.base import BlobSource
from oracle.compute.work import answer_challenge
from oracle.exceptions import BlobNameError
from oracle.infra.metrics import Metrics
from oracle.infra.web import (
    INT64_MAX,
    blocking,
    decode_json,
    error,
    json_response,
    metrics_response,
    path_int,
    text,
)
from oracle.protocol.bundle import encode_bundle
from oracle.protocol.results import decode_result
from oracle.store.blobs import LocalBlobStore, check_name
from oracle.store.specs import SpecStore
from oracle.worker.db import WorkerDB

__all__ = ["MAX_BUNDLE_BYTES", "MAX_BUNDLE_ITEMS", "ResultsRequest", "WorkerApi"]

#: Limits of one ``POST /results`` bundle: items asked for, and payload bytes served (items
#: beyond it are answered with an error and fetched one by one).
MAX_BUNDLE_ITEMS = 256
MAX_BUNDLE_BYTES = 64 << 20

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}\Z")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
Hex32 = Annotated[str, msgspec.Meta(pattern=_HEX32.pattern)]


class ResultItem(msgspec.Struct, forbid_unknown_fields=True):
    """One result asked for: a job and a commitment, with a seed for a sampled answer."""

    job_id: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
    commitment: Hex32
    seed: Hex32 | None = None


class ResultsRequest(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /results``."""

    items: Annotated[list[ResultItem], msgspec.Meta(min_length=1, max_length=MAX_BUNDLE_ITEMS)]


class WorkerApi:
    """The route handlers over the worker's state (its address, database, blob and spec store)."""

    def __init__(
        self,
        address: str,
        db: WorkerDB,
        store: LocalBlobStore,
        specs: SpecStore,
        metrics: Metrics | None = None,
        inputs: BlobSource | None = None,
    ) -> None:
        self.address = address
        self.db = db
        self.store = store
        self.specs = specs
        self.metrics = metrics
        self.inputs = inputs  # the job stores: an llm answer may need the model again

    def routes(self) -> list[web.RouteDef]:
        """The routes, bound to the handlers as they are now (tests may wrap a handler first)."""
        result = "/results/{job_id}/{worker}/{commitment}"
        return [
            web.get(result, self.manifest),
            web.get(result + "/answer", self.answer),
            web.get("/blobs/{name}", self.blob),
            web.post("/results", self.bundle),
            web.get("/metrics", self.handle_metrics),
            web.get("/health", self.handle_health),
        ]

    async def handle_health(self, _req: web.Request) -> web.Response:
        return text(200, "ok")

    async def handle_metrics(self, req: web.Request) -> web.Response:
        """Prometheus text format of the worker's metrics."""
        if self.metrics is None:
            raise error(404, "no metrics")
        return await metrics_response(req, self.metrics)

    def _path(self, req: web.Request) -> tuple[int, str, bytes]:
        jid = path_int(req, "job_id")
        worker, c = req.match_info["worker"], req.match_info["commitment"]
        if not _ADDRESS.match(worker):
            raise error(400, "worker must be a 0x-prefixed 20-byte hex address")
        if not _HEX32.match(c):
            raise error(400, "commitment must be 0x and 64 hex digits")
        return jid, worker, bytes.fromhex(c[2:])

    def committed(self, jid: int, worker: str, c: bytes) -> tuple[int, str, bytes] | None:
        """(job, blob, root) of this worker's mined commitment ``c`` on job ``jid``."""
        if worker.lower() != self.address.lower():
            return None
        found = self.db.committed_blob(jid, c)
        return None if found is None else (jid, found[0], found[1])

    async def manifest(self, req: web.Request) -> web.Response:
        found = await blocking(req, self.committed, *self._path(req))
        if found is None:
            raise error(404, "no committed result")
        return json_response({"blob": found[1], "root": "0x" + found[2].hex()})

    async def answer(self, req: web.Request) -> web.Response:
        key = self._path(req)
        seed_hex = req.query.get("seed", "")
        if not _HEX32.match(seed_hex):
            raise error(400, "seed must be 0x and 64 hex digits")
        found = await blocking(req, self.committed, *key)
        if found is None:
            raise error(404, "no committed result")
        seed = bytes.fromhex(seed_hex[2:])
        payload = await blocking(req, self.answer_bytes, found[0], found[1], seed)
        return web.Response(body=payload, content_type="application/octet-stream")

    def answer_bytes(self, job_id: int, blob: str, seed: bytes) -> bytes:
        spec_hash = self.db.spec_hash(job_id)
        if spec_hash is None:
            raise KeyError(f"job {job_id} not recorded")
        spec = self.specs.get(spec_hash)
        result = decode_result(spec, self.store.get(blob))
        return answer_challenge(spec, result, seed, store=self.inputs)

    async def bundle(self, req: web.Request) -> web.Response:
        """``POST /results`` ``{"items": [{"job_id", "commitment", "seed"?}, …]}``: each
        committed result's blob (or, with a seed, its sampled-mode answer) in one bundle;
        an item not served carries an ``error`` field and an empty payload."""
        request = await decode_json(req, ResultsRequest)
        body = await blocking(req, self.bundle_bytes, request)
        return web.Response(body=body, content_type="application/octet-stream")

    def bundle_bytes(self, request: ResultsRequest) -> bytes:
        """The bundle answering ``request``."""
        entries: list[tuple[dict[str, Any], bytes]] = []
        total = 0
        for item in request.items:
            jid, c = item.job_id, bytes.fromhex(item.commitment[2:])
            fields: dict[str, Any] = {"job_id": jid, "commitment": "0x" + c.hex()}
            found = self.db.committed_blob(jid, c)
            if found is None:
                entries.append(({**fields, "error": "no committed result"}, b""))
                continue
            if total >= MAX_BUNDLE_BYTES:
                entries.append(({**fields, "error": "bundle full: ask again"}, b""))
                continue
            blob, root = found
            try:
                payload = (
                    self.store.get(blob)
                    if item.seed is None
                    else self.answer_bytes(jid, blob, bytes.fromhex(item.seed[2:]))
                )
            except Exception as exc:  # one item's failure is that item's answer, not the bundle's
                entries.append(({**fields, "error": f"{type(exc).__name__}: {exc}"}, b""))
                continue
            total += len(payload)
            entries.append(({**fields, "blob": blob, "root": "0x" + root.hex()}, payload))
        return encode_bundle(entries)

    async def blob(self, req: web.Request) -> web.Response:
        try:
            name = check_name(req.match_info["name"])
        except BlobNameError:
            raise error(400, "bad blob name: 64 hex digits") from None
        if not await blocking(req, self.db.served_blob, name):
            raise error(404, "no such blob")
        data = await blocking(req, self.store.get, name)
        return web.Response(body=data, content_type="application/octet-stream")
