"""Content-addressed blob store: local directory, HTTP server and client, bad input."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from oracle.compute.blob_inputs import matmul_blobs, mlp_blobs
from oracle.compute.verify import check_full, prepare
from oracle.compute.work import compute, load_inputs
from oracle.exceptions import (
    BlobError,
    BlobHashMismatch,
    BlobNameError,
    BlobNotFound,
    BlobTooLarge,
    BlobTransferError,
    InputError,
    PouwError,
)
from oracle.protocol.hashing import keccak256
from oracle.protocol.spec import Spec, parse_spec
from oracle.protocol.verdict import VerdictCode
from oracle.store import blobs as blobstore
from oracle.store.blobs import HttpBlobClient, LocalBlobStore, blob_name
from oracle.store.server import BlobServer

SEED = bytes.fromhex("11" * 32)


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", max_size=1 << 20)


@pytest.fixture
def server(store: LocalBlobStore) -> Iterator[BlobServer]:
    with BlobServer(store) as srv:
        yield srv


def test_local__put_get_roundtrip_and_name_is_keccak(store: LocalBlobStore) -> None:
    name = store.put(b"hello")
    assert name == keccak256(b"hello").hex() == blob_name(b"hello")
    assert store.get(name) == b"hello" and store.get("0x" + name.upper()) == b"hello"
    assert store.has(name)
    assert not list(store.path(name).parent.glob(".tmp-*"))  # no temp files left behind


def test_local__errors(store: LocalBlobStore) -> None:
    with pytest.raises(BlobNotFound) as info:
        store.get("00" * 32)
    assert isinstance(info.value, KeyError) and isinstance(info.value, PouwError)
    with pytest.raises(BlobNameError):
        store.get("../../etc/passwd")
    with pytest.raises(BlobHashMismatch):
        store.put(b"data", name="11" * 32)
    with pytest.raises(BlobTooLarge):
        store.put(b"x" * ((1 << 20) + 1))
    name = store.put(b"abc")
    with pytest.raises(BlobTooLarge):
        store.get(name, max_size=2)
    store.path(name).write_bytes(b"abd")  # bit rot on disk
    with pytest.raises(BlobHashMismatch):
        store.get(name)


def test_local__failed_write_leaves_no_partial_file(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("oracle.store.blobs.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"payload")
    assert not store.has(blob_name(b"payload"))
    assert not [p for p in store.root.rglob("*") if p.is_file()]


def test_batch__blobs_appear_only_on_commit_with_one_barrier(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real = blobstore._syncfs()
    if real is not None:
        monkeypatch.setattr(blobstore, "_syncfs", lambda: lambda fd: syncs.append(fd) or real(fd))
    already = store.put(b"old")
    batch = store.batch()
    names = [batch.add(f"result {i}".encode()) for i in range(20)]
    assert batch.add(b"result 3") == names[3] and batch.add(b"old") == already
    assert len(batch) == 21
    assert not any(store.has(n) for n in names)  # written, not yet visible
    assert batch.commit() == [*names, already]
    assert [store.get(n) for n in names] == [f"result {i}".encode() for i in range(20)]
    assert not list(store.root.rglob(".tmp-*"))
    if real is not None:  # one flush of the data, one of the renames: not one per blob
        assert len(syncs) == 2
    assert batch.commit() == []  # committing twice writes nothing new


def test_batch__bad_blob_refused_and_discard_leaves_nothing(store: LocalBlobStore) -> None:
    batch = store.batch()
    good = batch.add(b"good")
    with pytest.raises(BlobTooLarge):
        batch.add(b"x" * ((1 << 20) + 1))
    with pytest.raises(BlobHashMismatch):
        batch.add(b"data", name="11" * 32)
    batch.discard()
    assert batch.commit() == [] and not store.has(good)
    assert not [p for p in store.root.rglob("*") if p.is_file()]


def test_batch__failed_rename_leaves_no_temp_and_no_partial_blob(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = store.batch()
    names = [batch.add(f"r{i}".encode()) for i in range(3)]
    calls = []

    def replace_then_fail(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    real_replace = blobstore.os.replace
    monkeypatch.setattr("oracle.store.blobs.os.replace", replace_then_fail)
    with pytest.raises(OSError, match="disk full"):
        batch.commit()
    assert store.get(names[0]) == b"r0"  # renamed before the failure: complete and durable
    assert not store.has(names[1]) and not store.has(names[2])
    assert not list(store.root.rglob(".tmp-*"))


def test_batch__without_syncfs_each_file_is_fsynced(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(blobstore, "_syncfs", lambda: None)
    real_fsync = blobstore.os.fsync
    monkeypatch.setattr(blobstore.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    batch = store.batch()
    names = [batch.add(bytes([i]) * 10) for i in range(4)]
    batch.commit()
    dirs = {store.path(n).parent for n in names}
    assert len(synced) == 4 + len(dirs)  # every temp file, then every directory renamed into
    assert [store.get(n) for n in names] == [bytes([i]) * 10 for i in range(4)]


def test_http__get_put_roundtrip(store: LocalBlobStore, server: BlobServer) -> None:
    client = HttpBlobClient(server.url, max_size=1 << 20)
    data = np.arange(50_000, dtype=np.int32).tobytes()
    name = client.put(data)
    assert store.get(name) == data
    assert client.get(name) == data
    with pytest.raises(BlobNotFound):
        client.get("22" * 32)


def test_http__oversized__refused(store: LocalBlobStore, server: BlobServer) -> None:
    name = store.put(b"y" * 5000)
    with pytest.raises(BlobTooLarge):
        HttpBlobClient(server.url, max_size=4999).get(name)
    with pytest.raises(BlobTooLarge):
        HttpBlobClient(server.url).get(name, max_size=100)


def _raw_server(response: Callable[[], bytes]) -> tuple[str, threading.Thread, socket.socket]:
    """A one-shot TCP server sending a hand-made (possibly lying) HTTP response."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(response())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}", thread, sock


