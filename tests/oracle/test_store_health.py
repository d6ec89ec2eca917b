"""A spec store that is down, then back: what SpecStore reports to its watcher, its probe; the
worker's persisted backoff in its SQLite state (and the migration of an older file)."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from oracle.exceptions import BlobNotFound, BlobTransferError, SpecError
from oracle.protocol.spec import parse_spec
from oracle.store.blobs import LocalBlobStore
from oracle.store.server import BlobServer
from oracle.store.specs import SpecStore
from oracle.worker.db import WorkerDB

SPEC = {
    "version": 1,
    "kind": "matmul",
    "dtype": "int8",
    "m": 4,
    "n": 4,
    "k": 4,
    "inputs": {"seed": 3},
    "verify": {"mode": "full"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Seen(list[tuple[bool, str]]):
    def __call__(self, up: bool, error: str) -> None:
        self.append((up, error))


def test_spec_store__down_then_back__watch_probe_and_errors(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    local = LocalBlobStore(tmp_path / "specs")
    spec = parse_spec(SPEC)
    local.put(spec.canonical)
    seen = Seen()
    specs = SpecStore([url], watch=seen)

    assert specs.probe() is False  # nothing listens on the port
    with pytest.raises(BlobTransferError):
        specs.get(spec.hash)
    specs.prefetch([spec.hash])  # best effort: no error, but reported
    assert [up for up, _ in seen] == [False, False, False]
    assert all(url in err for _, err in seen)
    assert specs.cached(spec.hash) is None

    with BlobServer(local, port=port):
        assert specs.probe() is True  # "no such blob" for the probe name: the store is there
        assert specs.get(spec.hash) == spec
        with pytest.raises(BlobNotFound):  # answered, just not there: the store is up
            specs.get(parse_spec({**SPEC, "inputs": {"seed": 4}}).hash)
    assert seen[3:] == [(True, ""), (True, ""), (True, "")]
    assert specs.cached(spec.hash) == spec
    assert specs.get(spec.hash) == spec  # cached: no store asked, nothing reported
    assert len(seen) == 6


def test_spec_store__one_of_two_down__up_and_served_by_the_other(tmp_path: Path) -> None:
    local = LocalBlobStore(tmp_path / "specs")
    spec = parse_spec(SPEC)
    local.put(spec.canonical)
    seen = Seen()
    specs = SpecStore([f"http://127.0.0.1:{_free_port()}", str(tmp_path / "specs")], watch=seen)
    assert specs.get(spec.hash) == spec
    assert seen == [(True, seen[0][1])] and "127.0.0.1" in seen[0][1]  # the down one named


def test_spec_store__malformed_bytes__store_answered(tmp_path: Path) -> None:
    local = LocalBlobStore(tmp_path / "specs")
    name = local.put(b'{"version": 1, "kind": "matmul"}')
    seen = Seen()
    with pytest.raises(SpecError):
        SpecStore([str(tmp_path / "specs")], watch=seen).get(bytes.fromhex(name))
    assert seen == [(True, "")]


def _job(j: int, deadline: int = 10**9) -> dict:
    return {
        "job_id": j,
        "spec_hash": bytes([j]) * 32,
        "work_units": 8,
        "amount": 1,
        "deadline": deadline,
    }


def test_worker_db__waiting_jobs_leave_the_window_until_due_then_released(tmp_path: Path) -> None:
    db = WorkerDB(tmp_path / "w.db")
    db.add_jobs([_job(j) for j in (1, 2, 3)], 5)
    now = time.time()
    assert db.retry_later(1, "unreachable: refused", now + 60) == 1
    assert db.retry_later(1, "unreachable: refused again", now + 120) == 2
    assert db.retry_later(2, "not in any store (yet)", now - 1) == 1  # already due
    due = db.jobs("new", due_by=now)
    assert [j["job_id"] for j in due] == [2, 3]  # job 1 waits: out of the window
    assert due[0]["attempts"] == 1 and due[0]["reason"] == "not in any store (yet)"
    assert [j["job_id"] for j in db.jobs("new")] == [1, 2, 3]  # without due_by: all
    assert db.waiting() == 2
    assert db.release_waiting() == 1  # the one still waiting is due now
    assert [j["job_id"] for j in db.jobs("new", due_by=now)] == [1, 2, 3]
    one = db.jobs("new", limit=1)[0]
    assert one["attempts"] == 2 and one["reason"] == "unreachable: refused again"
    db.set_computed_many([(1, "ab" * 32, b"\x01" * 32, b"\x02" * 32)])
    assert db.job(1)["reason"] is None and db.waiting() == 1  # the wait is over
    assert db.retry_later(1, "late", now) == 2  # only a new job waits: unchanged
    assert db.job(1)["state"] == "computed"


def test_worker_db__older_file__columns_added_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:  # the jobs table as the previous version wrote it
        c.execute(
            "CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, spec_hash BLOB NOT NULL, "
            "work_units INTEGER NOT NULL, amount TEXT NOT NULL, deadline INTEGER NOT NULL, "
            "state TEXT NOT NULL, reason TEXT, blob TEXT, root BLOB, commitment BLOB, "
            "epoch INTEGER)"
        )
        c.execute(
            "INSERT INTO jobs VALUES (4, x'04', 8, '1', 99, 'new', NULL, NULL, NULL, NULL, NULL)"
        )
    db = WorkerDB(path)
    assert [j["job_id"] for j in db.jobs("new", due_by=time.time())] == [4]
    assert db.jobs("new")[0]["attempts"] == 0
    assert db.retry_later(4, "x", time.time() + 60) == 1
    db.close()
    assert WorkerDB(path).add_columns("jobs", {"attempts": "INTEGER"}) == []  # idempotent
