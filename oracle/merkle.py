"""keccak256 Merkle tree over the rows of a result matrix.

Layout (fixed; the commitment on chain depends on it):

* leaf_i   = keccak256(0x00 || i as 8-byte big-endian || row_i bytes as stored)
  where row_i bytes are the row's elements little-endian, row-major (exactly the bytes of
  that row in the serialized result, see :mod:`oracle.results`);
* node     = keccak256(0x01 || left || right);
* levels are built pairwise left to right; when a level has an odd number of nodes, the last
  one is **promoted** unchanged to the next level (not duplicated, so no second preimage by
  duplication, and a proof simply has no sibling at that level);
* the root of a one-row matrix is its leaf; the domain bytes 0x00/0x01 keep leaves and inner
  nodes apart, and the index in the leaf binds each row to its position.

A proof for row i is the list of sibling hashes from the leaf level up, skipping levels where
the node was promoted. Verifying needs the number of rows (it fixes where promotions happen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from oracle._parallel import parallel_map, workers
from oracle.hashing import keccak256, new_keccak

try:  # safe-pysha3's keccak_256 is the same function with ~4x less per-call overhead than
    # eth-hash's pycryptodome wrapper (1 µs against 4 µs for a node); optional fast path.
    from sha3 import keccak_256 as _fast_keccak
except ImportError:  # pragma: no cover - depends on the environment
    _fast_keccak = None

__all__ = [
    "MerkleTree",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "proof_length",
    "verify_proof",
    "verify_proof_leaf",
]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(index: int, row: bytes | bytearray | memoryview) -> bytes:
    """keccak256(0x00 || index (8-byte big-endian) || row)."""
    if _fast_keccak is not None:
        fast = _fast_keccak(LEAF_PREFIX + index.to_bytes(8, "big"))
        fast.update(row)
        return bytes(fast.digest())
    hasher = new_keccak(LEAF_PREFIX + index.to_bytes(8, "big"))
    hasher.update(row)
    return hasher.digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """keccak256(0x01 || left || right)."""
    if _fast_keccak is not None:
        return bytes(_fast_keccak(NODE_PREFIX + left + right).digest())
    return keccak256(NODE_PREFIX + left + right)


def _leaves(data: memoryview, rows: int, row_bytes: int) -> list[bytes]:
    parts = min(rows, 4 * workers())
    step = -(-rows // parts)

    def run(lo: int) -> list[bytes]:
        hi = min(rows, lo + step)
        return [leaf_hash(i, data[i * row_bytes : (i + 1) * row_bytes]) for i in range(lo, hi)]

    out: list[bytes] = []
    for chunk in parallel_map(run, list(range(0, rows, step))):
        out.extend(chunk)
    return out


@dataclass(frozen=True)
class MerkleTree:
    """All levels of the tree (``levels[0]`` = leaves, ``levels[-1]`` = [root])."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Build the tree above the given leaf hashes."""
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        levels = [tuple(leaves)]
        while len(levels[-1]) > 1:
            cur = levels[-1]
            nxt = [node_hash(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2:
                nxt.append(cur[-1])
            levels.append(tuple(nxt))
        return cls(tuple(levels))

    @classmethod
    def from_rows(cls, data: bytes | bytearray | memoryview, rows: int) -> MerkleTree:
        """Build the tree over ``rows`` equal-length rows stored back to back in ``data``."""
        view = memoryview(data).cast("B")
        if rows <= 0 or len(view) % rows:
            raise ValueError(f"{len(view)} bytes do not split into {rows} equal rows")
        return cls.from_leaves(_leaves(view, rows, len(view) // rows))

    @property
    def root(self) -> bytes:
        """The 32-byte root."""
        return self.levels[-1][0]

    @property
    def rows(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes for row ``index``, bottom-up, promoted levels skipped."""
        if not 0 <= index < self.rows:
            raise IndexError(f"row {index} out of range [0, {self.rows})")
        out: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                out.append(level[sibling])
            index //= 2
        return out


def merkle_root(data: bytes | bytearray | memoryview, rows: int) -> bytes:
    """Root of the tree over ``rows`` equal rows of ``data``."""
    return MerkleTree.from_rows(data, rows).root


def proof_length(index: int, rows: int) -> int:
    """Number of hashes in the proof of row ``index`` in a tree of ``rows`` leaves."""
    count, width = 0, rows
    while width > 1:
        if (index ^ 1) < width:
            count += 1
        index //= 2
        width = (width + 1) // 2
    return count


def verify_proof(
    root: bytes,
    index: int,
    row: bytes | bytearray | memoryview,
    proof: Sequence[bytes],
    rows: int,
) -> bool:
    """True iff ``row`` is row ``index`` of the ``rows``-row matrix committed to by ``root``."""
    if not 0 <= index < rows or len(proof) != proof_length(index, rows):
        return False
    return verify_proof_leaf(root, index, leaf_hash(index, row), proof, rows)


def verify_proof_leaf(
    root: bytes, index: int, leaf: bytes, proof: Sequence[bytes], rows: int
) -> bool:
    """:func:`verify_proof` from the row's leaf hash (for callers that already hashed the row)."""
    if not 0 <= index < rows or len(proof) != proof_length(index, rows) or len(leaf) != 32:
        return False
    h = leaf
    pos, width, used = index, rows, 0
    while width > 1:
        if (pos ^ 1) < width:
            sibling = proof[used]
            used += 1
            if len(sibling) != 32:
                return False
            h = node_hash(h, sibling) if pos % 2 == 0 else node_hash(sibling, h)
        pos //= 2
        width = (width + 1) // 2
    return h == root
