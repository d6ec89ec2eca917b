"""A worker started before its oracles still gets its endpoint to them (found by running the
README walk-through: oracles that came up a moment later never learned the worker's URL)."""

from __future__ import annotations

import json

from aiohttp import web

from oracle.chain.anvil import free_port
from oracle.chain.client import Chain
from oracle.infra.web import WebServer
from oracle.worker.service import Worker, WorkerConfig
from tests.e2e.conftest import wait_until


def test_worker__oracle_up_late__announcement_retried_until_it_lands(
    anvil, deploy, keys, tmp_path, spec_server
):
    rec = deploy(1, 1)
    port = free_port()
    late_oracle = f"http://127.0.0.1:{port}"
    cfg = WorkerConfig(
        rpc_url=anvil.url,
        db_path=str(tmp_path / "w.db"),
        store_dir=str(tmp_path / "blobs"),
        spec_stores=[spec_server.url],
        oracle_urls=[late_oracle],
        announce_retry=0.1,
    )
    worker = Worker(cfg, Chain(anvil.url, rec), keys["honest"])
    url = worker.start_server()  # the oracle is not listening yet: this announcement fails
    received: list[dict] = []

    async def workers(req: web.Request) -> web.Response:
        received.append(json.loads(await req.read()))
        return web.json_response({})

    server = WebServer([web.post("/workers", workers)], "127.0.0.1", port).start()
    try:

        def stepped_and_received() -> bool:
            worker.step()
            return bool(received)

        wait_until(stepped_and_received, timeout=20, every=0.2)
        assert received[0]["url"] == url
        # Once it landed, the next steps do not repeat it before announce_interval.
        for _ in range(3):
            worker.step()
        assert len(received) == 1
    finally:
        server.stop()
        worker.close()
