"""Delivered results (oracle.store.results): kept under their commitment only if the bytes open
it, read back by commitment (one, many, some rows) from a directory or over HTTP, a copy that
does not check skipped for the next store, and deleted after the retention period."""

from __future__ import annotations

import gzip
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import requests

from oracle.compute.merkle import chunks_per_row, merkle_root
from oracle.exceptions import BlobHashMismatch, BlobNotFound, BlobTooLarge, BlobTransferError
from oracle.protocol.commitment import commitment
from oracle.store.blobs import LocalBlobStore
from oracle.store.results import (
    HttpResultClient,
    LocalResultStore,
    ResultStores,
    StoredResult,
    check_result,
)
from oracle.store.server import BlobServer

WORKER = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


def result(seed: int, rows: int = 8, cols: int = 5, worker: str = WORKER) -> StoredResult:
    data = np.random.default_rng(seed).integers(-9, 9, (rows, cols)).astype("<i4").tobytes()
    root = merkle_root(data, rows * chunks_per_row(cols, 4))  # the result tree's leaves
    return StoredResult(commitment(worker, root), worker, cols * 4, data)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BlobServer]:
    with BlobServer(LocalBlobStore(tmp_path / "srv")) as srv:
        yield srv


def test_check_result__binds_bytes_worker_and_row_width() -> None:
    r = result(1)
    check_result(r.commitment, r.worker, r.row_bytes, r.data)
    flipped = bytearray(r.data)
    flipped[-1] ^= 1
    for worker, row_bytes, data in [
        (OTHER, r.row_bytes, r.data),  # another worker's address: another commitment
        (r.worker, r.row_bytes, bytes(flipped)),  # one bit of one entry
        (r.worker, 2 * r.row_bytes, r.data),  # the same bytes cut into other rows
        (r.worker, 7, r.data),  # rows that do not divide the bytes
    ]:
        with pytest.raises(BlobHashMismatch):
            check_result(r.commitment, worker, row_bytes, data)


def test_local__put_get_rows_and_refuse_a_mismatch(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path)
    good, bad = result(1), result(2)
    store.put_many([good])
    got = store.get(good.commitment)
    assert (got.data, got.row_bytes) == (good.data, good.row_bytes)
    assert got.worker.lower() == WORKER
    assert store.rows(good.commitment, [7, 0]) == [good.data[7 * 20 :], good.data[:20]]
    forged = StoredResult(good.commitment, WORKER, bad.row_bytes, bad.data)
    with pytest.raises(BlobHashMismatch):
        store.put_many([result(3), forged])  # one bad result: nothing of the call is kept
    assert not store.has(result(3).commitment)
    with pytest.raises(BlobNotFound):
        store.get(bad.commitment)
    with pytest.raises(IndexError):
        store.rows(good.commitment, [8])


