"""oracle.node.db: idempotent event recording, never-replaced verdicts, transactions before send."""

from __future__ import annotations

import pytest

from oracle.exceptions import VerdictConflict
from oracle.node.db import OracleDB, StoredVerdict
from oracle.protocol.verdict import VerdictKey

W = "0x" + "ab" * 20
C = b"\x11" * 32
JOB = {
    "job_id": 1,
    "spec_hash": b"\x22" * 32,
    "work_units": 64,
    "requester": W,
    "asset": "0x" + "00" * 20,
    "amount": 10**16,
    "deadline": 99,
}
SUB = {"job_id": 1, "worker": W, "commitment": C, "block_number": 10}


def _verdict(verdict: int = 1, th: bytes = b"\x33" * 32) -> StoredVerdict:
    return StoredVerdict(
        key=VerdictKey(1, W, C, 10),
        seed=b"\x44" * 32,
        challenge_block=11,
        challenge_hash=b"\x55" * 32,
        work_units=64,
        verdict=verdict,
        reason="ok",
        transcript={"a": 1},
        transcript_hash=th,
    )


def test_record_range__replayed__changes_nothing(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    events = [("JobCreated", JOB), ("ResultSubmitted", SUB)]
    db.record_range(12, b"\x01" * 32, events)
    db.record_verdict(_verdict())
    db.record_range(12, b"\x01" * 32, events)  # the same range again, e.g. after a crash
    assert db.checkpoint() == 12
    assert db.job(1)["amount"] == 10**16
    assert db.submission_state(VerdictKey(1, W, C, 10)) == ("decided", 0, None)
    assert db.due_submissions(max_block=100) == []


def test_due_submissions__waits_for_the_challenge_block(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    db.record_range(10, b"\x01" * 32, [("JobCreated", JOB), ("ResultSubmitted", SUB)])
    assert db.due_submissions(max_block=10) == []
    assert [s["key"] for s in db.due_submissions(max_block=11)] == [VerdictKey(1, W, C, 10)]


def test_record_verdict__same_content__is_a_no_op(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    assert db.record_verdict(_verdict()) is True
    assert db.record_verdict(_verdict()) is False
    assert db.verdict(VerdictKey(1, W, C, 10)).transcript == {"a": 1}


@pytest.mark.parametrize("other", [_verdict(verdict=2), _verdict(th=b"\x66" * 32)])
def test_record_verdict__different_content__raises_and_keeps_the_first(tmp_path, other):
    db = OracleDB(tmp_path / "o.db")
    db.record_verdict(_verdict())
    with pytest.raises(VerdictConflict):
        db.record_verdict(other)
    kept = db.verdict(VerdictKey(1, W, C, 10))
    assert (kept.verdict, kept.transcript_hash) == (1, b"\x33" * 32)


def test_settled_event__removes_verdict_from_the_unsettled_set(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    db.record_verdict(_verdict())
    [full] = db.unsettled_verdicts()
    [light] = db.unsettled()  # what the settle loop reads: the attestation's fields, no more
    assert (
        light.key,
        light.work_units,
        light.verdict,
        light.transcript_hash,
        light.decided_at,
    ) == (full.key, full.work_units, full.verdict, full.transcript_hash, full.decided_at)
    db.record_range(20, b"\x02" * 32, [("JobSettled", {"job_id": 1, "worker": W})])
    assert db.unsettled_verdicts() == [] and db.unsettled() == []


def test_retry_then_give_up__is_recorded(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    db.record_range(10, b"\x01" * 32, [("JobCreated", JOB), ("ResultSubmitted", SUB)])
    key = VerdictKey(1, W, C, 10)
    assert db.retry_later(key, "unreachable", delay=100.0) == 1
    assert db.due_submissions(max_block=11) == []  # backing off
    db.give_up(key, "unreachable")
    assert db.submission_state(key) == ("gave_up", 1, "unreachable")


def test_txs__recorded_before_send__nonce_continues_after_restart(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    assert db.next_nonce() == 0
    db.record_tx(7, b"\xaa" * 32, b"raw", "settle", b"\xbb" * 32)
    again = OracleDB(tmp_path / "o.db")
    assert again.next_nonce() == 8
    assert [t["raw"] for t in again.txs("signed")] == [b"raw"]
    again.set_tx_state(b"\xaa" * 32, "mined")
    assert again.txs("signed") == []


def test_worker_url__older_announcement_never_wins(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    assert db.set_worker_url(W, "http://new", 200)
    assert not db.set_worker_url(W, "http://old", 100)
    assert db.worker_url(W.upper().replace("0X", "0x")) == "http://new"


def test_rewind__moves_checkpoint_and_forgets_later_hashes(tmp_path):
    db = OracleDB(tmp_path / "o.db")
    db.record_range(10, b"\x01" * 32, [])
    db.record_range(20, b"\x02" * 32, [])
    db.rewind(10)
    assert db.checkpoint() == 10
    assert db.block_hash(20) is None and db.block_hash(10) == b"\x01" * 32


def test_sqlite_pool__unfinished_transaction_rolled_back_and_threads_share_nothing(tmp_path):
    import threading

    from oracle.infra.sqlite import SqliteFile

    db = SqliteFile(tmp_path / "x.db", "CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    with pytest.raises(RuntimeError), db._conn() as c:  # BEGIN without COMMIT, then a crash
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    assert db._one("SELECT COUNT(*) FROM t")[0] == 0  # rolled back, connection reusable
    with pytest.raises(RuntimeError), db.tx() as c:
        c.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")
    assert db._all("SELECT v FROM t") == []
    errors: list[BaseException] = []

    def writer(base: int) -> None:
        try:
            for i in range(50):
                with db.tx() as c:
                    c.execute("INSERT INTO t VALUES (?)", (base + i,))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and db._one("SELECT COUNT(*) FROM t")[0] == 200
    assert len(db._idle) <= 4  # one connection per concurrent user, reused
    db.close()
    assert db._idle == [] and db._one("SELECT COUNT(*) FROM t")[0] == 200  # reopens on use


def _plans(db, call) -> list[str]:
    """The query plan of every SELECT ``call`` runs (captured from the pooled connection)."""
    with db._conn() as conn:  # the pool then hands this same connection to ``call``
        pass
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    selects = [q for q in seen if q.lstrip().upper().startswith("SELECT")]
    assert selects
    return [" ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + q)) for q in selects]


def test_polled_queries__search_an_index__not_every_row_ever_decided(tmp_path):
    """The loops poll pending submissions, unsettled verdicts and reorg candidates every few
    ms: each must read an index of those rows, so a node that has decided millions of jobs
    polls as cheaply as a new one."""
    from oracle.worker.db import WorkerDB

    db = OracleDB(tmp_path / "o.db")
    for plan in (
        _plans(db, lambda: db.due_submissions(100))
        + _plans(db, lambda: db.unsettled_verdicts(256))
        + _plans(db, lambda: db.unsettled(256))
        + _plans(db, lambda: db.unsettled(256, due_for=(1, 3, 5.0), now=10.0))
        + _plans(db, lambda: db.orphan_verdicts_after(5))
    ):
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    wdb = WorkerDB(tmp_path / "w.db")
    for plan in (
        _plans(wdb, lambda: wdb.jobs("new"))
        + _plans(wdb, lambda: wdb.jobs("new", limit=256, due_by=5.0))
        + _plans(wdb, wdb.waiting)
        + _plans(wdb, lambda: wdb.jobs("computed"))
        + _plans(wdb, lambda: wdb.served_blob("ab" * 32))
    ):
        assert "INDEX" in plan and not plan.startswith("SCAN jobs"), plan


def test_worker_jobs__limit__oldest_first_window(tmp_path):
    from oracle.worker.db import WorkerDB

    wdb = WorkerDB(tmp_path / "w.db")
    jobs = [
        {
            "job_id": j,
            "spec_hash": bytes([j]) * 32,
            "work_units": 64,
            "amount": 10**12,
            "deadline": 99,
        }
        for j in (5, 1, 3, 2, 4)
    ]
    wdb.add_jobs(jobs, 10)
    assert [j["job_id"] for j in wdb.jobs("new")] == [1, 2, 3, 4, 5]
    assert [j["job_id"] for j in wdb.jobs("new", limit=2)] == [1, 2]
    wdb.set_state(1, "skipped", "test")
    window = wdb.jobs("new", limit=2)
    assert [j["job_id"] for j in window] == [2, 3]
    assert window[0]["spec_hash"] == b"\x02" * 32 and window[0]["amount"] == 10**12


def test_refuted__marks_the_jobs_valid_item_in_the_stored_batch(tmp_path):
    """A dispute's `Refuted` names (batch, job): the stored batch's VALID item for that job
    becomes REFUTED, so the record the node passes to `finalize` is the market's new one; the
    same job's INVALID item in that batch and other batches stay as they were."""
    from oracle.protocol.settled import VERDICT_REFUTED, SettledBatch, SettledItem

    zero = "0x" + "00" * 20

    def item(job_id: int, verdict: int) -> SettledItem:
        return SettledItem(job_id, W, C, verdict, zero, 10**16, 64, 10**18)

    batch = SettledBatch(7, 0, 500, (W,), (item(1, 2), item(1, 1), item(2, 1)))
    other = SettledBatch(8, 0, 500, (W,), (item(1, 1),))
    db = OracleDB(tmp_path / "o.db")
    db.record_range(
        5,
        b"\x05" * 32,
        [
            ("BatchSettled", {"batch_id": 7, "final_at": 500, "_batch": batch.to_json()}),
            ("BatchSettled", {"batch_id": 8, "final_at": 500, "_batch": other.to_json()}),
        ],
    )
    db.record_range(6, b"\x06" * 32, [("Refuted", {"batch_id": 7, "job_id": 1})])
    stored = {bid: SettledBatch.from_json(text) for bid, text in db.pending_batches(500)}
    assert [i.verdict for i in stored[7].items] == [2, VERDICT_REFUTED, 1]
    assert stored[7].record_hash() == batch.refuted(1).record_hash()
    assert stored[8] == other
    # a Refuted for a batch the node never saw changes nothing
    db.record_range(7, b"\x07" * 32, [("Refuted", {"batch_id": 9, "job_id": 1})])
    assert {bid for bid, _ in db.pending_batches(500)} == {7, 8}
