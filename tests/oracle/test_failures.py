"""Undoable jobs and dependencies that come and go, decided without a chain: which failures
are permanent (oracle.protocol.failures), what the worker does with a failed job
(oracle.worker.decisions), when a dependency's state change is logged (oracle.infra.health),
and the node's window and threshold decisions."""

from __future__ import annotations

import logging

import pytest

from oracle.exceptions import (
    BackendError,
    BlobHashMismatch,
    BlobNameError,
    BlobNotFound,
    BlobTooLarge,
    BlobTransferError,
    ChainError,
    InputError,
    PeerError,
    SpecError,
)
from oracle.infra.health import Reachability, transition
from oracle.infra.metrics import Metrics
from oracle.node.decisions import settle_window_over, threshold_reachable
from oracle.protocol.failures import classify_failure, retry_delay
from oracle.protocol.spec import parse_spec, work_units
from oracle.worker.decisions import Retry, Skip, accept_reason, after_failure, closed_reason

# -- classification ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "reason_start"),
    [
        (SpecError("spec.m: missing"), "malformed spec: spec.m: missing"),
        (InputError("spec.inputs.a: blob inputs need a blob store"), "inputs unusable: spec."),
        (BlobHashMismatch("content hashes to ab"), "stored bytes unusable:"),
        (BlobTooLarge("blob of 5000 bytes exceeds limit 4096"), "stored bytes unusable:"),
        (BlobNameError("bad name"), "stored bytes unusable:"),
    ],
)
def test_classify__the_jobs_own_fault__permanent(exc, reason_start):
    f = classify_failure(exc)
    assert f.permanent and not f.unreachable
    assert f.reason.startswith(reason_start), f.reason


