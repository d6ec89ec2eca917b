"""Errors raised by the pouw off-chain library.

Every error derives from :class:`PouwError` and also from the builtin it resembles, so callers
may catch either (``except KeyError`` keeps working for a missing blob).
"""

from __future__ import annotations


class PouwError(Exception):
    """Base class of every error raised by pouw."""


class SpecError(PouwError, ValueError):
    """A job spec is malformed, oversized, unknown or outside the documented limits."""


class InputError(PouwError, ValueError):
    """A job's inputs cannot be produced (missing blob, wrong size, NaN/Inf in a float input)."""


class ResultFormatError(PouwError, ValueError):
    """A result or challenge answer is not in the documented serialization format."""


class BlobError(PouwError):
    """Base class of blob store errors."""


class BlobNotFound(BlobError, KeyError):
    """No blob with this name exists in the store."""


class BlobTooLarge(BlobError, ValueError):
    """A blob is larger than the caller's size limit."""


class BlobHashMismatch(BlobError, ValueError):
    """A blob's content does not hash to its name (corrupt, truncated or forged)."""


class BlobNameError(BlobError, ValueError):
    """A blob name is not 64 lower-case hex characters (optionally 0x-prefixed)."""


class BlobTransferError(BlobError, ConnectionError):
    """A blob could not be transferred (timeout, connection error, unexpected HTTP status)."""


class BackendError(PouwError, RuntimeError):
    """A compute backend is unavailable or failed."""


class DeploymentNotFound(PouwError, FileNotFoundError):
    """No deployment of pouw is recorded for this network (run `pouw deploy` first)."""


class ChainError(PouwError, RuntimeError):
    """A chain call failed or the chain is not in the state the protocol expects."""


class VerdictConflict(PouwError, ValueError):
    """A different verdict is already recorded for this submission and seed (never replaced)."""


class KeyLoadError(PouwError, ValueError):
    """A signing key cannot be loaded (missing file, wrong password, malformed key)."""


class ConfigError(PouwError, ValueError):
    """A command-line option or setting is missing or malformed."""


class PeerError(PouwError, ConnectionError):
    """A peer oracle or worker endpoint did not answer as the protocol requires."""


class AuditInputError(PouwError, ValueError):
    """An audit cannot run on the given input (no such job, nothing settled, data missing)."""
