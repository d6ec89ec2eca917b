"""oracle.node.decisions: the node's decisions on plain data, no chain, no SQLite, no HTTP."""

from __future__ import annotations

import pytest

from oracle.node.db import StoredVerdict, Unsettled
from oracle.node.decisions import (
    BUNDLE_ANSWER_BYTES,
    BUNDLE_BYTES,
    BUNDLE_ITEM_BYTES,
    BundleEntry,
    ItemEvent,
    bundle_cost,
    choose_quorum,
    due_at,
    fork_point,
    gives_up,
    has_quorum,
    peer_order,
    plan_bundles,
    quorum_signatures,
    rank,
    receipt_outcome,
    retry_delay,
    reveal_window_over,
    settle_batch,
)
from oracle.protocol.attestation import CompactSignature
from oracle.protocol.verdict import VerdictCode, VerdictKey

W1 = "0x" + "11" * 20
W2 = "0x" + "22" * 20


def _key(job: int, worker: str = W1) -> VerdictKey:
    return VerdictKey(job, worker, bytes([job % 256]) * 32, 7)


def _due(job: int, decided_at: float, worker: str = W1) -> Unsettled:
    return Unsettled(_key(job, worker), 64, 1, b"\x03" * 32, decided_at)


def _sig(n: int) -> CompactSignature:
    return CompactSignature("0x" + f"{n:040x}", n, n)


# -- leadership -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "job_id", "oracles", "expected"),
    [
        (0, 0, 3, 0),
        (1, 1, 3, 0),  # job_id mod n leads
        (2, 1, 3, 1),
        (0, 1, 3, 2),  # (0 - 1) mod 3 wraps to 2, never negative
        (0, 5, 3, 1),
        (2, 300, 3, 2),
        (0, 7, 1, 0),  # a single oracle leads everything
    ],
)
def test_rank__index_minus_job_mod_n(index, job_id, oracles, expected):
    assert rank(index, job_id, oracles) == expected


def test_rank__each_job_has_one_node_at_each_rank():
    for n in (1, 2, 3, 5):
        for job in range(20):
            assert sorted(rank(i, job, n) for i in range(n)) == list(range(n))


def test_due_at__rank_times_takeover_after_the_decision():
    assert due_at(100.0, 0, 8.0) == 100.0
    assert due_at(100.0, 2, 8.0) == 116.0


# -- settle batches ---------------------------------------------------------------------------

_ONE = {"index": 0, "oracles": 1, "takeover": 8.0}


def test_settle_batch__nothing_due__none():
    assert settle_batch([], 1000.0, batch_size=4, max_wait=2.0, **_ONE) == []


def test_settle_batch__full_batch__goes_at_once():
    due = [_due(j, 1000.0) for j in range(1, 5)]
    assert settle_batch(due, 1000.0, batch_size=4, max_wait=2.0, **_ONE) == due


def test_settle_batch__partial__waits_until_the_oldest_waited_max_wait():
    due = [_due(1, 1000.0), _due(2, 1001.0)]
    assert settle_batch(due, 1001.999, batch_size=4, max_wait=2.0, **_ONE) == []
    assert settle_batch(due, 1002.0, batch_size=4, max_wait=2.0, **_ONE) == due  # boundary


def test_settle_batch__fresh_items_do_not_hold_back_the_oldest():
    due = [_due(1, 997.0), *(_due(j, 1000.0) for j in range(2, 4))]
    assert [
        v.key.job_id for v in settle_batch(due, 1000.0, batch_size=8, max_wait=2.0, **_ONE)
    ] == [
        1,
        2,
        3,
    ]


def test_settle_batch__wait_counts_from_the_due_time_after_takeover():
    # Node 0 of 3: job 1 is rank 2 (due 16 s after its decision), job 3 rank 0.
    kw = {"index": 0, "oracles": 3, "takeover": 8.0, "batch_size": 4, "max_wait": 2.0}
    late = _due(1, 1000.0)
    assert settle_batch([late], 1016.0, **kw) == []  # just due: has not waited max_wait
    assert settle_batch([late], 1017.999, **kw) == []
    assert settle_batch([late], 1018.0, **kw) == [late]