@pytest.mark.parametrize(
    ("body", "headers", "error"),
    [
        (b"forged content", None, BlobHashMismatch),  # wrong hash
        (b"short", "Content-Length: 100\r\n", BlobError),  # truncated
        (b"z" * 300, "", BlobTooLarge),  # no length header, body over the limit
        (b"z" * 10, "Content-Length: 1000000\r\n", BlobTooLarge),  # declared too large
    ],
)
def test_http__lying_server__clear_error(
    body: bytes, headers: str | None, error: type[Exception]
) -> None:
    name = keccak256(b"the real content").hex()
    hdr = f"Content-Length: {len(body)}\r\n" if headers is None else headers

    def response() -> bytes:
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + hdr.encode() + b"\r\n" + body

    url, thread, sock = _raw_server(response)
    try:
        with pytest.raises(error):
            HttpBlobClient(url, max_size=200, read_timeout=2).get(name)
    finally:
        thread.join(timeout=5)
        sock.close()


@pytest.mark.parametrize("check_hash", [True, False])
def test_http__check_hash_off__content_returned_limits_still_enforced(check_hash: bool) -> None:
    """The oracle turns the name check off for results (their Merkle root is checked against
    the commitment instead): forged content then comes back for that check to refuse, while
    the size limit and truncation are enforced either way."""
    name = keccak256(b"the real content").hex()
    cases = [
        (b"forged content", f"Content-Length: {len(b'forged content')}\r\n"),
        (b"short", "Content-Length: 100\r\n"),
        (b"z" * 300, ""),
    ]
    got = []
    for body, hdr in cases:
        url, thread, sock = _raw_server(
            lambda body=body, hdr=hdr: (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + hdr.encode() + b"\r\n" + body
            )
        )
        try:
            got.append(
                HttpBlobClient(url, max_size=200, read_timeout=2).get(name, check_hash=check_hash)
            )
        except BlobError as exc:
            got.append(type(exc))
        finally:
            thread.join(timeout=5)
            sock.close()
    forged = BlobHashMismatch if check_hash else b"forged content"
    assert got[0] == forged and got[2] is BlobTooLarge
    assert isinstance(got[1], type) and issubclass(got[1], BlobError)  # truncated: refused


def test_http__timeout__transfer_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts the TCP connection, never answers
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(BlobTransferError):
            HttpBlobClient(url, connect_timeout=0.5, read_timeout=0.3).get("33" * 32)
    finally:
        sock.close()


def _blob_spec(dtype: str, inputs: dict[str, object], m: int = 6, n: int = 5, k: int = 4) -> Spec:
    return parse_spec(
        {
            "version": 1,
            "kind": "matmul",
            "dtype": dtype,
            "m": m,
            "n": n,
            "k": k,
            "inputs": inputs,
            "verify": {"mode": "full"},
        }
    )


def _publish(store: LocalBlobStore, blobs: dict[str, bytes]) -> None:
    for name, data in blobs.items():
        assert "0x" + store.put(data) == name


@pytest.mark.parametrize("dtype", ["int8", "fp32"])
def test_blob_inputs__verified_end_to_end_over_http(
    store: LocalBlobStore, server: BlobServer, dtype: str
) -> None:
    rng = np.random.default_rng(5)
    if dtype == "int8":
        a = rng.integers(-128, 128, (6, 4), dtype=np.int8)
        b = rng.integers(-128, 128, (4, 5), dtype=np.int8)
    else:
        a = rng.standard_normal((6, 4)).astype(np.float32)
        b = rng.standard_normal((4, 5)).astype(np.float32)
    made = matmul_blobs(a, b)
    _publish(store, made.blobs)
    spec = _blob_spec(dtype, made.inputs)
    client = HttpBlobClient(server.url)
    loaded = load_inputs(spec, client)
    assert np.array_equal(loaded.a, a) and np.array_equal(loaded.b, b)
    result = compute(spec, store=client)
    expected = a.astype(np.int32) @ b.astype(np.int32) if dtype == "int8" else a @ b
    assert np.allclose(result, expected, rtol=1e-5, atol=1e-5)
    verdict = check_full(prepare(spec, SEED, store=client), result)
    assert verdict.verdict is VerdictCode.VALID


