"""`job wait`'s fold of market events into one state per job, chain-free."""

from __future__ import annotations

from oracle.client.wait import JobWatch

W1, W2 = "0x" + "11" * 20, "0x" + "22" * 20


def test_slash_then_pay__paid_to_the_second_with_the_slash_logged() -> None:
    watch = JobWatch([1, 2])
    watch.apply("ResultSubmitted", {"job_id": 1, "worker": W1}, 0.5)
    watch.apply("ResultSubmitted", {"job_id": 1, "worker": W2}, 0.6)
    watch.apply("WorkerSlashed", {"job_id": 1, "worker": W1, "amount": 10**17}, 1.0)
    watch.apply("JobSettled", {"job_id": 1, "worker": W2}, 2.5)
    one = watch.jobs[1]
    assert (one.state, one.submissions, one.slashed, one.worker, one.ended_at) == (
        "paid",
        2,
        1,
        W2,
        2.5,
    )
    assert one.log == [f"slashed {W1} (100,000,000,000,000,000 wei)"]
    assert not watch.done and watch.exit_code() == 1  # job 2 is still open
    watch.apply("JobSettled", {"job_id": 2, "worker": W1}, 3.0)
    assert watch.done and watch.exit_code() == 0


def test_refunded_or_cancelled__ends_with_exit_1() -> None:
    for name, state in (("JobRefunded", "refunded"), ("JobCancelled", "cancelled")):
        watch = JobWatch([5])
        watch.apply(name, {"job_id": 5, "requester": W1, "amount": 1}, 9.0)
        assert watch.done and watch.jobs[5].state == state and watch.exit_code() == 1


def test_other_jobs_and_events_after_the_end__ignored() -> None:
    watch = JobWatch([3])
    watch.apply("JobSettled", {"job_id": 4, "worker": W1}, 1.0)  # not followed
    assert watch.jobs[3].state == "open"
    watch.apply("JobSettled", {"job_id": 3, "worker": W1}, 2.0)
    watch.apply("WorkerSlashed", {"job_id": 3, "worker": W2, "amount": 1}, 3.0)  # after
    assert (watch.jobs[3].worker, watch.jobs[3].slashed, watch.jobs[3].ended_at) == (W1, 0, 2.0)