def test_settle_batch__items_not_yet_due_here__left_out_and_not_counted():
    kw = {"index": 0, "oracles": 3, "takeover": 8.0, "batch_size": 2, "max_wait": 2.0}
    own, peers = _due(3, 1000.0), _due(1, 1000.0)  # rank 0 and rank 2 here
    # Two items would fill the batch, but the peer-led one is not due for 16 s: the own item
    # alone is a partial batch that has not waited yet.
    assert settle_batch([own, peers], 1000.0, **kw) == []
    assert settle_batch([own, peers], 1002.0, **kw) == [own]
    assert settle_batch([own, peers], 1016.0, **kw) == [peers, own]  # full: goes, by job id


def test_settle_batch__sorted_by_job_then_worker__limited_to_batch_size():
    due = [_due(5, 1.0), _due(2, 3.0, W2), _due(2, 4.0, W1), _due(9, 0.0), _due(1, 2.0)]
    got = settle_batch(due, 100.0, batch_size=3, max_wait=2.0, **_ONE)
    assert [(v.key.job_id, v.key.worker) for v in got] == [(1, W1), (2, W1), (2, W2)]


# -- quorum -----------------------------------------------------------------------------------


def test_has_quorum__own_signature_counts():
    assert has_quorum(0, 1) and has_quorum(1, 2) and has_quorum(2, 2)
    assert not has_quorum(0, 2) and not has_quorum(1, 3)


def test_peer_order__rotates_with_the_first_job():
    peers = ["a", "b", "c"]
    assert peer_order(peers, 0) == ["a", "b", "c"]
    assert peer_order(peers, 4) == ["b", "c", "a"]
    assert peer_order(peers, 5) == ["c", "a", "b"]
    assert peer_order((), 7) == []
    assert peer_order(("a", "b"), 3) == ["b", "a"]  # any sequence, a list back


def test_choose_quorum__largest_agreed_sub_list_reaching_threshold():
    groups = {(0, 1): [_sig(1), _sig(2)], (0, 1, 2): [_sig(3)], (1,): [_sig(4)]}
    assert choose_quorum(groups, 2) == (0, 1, 2)
    assert choose_quorum(groups, 3) == (0, 1)  # only that one has two peers' signatures
    assert choose_quorum(groups, 4) is None


def test_choose_quorum__none_agreed__no_batch():
    assert choose_quorum({}, 2) is None
    assert choose_quorum({(): [_sig(1), _sig(2)]}, 2) is None  # an empty sub-list never counts


def test_choose_quorum__equal_sizes__first_seen_wins():
    assert choose_quorum({(0, 2): [_sig(1)], (0, 1): [_sig(2)]}, 2) == (0, 2)


def test_quorum_signatures__ordered_by_signer_one_each_trimmed_to_threshold():
    own = _sig(5)
    got = quorum_signatures(own, [_sig(9), _sig(2), _sig(2), _sig(7)], 3)
    assert [int(s.signer, 16) for s in got] == [2, 5, 7]
    assert [int(s.signer, 16) for s in quorum_signatures(own, [_sig(1)], 1)] == [1]
    assert quorum_signatures(own, [], 0) == [own]  # at least one


# -- deep reorgs ------------------------------------------------------------------------------

H = {n: bytes([n]) * 32 for n in range(20)}
NEW = {n: bytes([n + 100]) * 32 for n in range(20)}


def test_fork_point__newest_recorded_block_the_chain_still_has():
    recorded = [(12, H[12]), (10, H[10]), (8, H[8])]
    chain = {12: NEW[12], 11: NEW[11], 10: H[10], 9: H[9], 8: H[8]}
    assert fork_point(recorded, chain, 5) == 10


def test_fork_point__nothing_matches__deployment_block_minus_one():
    recorded = [(12, H[12]), (10, H[10])]
    assert fork_point(recorded, {12: NEW[12], 10: NEW[10]}, 5) == 4
    assert fork_point([], {}, 5) == 4


def test_fork_point__missing_block_means_a_shorter_chain():
    recorded = [(12, H[12]), (10, H[10]), (8, H[8])]
    assert fork_point(recorded, {8: H[8]}, 5) == 8  # 12 and 10 are gone
    assert fork_point(recorded, lambda n: H[n] if n <= 8 else None, 5) == 8