def test_blob_inputs__mlp__weights_layout_round_trips(store: LocalBlobStore) -> None:
    rng = np.random.default_rng(6)
    dims = (5, 7, 3)
    x = rng.standard_normal((4, dims[0])).astype(np.float32)
    layers = [
        (
            rng.standard_normal((dims[i - 1], dims[i])).astype(np.float32),
            rng.standard_normal(dims[i]).astype(np.float32),
        )
        for i in (1, 2)
    ]
    made = mlp_blobs(x, layers)
    _publish(store, made.blobs)
    spec = parse_spec(
        {
            "version": 1,
            "kind": "mlp",
            "dtype": "fp32",
            "batch": 4,
            "dims": list(dims),
            "activation": "relu",
            "inputs": made.inputs,
            "verify": {"mode": "full"},
        }
    )
    loaded = load_inputs(spec, store)
    assert np.array_equal(loaded.x, x)
    for (w, bias), (lw, lb) in zip(layers, loaded.layers, strict=True):
        assert np.array_equal(lw, w) and np.array_equal(lb, bias)
    out = compute(spec, store=store)
    hidden = np.maximum(x @ layers[0][0] + layers[0][1], 0)
    assert np.allclose(out[:, -dims[2] :], hidden @ layers[1][0] + layers[1][1], atol=1e-5)


@pytest.mark.parametrize("problem", ["wrong-size", "nan", "missing", "root"])
def test_blob_inputs__bad__input_error(store: LocalBlobStore, problem: str) -> None:
    a = np.ones((6, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    made = matmul_blobs(a, b)
    _publish(store, made.blobs)
    inputs = {key: dict(ref) for key, ref in made.inputs.items()}
    if problem == "wrong-size":
        inputs["a"]["blob"] = "0x" + store.put(np.ones((6, 3), "<f4").tobytes())
        match = "has 72 bytes, expected 96"
    elif problem == "nan":
        arr = np.ones((6, 4), "<f4")
        arr[1, 1] = np.nan
        inputs["a"] = matmul_blobs(arr, b).inputs["a"]
        store.put(arr.tobytes())
        match = "contains NaN or Inf"
    elif problem == "missing":
        inputs["a"]["blob"] = "0x" + "44" * 32
        match = "44" * 32
    else:  # the bytes are B's, the root A's: a blob that is not what the spec commits to
        inputs["b"]["root"] = inputs["a"]["root"]
        match = "spec.inputs.b: blob .* has row root"
    spec = _blob_spec("fp32", inputs)
    with pytest.raises((InputError, BlobError), match=match):
        load_inputs(spec, store)


def test_http__get_many__one_request_checked_and_missing_left_out(
    store: LocalBlobStore, server: BlobServer
) -> None:
    names = [store.put(f"blob {i}".encode()) for i in range(5)]
    absent = keccak256(b"never stored").hex()
    client = HttpBlobClient(server.url)
    sent = []
    real = client.session.request
    client.session.request = lambda *a, **k: sent.append(a[:2]) or real(*a, **k)  # type: ignore[method-assign]
    got = client.get_many([*names, absent])
    assert got == {n: f"blob {i}".encode() for i, n in enumerate(names)}
    assert sent == [("POST", f"{server.url}/blobs")]
    # A size limit leaves out what exceeds it; the local store answers the same question.
    big = store.put(b"x" * 100)
    assert set(client.get_many([names[0], big], max_size=50)) == {names[0]}
    assert store.get_many([names[0], absent]) == {names[0]: b"blob 0"}


def test_http__get_many__more_names_than_one_request_takes__all_fetched(
    store: LocalBlobStore, server: BlobServer
) -> None:
    from oracle.store.blobs import MAX_MULTI_NAMES

    count = MAX_MULTI_NAMES + 44
    names = [store.put(f"spec {i}".encode()) for i in range(count)]
    client = HttpBlobClient(server.url)
    sent = []
    real = client.session.request
    client.session.request = lambda *a, **k: sent.append(a[:2]) or real(*a, **k)  # type: ignore[method-assign]
    got = client.get_many(names + names[:3])  # repeats are asked for once
    assert got == {n: f"spec {i}".encode() for i, n in enumerate(names)}
    assert sent == [("POST", f"{server.url}/blobs")] * 2


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"names": "abc"}',
        b'{"names": []}',
        b'{"names": ["../etc/passwd"]}',
        b'{"other": 1}',
    ],
)
def test_http__get_many_bad_request__400(server: BlobServer, body: bytes) -> None:
    import requests

    resp = requests.post(f"{server.url}/blobs", data=body, timeout=5)
    assert resp.status_code == 400


