"""The worker's HTTP API: its committed results, served to oracles and auditors.

* ``GET /results/<job>/<worker>/<commitment>`` — a manifest: ``{"blob", "root"}``;
* ``GET /results/<job>/<worker>/<commitment>/answer?seed=0x…`` — the sampled-mode answer;
* ``GET /blobs/<name>`` — a result blob;
* ``POST /results`` — many results (or sampled answers) in one :mod:`oracle.protocol.bundle`,
  so an oracle needs one round trip per batch, not two per job;
* ``GET /health``.

Only results whose commitment is mined are served (a result served earlier could be copied
into another worker's commitment).
"""

from __future__ import annotations

import json
from typing import Any

from oracle.compute.work import answer_challenge
from oracle.exceptions import BlobNameError
from oracle.infra.httpapi import Reply, Request, Route
from oracle.protocol.bundle import encode_bundle
from oracle.protocol.results import decode_result
from oracle.store.blobs import LocalBlobStore, check_name
from oracle.store.specs import SpecStore
from oracle.worker.db import WorkerDB

__all__ = ["MAX_BUNDLE_BYTES", "MAX_BUNDLE_ITEMS", "WorkerApi"]

#: Limits of one ``POST /results`` bundle: items asked for, and payload bytes served (items
#: beyond it are answered with an error and fetched one by one).
MAX_BUNDLE_ITEMS = 256
MAX_BUNDLE_BYTES = 64 << 20


class WorkerApi:
    """The route handlers over the worker's state (its address, database, blob and spec store)."""

    def __init__(self, address: str, db: WorkerDB, store: LocalBlobStore, specs: SpecStore) -> None:
        self.address = address
        self.db = db
        self.store = store
        self.specs = specs

    def routes(self) -> list[Route]:
        """The routes, bound to the handlers as they are now (tests may wrap a handler first)."""
        return [
            ("GET", r"/results/(\d+)/(0x[0-9a-fA-F]{40})/(0x[0-9a-f]{64})", self.manifest),
            ("GET", r"/results/(\d+)/(0x[0-9a-fA-F]{40})/(0x[0-9a-f]{64})/answer", self.answer),
            ("GET", r"/blobs/([^/]+)", self.blob),
            ("POST", r"/results", self.bundle),
            ("GET", r"/health", lambda _r: (200, "text/plain", b"ok\n")),
        ]

    def _committed(self, req: Request) -> tuple[int, str, bytes] | None:
        jid, worker, c = int(req.match[1]), req.match[2], bytes.fromhex(req.match[3][2:])
        if worker.lower() != self.address.lower():
            return None
        found = self.db.committed_blob(jid, c)
        return None if found is None else (jid, found[0], found[1])

    def manifest(self, req: Request) -> Reply:
        found = self._committed(req)
        if found is None:
            return 404, "text/plain", b"no committed result\n"
        body = {"blob": found[1], "root": "0x" + found[2].hex()}
        return 200, "application/json", json.dumps(body).encode()

    def answer(self, req: Request) -> Reply:
        found = self._committed(req)
        if found is None:
            return 404, "text/plain", b"no committed result\n"
        seed = bytes.fromhex(req.query.get("seed", [""])[0].removeprefix("0x"))
        if len(seed) != 32:
            return 400, "text/plain", b"seed must be 32 bytes\n"
        return 200, "application/octet-stream", self.answer_bytes(found[0], found[1], seed)

    def answer_bytes(self, job_id: int, blob: str, seed: bytes) -> bytes:
        spec_hash = self.db.spec_hash(job_id)
        if spec_hash is None:
            raise KeyError(f"job {job_id} not recorded")
        spec = self.specs.get(spec_hash)
        return answer_challenge(spec, decode_result(spec, self.store.get(blob)), seed)

    def bundle(self, req: Request) -> Reply:
        """``POST /results`` ``{"items": [{"job_id", "commitment", "seed"?}, …]}``: each
        committed result's blob (or, with a seed, its sampled-mode answer) in one bundle;
        an item not served carries an ``error`` field and an empty payload."""
        try:
            items = [
                (
                    int(x["job_id"]),
                    _hex32(x["commitment"]),
                    None if x.get("seed") is None else _hex32(x["seed"]),
                )
                for x in json.loads(req.body)["items"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            return 400, "text/plain", f"bad request: {exc}\n".encode()
        if not 0 < len(items) <= MAX_BUNDLE_ITEMS:
            return 400, "text/plain", f"bad request: 1 to {MAX_BUNDLE_ITEMS} items\n".encode()
        entries: list[tuple[dict[str, Any], bytes]] = []
        total = 0
        for jid, c, seed in items:
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
                    self.store.get(blob) if seed is None else self.answer_bytes(jid, blob, seed)
                )
            except Exception as exc:  # one item's failure is that item's answer, not the bundle's
                entries.append(({**fields, "error": f"{type(exc).__name__}: {exc}"}, b""))
                continue
            total += len(payload)
            entries.append(({**fields, "blob": blob, "root": "0x" + root.hex()}, payload))
        return 200, "application/octet-stream", encode_bundle(entries)

    def blob(self, req: Request) -> Reply:
        try:
            name = check_name(req.match[1])
        except BlobNameError:
            return 400, "text/plain", b"bad blob name\n"
        if not self.db.served_blob(name):
            return 404, "text/plain", b"no such blob\n"
        return 200, "application/octet-stream", self.store.get(name)


def _hex32(value: object) -> bytes:
    raw = bytes.fromhex(str(value).removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError("commitment and seed must be 32 bytes")
    return raw