def test_fork_point__reads_newest_first_and_stops_at_the_match():
    asked: list[int] = []

    def chain(n: int) -> bytes | None:
        asked.append(n)
        return NEW[n] if n > 9 else H[n]

    assert fork_point([(12, H[12]), (10, H[10]), (9, H[9]), (8, H[8])], chain, 0) == 9
    assert asked == [12, 10, 9]


# -- settle receipts --------------------------------------------------------------------------


def _stored(job: int, worker: str, verdict: VerdictCode, commitment: bytes) -> StoredVerdict:
    return StoredVerdict(
        key=VerdictKey(job, worker, commitment, 7),
        seed=b"\x01" * 32,
        challenge_block=1,
        challenge_hash=b"\x02" * 32,
        work_units=64,
        verdict=int(verdict),
        reason="",
        transcript={},
        transcript_hash=b"\x03" * 32,
    )


def _no_lookup(job_id: int) -> list[StoredVerdict]:
    raise AssertionError(f"verdicts of job {job_id} read on the lined-up path")


def test_receipt_outcome__lined_up__ith_event_marks_ith_item():
    items = [_key(1), _key(2, W2), _key(3)]
    events = [
        ItemEvent("JobSettled", 1, W1),
        ItemEvent("WorkerSlashed", 2, W2),
        ItemEvent("AttestationSkipped", 3, W1),
    ]
    marks, settled, skipped = receipt_outcome(items, events, _no_lookup)
    assert marks == [(items[0], "settled"), (items[1], "slashed"), (items[2], "moot")]
    assert (settled, skipped) == (2, 1)


def test_receipt_outcome__empty_receipt__nothing():
    assert receipt_outcome([], [], _no_lookup) == ([], 0, 0)


def _fallback_verdicts() -> dict[int, list[StoredVerdict]]:
    return {
        1: [
            _stored(1, W1, VerdictCode.VALID, b"\xa1" * 32),
            _stored(1, W2, VerdictCode.VALID, b"\xa2" * 32),  # another worker: untouched
            _stored(1, W1, VerdictCode.INVALID, b"\xa3" * 32),  # not what JobSettled pays
        ],
        2: [
            _stored(2, W2, VerdictCode.INVALID, b"\xb1" * 32),
            _stored(2, W2, VerdictCode.VALID, b"\xb2" * 32),  # not what a slash is about
        ],
        3: [_stored(3, W1, VerdictCode.VALID, b"\xc1" * 32)],
    }


EVENTS = [
    ItemEvent("JobSettled", 1, W1),
    ItemEvent("WorkerSlashed", 2, W2),
    ItemEvent("AttestationSkipped", 3, W1),
]


@pytest.mark.parametrize(
    "items",
    [
        None,  # no recorded batch
        [_key(1), _key(2, W2)],  # fewer items than events
        [_key(1), _key(2, W2), _key(3), _key(4)],  # more items than events
        [_key(1), _key(2, W1), _key(3)],  # an item names another worker
        [_key(2, W2), _key(1), _key(3)],  # another order
    ],
)
def test_receipt_outcome__not_lined_up__marks_by_job_worker_and_verdict(items):
    marks, settled, skipped = receipt_outcome(items, EVENTS, _fallback_verdicts())
    assert marks == [
        (VerdictKey(1, W1, b"\xa1" * 32, 7), "settled"),
        (VerdictKey(2, W2, b"\xb1" * 32, 7), "slashed"),
    ]  # the skipped item is left unmarked
    assert (settled, skipped) == (2, 1)


def test_receipt_outcome__fallback_reads_verdicts_through_a_callable_too():
    table = _fallback_verdicts()
    asked: list[int] = []

    def lookup(job_id: int) -> list[StoredVerdict]:
        asked.append(job_id)
        return table.get(job_id, [])

    by_map = receipt_outcome(None, EVENTS, table)
    assert receipt_outcome(None, EVENTS, lookup) == by_map and asked == [1, 2, 3]
    assert receipt_outcome(None, [ItemEvent("JobSettled", 9, W1)], table) == ([], 1, 0)


# -- bundles ----------------------------------------------------------------------------------