def test_http__get_many_lying_server__forged_entry_dropped() -> None:
    from oracle.protocol.bundle import encode_bundle

    name = keccak256(b"the real content").hex()
    other = keccak256(b"other").hex()
    body = encode_bundle([({"name": name}, b"forged content"), ({"name": other}, b"other")])

    def response() -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    url, thread, sock = _raw_server(response)
    try:
        assert HttpBlobClient(url, read_timeout=2).get_many([name, other]) == {other: b"other"}
    finally:
        thread.join(timeout=5)
        sock.close()


def test_spec_store__prefetch_one_request_then_cache(tmp_path: Path) -> None:
    from oracle.exceptions import BlobNotFound, SpecError
    from oracle.store.specs import SpecStore

    specs = [
        parse_spec(
            {
                "version": 1,
                "kind": "matmul",
                "dtype": "int8",
                "m": 4,
                "n": 4,
                "k": 4,
                "inputs": {"seed": i},
                "verify": {"mode": "full"},
            }
        )
        for i in range(3)
    ]
    public = LocalBlobStore(tmp_path / "specs")
    for s in specs:
        public.put(s.canonical)
    bad = public.put(b'{"not": "a spec"}')
    with BlobServer(public) as srv:
        ss = SpecStore([srv.url], cache_size=2)
        client = ss.stores[0]
        calls: list[str] = []
        real_many, real_get = client.get_many, client.get
        client.get_many = lambda names, **k: calls.append("many") or real_many(names, **k)
        client.get = lambda name, **k: calls.append("get") or real_get(name, **k)
        ss.prefetch([s.hash for s in specs[:2]] + [bytes.fromhex(bad)])
        assert calls == ["many"]
        assert ss.get(specs[0].hash) == specs[0] and ss.get(specs[1].hash) == specs[1]
        assert calls == ["many"]  # both served from the cache
        with pytest.raises(SpecError):  # the malformed one is reported by get(), not hidden
            ss.get(bytes.fromhex(bad))
        assert ss.get(specs[2].hash) == specs[2]  # not prefetched: read alone
        assert calls[-1] == "get" and len(ss._cache) == 2  # bounded, oldest out
        with pytest.raises(BlobNotFound):
            ss.get(keccak256(b"nothing"))


def test_local__stale_temp_files__removed_young_ones_and_blobs_kept(store: LocalBlobStore) -> None:
    import os

    kept = store.put(b"a blob")
    batch = store.batch()
    batch.add(b"written, never renamed")  # what a process killed mid-batch leaves
    [old_tmp] = store.root.rglob(".tmp-*")
    young = store.root / "ab" / ".tmp-young"
    young.parent.mkdir(exist_ok=True)
    young.write_bytes(b"a writer still at work")
    two_hours_ago = os.stat(old_tmp).st_mtime - 7_200
    os.utime(old_tmp, (two_hours_ago, two_hours_ago))
    assert store.remove_stale_temps(max_age=3_600) == 1
    assert not old_tmp.exists() and young.exists() and store.get(kept) == b"a blob"


def test_cli_store_put__directory_and_server__prints_the_name_both_serve(tmp_path):
    """`pouw store put FILE --store DIR --store URL` publishes the bytes as they are to both
    and prints 0x + keccak256; a store that does not answer is one line and exit 2."""
    from click.testing import CliRunner

    from oracle.cli.main import cli
    from oracle.protocol.hashing import keccak256
    from oracle.store.blobs import HttpBlobClient, LocalBlobStore
    from oracle.store.server import BlobServer

    data = bytes(range(256)) * 40
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    runner = CliRunner(mix_stderr=False)
    with BlobServer(LocalBlobStore(tmp_path / "served")) as srv:
        result = runner.invoke(
            cli, ["store", "put", str(path), "--store", str(tmp_path / "dir"), "--store", srv.url]
        )
        assert result.exit_code == 0, result.stderr
        name = result.stdout.strip()
        assert name == "0x" + keccak256(data).hex()
        assert LocalBlobStore(tmp_path / "dir").get(name[2:]) == data
        assert HttpBlobClient(srv.url).get(name[2:]) == data
    down = runner.invoke(cli, ["store", "put", str(path), "--store", "http://127.0.0.1:9"])
    assert (
        down.exit_code == 2 and down.stderr.startswith("error: ") and "127.0.0.1:9" in down.stderr
    )
    assert len(down.stderr.strip().splitlines()) == 1
