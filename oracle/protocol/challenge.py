"""Challenge seeds: public, unpredictable at commit time, re-derivable by anyone.

The seed of a submission is ``keccak256(block_hash ‖ job_id (32 bytes) ‖ worker (20 bytes))``
where ``block_hash`` is the hash of the block right after the block that recorded the
submission (`ResultSubmitted.block_number + 1`). A worker cannot know it when committing, and
two submissions in one block get different seeds. An oracle refuses to verify before that
block exists (and before its confirmation depth).
"""

from __future__ import annotations

from oracle.protocol.commitment import address_bytes
from oracle.protocol.hashing import keccak256


def challenge_block(submission_block: int) -> int:
    """The block whose hash seeds the challenge of a submission recorded in `submission_block`."""
    return submission_block + 1


def challenge_seed(block_hash: bytes, job_id: int, worker: str) -> bytes:
    """The 32-byte challenge seed of (job, worker) given the challenge block's hash."""
    if len(block_hash) != 32:
        raise ValueError(f"block hash must be 32 bytes, got {len(block_hash)}")
    return keccak256(bytes(block_hash) + job_id.to_bytes(32, "big") + address_bytes(worker))