def test_http__deliver_bundle_and_put__read_back_many_one_and_rows(server: BlobServer) -> None:
    client = HttpResultClient(server.url)
    small = [result(i) for i in range(5)]
    big = result(9, rows=3, cols=(9 << 20) // 12)  # above half a bundle: PUT alone
    stored, refused = client.put_many([*small, big])
    assert set(stored) == {r.commitment for r in [*small, big]} and refused == {}
    many = client.get_many([r.commitment for r in small] + [result(99).commitment], 1 << 20)
    assert {c: m.data for c, m in many.items()} == {r.commitment: r.data for r in small}
    one = client.get(big.commitment)
    check_result(one.commitment, one.worker, one.row_bytes, one.data)
    assert one.data == big.data
    assert client.rows(small[0].commitment, [3, 1], 20) == [
        small[0].data[60:80],
        small[0].data[20:40],
    ]
    with pytest.raises(BlobNotFound):
        client.get(result(99).commitment)


def test_http__a_result_that_does_not_open_its_commitment_is_refused(server: BlobServer) -> None:
    good, bad = result(1), result(2)
    url = f"{server.url}/results/{good.commitment.hex()}"
    resp = requests.put(url, params={"worker": WORKER, "row_bytes": "20"}, data=bad.data, timeout=5)
    assert resp.status_code == 400 and "do not open the commitment" in resp.text
    resp = requests.put(url, params={"worker": "nobody", "row_bytes": "20"}, data=b"x", timeout=5)
    assert resp.status_code == 400 and "worker must be" in resp.text
    forged = StoredResult(good.commitment, WORKER, 20, bad.data)
    stored, refused = HttpResultClient(server.url).put_many([forged, result(3)])
    assert stored == [result(3).commitment]  # the bundle keeps the good one only
    assert list(refused) == [good.commitment.hex()]
    assert "do not open the commitment" in refused[good.commitment.hex()]
    assert not server.results.has(good.commitment)
    assert not any(p.name.startswith(".tmp-") for p in server.results.root.rglob("*"))


def test_stores__a_copy_that_does_not_check_is_skipped_for_the_next(
    tmp_path: Path, server: BlobServer
) -> None:
    good = result(1)
    liar = LocalResultStore(tmp_path / "liar")
    liar.put(good)
    path, offset, size, _, _ = liar.open_range(good.commitment)  # corrupt it behind its back
    with path.open("r+b") as fh:
        os.pwrite(fh.fileno(), b"\0" * size, offset)
    HttpResultClient(server.url).put_many([good])
    stores = ResultStores([str(tmp_path / "liar"), server.url])
    assert stores.fetch(good.commitment, 1 << 20).data == good.data
    assert stores.fetch_many([good.commitment], 1 << 20)[good.commitment].data == good.data
    only_liar = ResultStores([str(tmp_path / "liar")])
    with pytest.raises(BlobHashMismatch, match="do not open the commitment"):
        only_liar.fetch(good.commitment, 1 << 20)
    assert only_liar.fetch_many([good.commitment], 1 << 20) == {}
    with pytest.raises(BlobNotFound):
        ResultStores([server.url]).fetch(result(5).commitment, 1 << 20)
    with pytest.raises(BlobTransferError):
        ResultStores(["http://127.0.0.1:9"]).fetch(good.commitment, 1 << 20)


def test_stores__deliver_reports_a_store_that_is_down_and_each_refusal(
    tmp_path: Path, server: BlobServer
) -> None:
    good, other = result(4), result(5)
    forged = StoredResult(other.commitment, WORKER, good.row_bytes, good.data)
    stores = ResultStores([str(tmp_path / "up"), "http://127.0.0.1:9", server.url])
    held, errors = stores.deliver([good, forged])
    assert held == {good.commitment}
    assert errors[1].startswith("http://127.0.0.1:9: ")
    refusals = [e for e in errors if ": refused 0x" in e]
    assert refusals == [
        f"{loc}: refused 0x{other.commitment.hex()}: {refusals[i].split(': ', 2)[2]}"
        for i, loc in enumerate([str(tmp_path / "up"), server.url])
    ]
    assert all("do not open the commitment" in e for e in refusals)


def test_expire__removes_results_past_retention_only(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path)
    old, new = result(1), result(2)
    store.put_many([old])
    old_pack = store.open_range(old.commitment)[0]
    later = time.time() + 40 * 86_400  # the clock 40 days on: old is past 30 days...
    store.put_many([new])
    with store.db.tx() as c:  # ...and new arrived just now, in that future
        c.execute("UPDATE results SET stored_at=? WHERE commitment=?", (later, new.commitment))
    os.utime(old_pack, (time.time() - 1, time.time() - 1))
    assert store.expire(30 * 86_400, now=later) == 1
    assert not store.has(old.commitment) and store.has(new.commitment)
    assert not old_pack.exists()  # no result left in it: deleted
    assert store.get(new.commitment).data == new.data


def test_server__expires_on_a_timer(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "srv")
    LocalResultStore(blobs.root).put(result(1))
    with BlobServer(blobs, result_retention=0.0, expire_interval=0.05) as srv:
        deadline = time.monotonic() + 5
        while srv.results.has(result(1).commitment) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not srv.results.has(result(1).commitment)


class _OddStore(BaseHTTPRequestHandler):
    """A store answering ``GET /<kind>/results/<c>`` in shapes BlobServer does not use: chunked,
    gzip-compressed, or (``short``) with a body shorter than its Content-Length."""

    protocol_version = "HTTP/1.1"
    body = b""

    def do_GET(self) -> None:
        body, kind = self.body, self.path.split("/")[1]  # GET /<kind>/results/<c>
        self.send_response(200)
        self.send_header("X-Pouw-Worker", WORKER)
        self.send_header("X-Pouw-Row-Bytes", "20")
        if kind == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for lo in range(0, len(body), 64):
                part = body[lo : lo + 64]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if kind == "gzip":
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body) + (10 if kind == "short" else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_http_get__chunked_compressed_and_short_bodies() -> None:
    r = result(1)
    _OddStore.body = r.data
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _OddStore)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        for kind in ("chunked", "gzip"):
            got = HttpResultClient(f"{base}/{kind}").get(r.commitment)
            assert got.data == r.data and got.row_bytes == 20
            with pytest.raises(BlobTooLarge):
                HttpResultClient(f"{base}/{kind}").get(r.commitment, len(r.data) - 1)
        with pytest.raises(BlobTransferError):
            HttpResultClient(f"{base}/short").get(r.commitment)
    finally:
        srv.shutdown()
        srv.server_close()