@pytest.mark.parametrize(
    ("exc", "unreachable"),
    [
        (BlobTransferError("GET http://s/blobs/ab: connection refused"), True),
        (PeerError("POST /sign: timed out"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError("timed out"), True),
        (BlobNotFound("ab" * 32), False),  # the store answered: not published (yet)
        (ChainError("rpc down"), False),
        (OSError(28, "no space left"), False),
        (BackendError("cuda launch failed"), False),  # unexpected: retried, never given up
        (RuntimeError("a bug"), False),
    ],
)
def test_classify__may_pass__transient(exc, unreachable):
    f = classify_failure(exc)
    assert not f.permanent
    assert f.unreachable is unreachable
    assert f.reason


def test_classify__blob_subclasses_before_their_builtin_bases():
    # BlobNotFound is a KeyError, BlobTooLarge a ValueError, BlobTransferError a
    # ConnectionError: each is classified as the blob error it is.
    assert not classify_failure(BlobNotFound("x")).unreachable
    assert classify_failure(BlobTooLarge("x")).permanent
    assert classify_failure(BlobTransferError("x")).unreachable


def test_retry_delay__doubles_then_capped__huge_attempt_counts_do_not_overflow():
    assert [retry_delay(n, 1.0, 60.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(10_000, 1.0, 60.0) == 60.0


# -- the worker's decisions -------------------------------------------------------------------


def test_after_failure__permanent__skip_with_reason():
    d = after_failure(
        InputError("spec.inputs.a: blob inputs need a blob store"),
        3,
        1000.0,
        backoff=1,
        max_backoff=60,
    )
    assert d == Skip("inputs unusable: spec.inputs.a: blob inputs need a blob store")


def test_after_failure__transient__backoff_per_attempt_capped_never_a_skip():
    exc = BlobTransferError("connection refused")
    got = [after_failure(exc, n, 1000.0, backoff=1, max_backoff=60) for n in range(12)]
    assert all(isinstance(d, Retry) and d.unreachable for d in got)  # never given up
    assert [d.delay for d in got if isinstance(d, Retry)] == [1, 2, 4, 8, 16, 32] + [60] * 6
    assert all(d.at == 1000.0 + d.delay for d in got if isinstance(d, Retry))


def test_after_failure__spec_not_published__retried_store_not_down():
    d = after_failure(BlobNotFound("ab" * 32), 0, 5.0, backoff=0.5, max_backoff=10)
    assert isinstance(d, Retry) and d.delay == 0.5 and not d.unreachable
    assert d.reason.startswith("not in any store")


JOB = {"job_id": 7, "deadline": 500, "work_units": 0, "amount": 10**15}


def test_closed_reason__open_job__none():
    assert closed_reason(JOB, set(), 499, last_error=None) is None


def test_closed_reason__cancelled_or_refunded():
    assert closed_reason(JOB, {7}, 0, last_error=None) == "job no longer open"


def test_closed_reason__deadline__with_the_error_it_waited_on():
    assert closed_reason(JOB, set(), 500, last_error=None) == "job past its deadline"
    reason = closed_reason(JOB, set(), 501, last_error="unreachable: connection refused")
    assert reason == "job past its deadline (last waited on: unreachable: connection refused)"


def _spec(**over):
    base = {
        "version": 1,
        "kind": "matmul",
        "dtype": "int8",
        "m": 4,
        "n": 4,
        "k": 4,
        "inputs": {"seed": 1},
        "verify": {"mode": "full"},
    }
    return parse_spec({**base, **over})


@pytest.mark.parametrize(
    ("job", "policy", "expected"),
    [
        ({}, {}, None),
        ({}, {"kinds": ("mlp",)}, "kind matmul not accepted"),
        ({}, {"max_work_units": 10}, "128 work units above the limit"),
        ({"amount": 127}, {"min_price_per_unit": 1.0}, "price per work unit below the minimum"),
        ({"work_units": 64}, {}, "job's work units differ from its spec"),
    ],
)
def test_accept_reason__policy_and_consistency(job, policy, expected):
    spec = _spec()
    j = {**JOB, "work_units": work_units(spec), "amount": 10**15, **job}
    kw = {"kinds": ("matmul", "mlp"), "max_work_units": 1 << 40, "min_price_per_unit": 0.0}
    assert accept_reason(j, spec, **{**kw, **policy}) == expected


# -- a dependency's state, logged once per change ---------------------------------------------


@pytest.mark.parametrize(
    ("was", "now", "expected"),
    [
        (None, False, "down"),  # found down at start-up: said at once
        (None, True, None),  # found up at start-up: the normal case
        (True, False, "down"),
        (False, False, None),  # still down: nothing new
        (False, True, "up"),
        (True, True, None),
    ],
)
def test_transition(was, now, expected):
    assert transition(was, now) == expected


def test_reachability__one_line_per_change_and_a_gauge(caplog):
    m = Metrics("pouw_t")
    log = logging.getLogger("tests.health")
    r = Reachability(log, m, "store_up", down_event="store_down", up_event="store_back")
    caplog.set_level(logging.INFO, logger="tests.health")
    seen = [r.observe(up, n=i) for i, up in enumerate([False, False, False, True, True, False])]
    assert seen == ["down", None, None, "up", None, "down"]
    lines = [(rec.getMessage(), rec.levelno, rec.fields["n"]) for rec in caplog.records]
    assert lines == [
        ("store_down", logging.WARNING, 0),
        ("store_back", logging.INFO, 3),
        ("store_down", logging.WARNING, 5),
    ]
    assert m["store_up"] == 0 and r.up is False
    r.observe(True)
    assert m["store_up"] == 1 and b"pouw_t_store_up 1.0" in m.render()


# -- the node ---------------------------------------------------------------------------------


def test_settle_window_over__deadline_plus_grace():
    assert not settle_window_over(1000, 1600, 600)
    assert settle_window_over(1000, 1601, 600)


@pytest.mark.parametrize(
    ("answered", "threshold", "expected"),
    [(0, 1, True), (0, 2, False), (1, 2, True), (1, 3, False), (2, 3, True), (5, 3, True)],
)
def test_threshold_reachable__answering_peers_plus_self(answered, threshold, expected):
    assert threshold_reachable(answered, threshold) is expected