def test_bundle_cost__sampled_answer_or_full_result_up_to_the_item_limit():
    assert bundle_cost("sampled") == BUNDLE_ANSWER_BYTES
    assert bundle_cost("sampled", 10 * BUNDLE_ITEM_BYTES) == BUNDLE_ANSWER_BYTES
    assert bundle_cost("full", 1000) == 1000
    assert bundle_cost("full", BUNDLE_ITEM_BYTES) == BUNDLE_ITEM_BYTES
    assert bundle_cost("full", BUNDLE_ITEM_BYTES + 1) is None  # fetched alone


def _entries(url: str, jobs: range, cost: int = 10) -> list[tuple[str, BundleEntry]]:
    return [(url, BundleEntry(_key(j), {"job_id": j}, cost)) for j in jobs]


def _jobs(chunks: list[tuple[str, list[BundleEntry]]]) -> list[tuple[str, list[int]]]:
    return [(url, [e.key.job_id for e in part]) for url, part in chunks]


def test_plan_bundles__per_worker_url_in_first_seen_order():
    a, b = _entries("http://a", range(1, 3)), _entries("http://b", range(3, 6))
    entries = [b[0], a[0], b[1], a[1], b[2]]
    assert _jobs(plan_bundles(entries, 64)) == [("http://b", [3, 4, 5]), ("http://a", [1, 2])]


def test_plan_bundles__split_at_bundle_items__a_single_item_is_no_bundle():
    got = plan_bundles(_entries("http://a", range(1, 6)), 2)
    assert _jobs(got) == [("http://a", [1, 2]), ("http://a", [3, 4])]  # job 5 alone: left out
    assert plan_bundles(_entries("http://a", range(1, 6)), 1) == []  # 1 disables bundles
    assert plan_bundles(_entries("http://a", range(1, 2)), 64) == []


def test_plan_bundles__split_at_the_byte_limit():
    entries = _entries("http://a", range(1, 6), cost=40)
    # 100 bytes a bundle: 40 + 40 fit, a third would make 120.
    assert _jobs(plan_bundles(entries, 64, max_bytes=100)) == [
        ("http://a", [1, 2]),
        ("http://a", [3, 4]),
    ]
    assert _jobs(plan_bundles(entries, 64, max_bytes=80)) == [
        ("http://a", [1, 2]),
        ("http://a", [3, 4]),
    ]  # exactly the limit still fits
    assert plan_bundles(entries, 64, max_bytes=79) == []  # every item alone


def test_plan_bundles__default_limit_is_bundle_bytes():
    big = BUNDLE_ITEM_BYTES
    entries = _entries("http://a", range(20), cost=big)
    sizes = [len(part) for _, part in plan_bundles(entries, 64)]
    assert sizes == [BUNDLE_BYTES // big, BUNDLE_BYTES // big, 20 - 2 * (BUNDLE_BYTES // big)]


# -- retries ----------------------------------------------------------------------------------


def test_retry_delay__exponential_then_capped():
    assert [retry_delay(n, 0.5, 30.0) for n in range(8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert retry_delay(0, 2.0, 1.0) == 1.0  # the cap wins from the first retry


def test_gives_up__at_max_attempts():
    assert not gives_up(7, 8)
    assert gives_up(8, 8) and gives_up(9, 8)
    assert gives_up(1, 1)


def test_reveal_window_over__strictly_after_the_window():
    assert not reveal_window_over(1000, 1060, 60)
    assert reveal_window_over(1000, 1061, 60)
    assert not reveal_window_over(1000, 999, 60)


@pytest.mark.parametrize(
    ("verdict", "status", "live", "expected"),
    [
        (1, 1, (b"\xaa" * 32, 7), True),  # VALID, job open, the submission named: settle it
        (1, 2, (b"\xaa" * 32, 7), False),  # VALID, job paid meanwhile
        (1, 3, (b"\xaa" * 32, 7), False),  # VALID, job refunded
        (2, 2, (b"\xaa" * 32, 7), True),  # INVALID slashes a live submission on a paid job
        (2, 1, (b"\x00" * 32, 0), False),  # INVALID, submission already slashed (cleared)
        (1, 1, (b"\xaa" * 32, 9), False),  # the same commitment, a later submission
        (2, 1, (b"\xbb" * 32, 7), False),  # another commitment
    ],
)
def test_still_settleable__what_settle_would_skip(verdict, status, live, expected):
    from oracle.node.decisions import still_settleable

    assert still_settleable(verdict, status, live, b"\xaa" * 32, 7) is expected
