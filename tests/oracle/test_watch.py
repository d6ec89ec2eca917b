"""The watcher's state (`pouw watch`): what it records from the chain, how a check's outcome
or failure moves an item, and that a restart reads the same state. The live daemon refuting a
colluders' verdict on anvil is in tests/e2e/test_dispute_live.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from oracle.client import watch as watch_mod
from oracle.client.dispute import DisputeOutcome
from oracle.client.watch import WatchConfig, WatchDB, Watcher
from oracle.exceptions import AuditInputError

W = "0x" + "ab" * 20
V = "0x" + "cd" * 20


def _db(tmp_path: Path) -> WatchDB:
    return WatchDB(tmp_path / "watch.db")


def test_record__items_once__checkpoint_moves__restart_reads_the_same(tmp_path):
    db = _db(tmp_path)
    assert db.followed_to() is None
    settled = [(7, 1, W, 1, 100, 5000), (8, 1, W, 2, 100, 5000)]
    assert db.record(110, settled, [], []) == 2
    # the same events read again (a restart before the checkpoint moved) add nothing
    assert db.record(120, settled, [], []) == 0
    assert db.followed_to() == 120
    db.close()
    again = _db(tmp_path)
    assert again.followed_to() == 120
    assert [(i["job_id"], i["verdict"], i["status"]) for i in again.items()] == [
        (7, 1, "pending"),
        (8, 2, "pending"),
    ]
    counts = again.counts()
    assert counts.pop("pending") == 2 and set(counts.values()) == {0}


def test_record__a_dispute_or_finalization_closes_pending_items_only(tmp_path):
    db = _db(tmp_path)
    items = [(1, 1, W, 1, 5, 0), (2, 1, W, 1, 5, 0), (2, 1, V, 2, 5, 0), (3, 2, W, 1, 6, 0)]
    db.record(10, [*items, (4, 2, W, 1, 6, 0)], [], [])
    assert db.decide((1, 1, W, 1), "refuted", "C[0][0] is wrong", "0,0", "0xmine")
    assert db.decide((2, 3, W, 1), "right", "no entry", "", "")
    # job 1's Refuted is this watcher's own; job 2's VALID item refuted and its INVALID item
    # (another worker's) overturned by someone else; batch 2 final
    undone = [((1, 1, W, 1), "0xmine"), ((1, 2, W, 1), "0xtheirs"), ((1, 2, V, 2), "0xover")]
    db.record(20, [], undone, [2])
    st = {(i["job_id"], i["verdict"]): (i["status"], i["reason"], i["tx_hash"]) for i in db.items()}
    assert st[1, 1] == ("refuted", "C[0][0] is wrong", "0xmine")  # its own outcome kept
    assert st[2, 1] == ("closed", "undone on-chain", "0xtheirs")
    assert st[2, 2] == ("closed", "undone on-chain", "0xover")
    assert st[3, 1] == ("right", "no entry", "")  # decided before the batch was final: kept
    assert st[4, 1] == ("closed", "final before it was checked", "")
    # a closed item takes no late outcome
    assert not db.decide((1, 2, W, 1), "right", "late", "", "")


def test_due__retry_postpones_and_counts_attempts(tmp_path):
    db = _db(tmp_path)
    db.record(10, [(1, 1, W, 1, 5, 0), (2, 1, W, 2, 6, 0)], [], [])
    assert [key for key, _ in db.due(now=100.0)] == [(1, 1, W, 1), (1, 2, W, 2)]
    db.retry((1, 1, W, 1), at=150.0, reason="store down")
    assert [key for key, _ in db.due(now=100.0)] == [(1, 2, W, 2)]
    assert db.due(now=150.0)[0] == ((1, 1, W, 1), 1)


def test_schema__a_file_of_another_version_is_refused(tmp_path):
    path = tmp_path / "watch.db"
    WatchDB(path).close()
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA user_version=99")
    with pytest.raises(ValueError, match="another pouw version"):
        WatchDB(path)


class _Deployment:
    block = 0


class _Chain:
    deployment = _Deployment()


def _watcher(tmp_path: Path, monkeypatch: Any, outcomes: list[Any], verdict: int = 1) -> Watcher:
    def fake(chain: Any, job_id: int, stores: Any, account: Any) -> DisputeOutcome:
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out  # type: ignore[no-any-return]

    def fake_overturn(chain: Any, job_id: int, worker: str, stores: Any, account: Any) -> Any:
        return fake(chain, job_id, stores, account)

    monkeypatch.setattr(watch_mod, "dispute_job", fake)
    monkeypatch.setattr(watch_mod, "overturn_job", fake_overturn)
    w = Watcher(WatchConfig(str(tmp_path / "w.db"), ("s",), retry_base=2.0), _Chain(), None)  # type: ignore[arg-type]
    w.db.record(10, [(5, 3, W, verdict, 5, 0)], [], [])
    return w


def test_check__a_failure_that_may_pass_is_retried_with_backoff_then_decided(tmp_path, monkeypatch):
    outcomes: list[Any] = [
        AuditInputError("result not available"),
        AuditInputError("result not available"),
        DisputeOutcome(5, "refutable", "C[1][2] is wrong", W, 3, entry=[1, 2]),
    ]
    w = _watcher(tmp_path, monkeypatch, outcomes)
    t = [1000.0]
    monkeypatch.setattr(watch_mod.time, "time", lambda: t[0])
    w.check_due()
    [item] = w.db.items()
    assert (item["status"], item["reason"]) == ("pending", "result not available")
    assert w.db.due(t[0] + 1.9) == [] and len(w.db.due(t[0] + 2.0)) == 1  # 2 s
    t[0] += 2.0
    w.check_due()
    assert w.db.due(t[0] + 3.9) == [] and len(w.db.due(t[0] + 4.0)) == 1  # then 4 s
    t[0] += 4.0
    w.check_due()
    [item] = w.db.items()
    assert (item["status"], item["entry"]) == ("refutable", "1,2")
    assert w.metrics["check_errors"] == 2
    assert w.metrics["verdicts_wrong"] == 1
    assert w.metrics["disputes_sent"] == 0  # no key: reported, not sent
    assert outcomes == []
    w.close()


def test_check__a_verdict_gone_before_its_check_counts_as_missed(tmp_path, monkeypatch):
    w = _watcher(tmp_path, monkeypatch, [DisputeOutcome(5, "no_pending_verdict", "final")])
    w.check_due()
    [item] = w.db.items()
    assert item["status"] == "closed" and item["checked"] == 0
    assert w.metrics["verdicts_missed"] == 1 and w.metrics["verdicts_checked"] == 0
    w.close()


def test_check__an_invalid_verdict_goes_to_overturn_job_and_counts_as_a_dispute(
    tmp_path, monkeypatch
):
    w = _watcher(
        tmp_path,
        monkeypatch,
        [DisputeOutcome(5, "overturned", "C[1][2] is right", W, 3, [1, 2], "0xtx")],
        verdict=2,
    )
    w.check_due()
    [item] = w.db.items()
    assert (item["verdict"], item["status"], item["tx_hash"]) == (2, "overturned", "0xtx")
    assert w.metrics["disputes_sent"] == 1 and w.metrics["verdicts_wrong"] == 1
    w.close()
