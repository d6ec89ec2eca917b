"""Pure rules every actor and the contracts agree on: job specs and canonical JSON, hashing,
commitments, challenge seeds, verdicts, EIP-712 attestations, result and bundle codecs, worker
endpoint announcements, the emission schedule and deployment parameters.

No I/O here: nothing in this package opens a file or a socket or talks to a chain. It imports
nothing of pouw but :mod:`oracle.exceptions` (enforced by the import contracts in
``pyproject.toml``).
"""
