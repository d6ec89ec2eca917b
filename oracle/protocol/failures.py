"""Why a job could not be prepared or computed, and whether trying again can help.

A worker computing a job, an oracle preparing its verification and an auditor re-deriving a
verdict all meet the same failures. Some are the job's own and can never pass for this
process (a malformed spec, blob inputs with no blob store to read them from, a stored spec or
input that does not hash to its name or is over the size limits): such a job is set aside with
its reason, at once, and never holds up the others. The rest may pass (a spec store or a node
down, a spec not published yet, a chain call that failed): they are tried again with capped
exponential backoff (:func:`retry_delay`) until the job's deadline.

:func:`classify_failure` decides which is which from the exception alone, so each service
applies the same rule and the rule is tested without a chain, a store or a network.
"""

from __future__ import annotations

from typing import NamedTuple

from oracle.exceptions import (
    BlobError,
    BlobHashMismatch,
    BlobNameError,
    BlobNotFound,
    BlobTooLarge,
    ChainError,
    InputError,
    PeerError,
    SpecError,
)

__all__ = ["Failure", "classify_failure", "retry_delay"]


class Failure(NamedTuple):
    """A failure, classified."""

    #: True: the job can never be done by this process (set it aside); False: try again later.
    permanent: bool
    #: What went wrong, for the state, the log and the operator.
    reason: str
    #: The failure says a dependency (a store, a node) did not answer: it is down, not merely
    #: missing one item.
    unreachable: bool = False


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def classify_failure(exc: BaseException) -> Failure:
    """Permanent or transient, with the reason to record (see the module docstring).

    Anything not recognised is transient: an unexpected error is retried with backoff, which
    never blocks other jobs and never gives a job up for what may be a passing fault."""
    if isinstance(exc, SpecError):
        return Failure(True, f"malformed spec: {_text(exc)}")
    if isinstance(exc, InputError):
        return Failure(True, f"inputs unusable: {_text(exc)}")
    if isinstance(exc, BlobTooLarge | BlobHashMismatch | BlobNameError):
        return Failure(True, f"stored bytes unusable: {_text(exc)}")
    if isinstance(exc, BlobNotFound):
        return Failure(False, f"not in any store (yet): {_text(exc)}")
    if isinstance(exc, PeerError | ConnectionError | TimeoutError):
        # BlobTransferError is a ConnectionError: the store did not answer (or answered 5xx).
        return Failure(False, f"unreachable: {_text(exc)}", unreachable=True)
    if isinstance(exc, BlobError | ChainError | OSError):
        return Failure(False, f"{type(exc).__name__}: {_text(exc)}")
    return Failure(False, f"unexpected {type(exc).__name__}: {_text(exc)}")


def retry_delay(attempts: int, backoff: float, max_backoff: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: exponential from
    ``backoff``, capped at ``max_backoff``."""
    return min(max_backoff, backoff * 2 ** min(attempts, 64))
