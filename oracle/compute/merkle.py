"""keccak256 Merkle tree over the rows of a result matrix.

Layout (fixed; the commitment on chain depends on it):

* leaf_i   = keccak256(0x00 || i as 8-byte big-endian || row_i bytes as stored)
  where row_i bytes are the row's elements little-endian, row-major (exactly the bytes of
  that row in the serialized result, see :mod:`oracle.protocol.results`);
* node     = keccak256(0x01 || left || right);
* levels are built pairwise left to right; when a level has an odd number of nodes, the last
  one is **promoted** unchanged to the next level (not duplicated, so no second preimage by
  duplication, and a proof simply has no sibling at that level);
* the root of a one-row matrix is its leaf; the domain bytes 0x00/0x01 keep leaves and inner
  nodes apart, and the index in the leaf binds each row to its position.

A proof for row i is the list of sibling hashes from the leaf level up, skipping levels where
the node was promoted. Verifying needs the number of rows (it fixes where promotions happen).

With numba, one compiled keccak-f[1600] (:func:`_keccak_f`) runs 8 messages side by side, one
64-bit word of each in 512 bits of vector registers (the leaves share a length, and every tree
node is one block), in two kernels that both call it:

* building a tree (:meth:`MerkleTree.from_rows`, :func:`merkle_root`): :func:`_keccak_tree`
  hashes the leaves 8 rows at a time, reading the rows' words straight from the result, and
  then each level 8 pairs at a time, so a tree costs one call and no Python per hash (a large
  result is split into power-of-two chunks of rows, each with the subtree above it, over the
  thread pool, and one last call joins their tops);
* checking a sampled answer (:func:`verify_openings`): :func:`_keccak_paths` hashes the
  opened rows and climbs their 8 paths together.

Both are tested against the one hash at a time functions below (pysha3 or eth-hash), which
stay the reference and the fallback (no numba, a single row, 2-3 long rows, or a small result
in a process that has not loaded the tree kernel: see :func:`_tree_nodes`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.compute.parallel import jit as _jit
from oracle.compute.parallel import parallel_for, parallel_map, workers
from oracle.protocol.hashing import keccak256, new_keccak

try:  # safe-pysha3's keccak_256 is the same function with ~4x less per-call overhead than
    # eth-hash's pycryptodome wrapper (1 µs against 4 µs for a node); optional fast path.
    from sha3 import keccak_256 as _fast_keccak
except ImportError:  # pragma: no cover - depends on the environment
    _fast_keccak = None

__all__ = [
    "MerkleTree",
    "jit_warm_up",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "proof_length",
    "verify_openings",
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


_PARALLEL_BYTES = 1 << 20
_JIT_PARALLEL_BYTES = 1 << 19  # from here the compiled tree splits its rows over the pool
_JIT_LOAD_BYTES = 8 << 20  # from here a first tree loads numba (see _tree_nodes)
_tree_loaded = False  # the tree kernel has been loaded (then it serves every size)


def _leaves(data: memoryview, rows: int, row_bytes: int) -> list[bytes]:
    # Threads pay off only on large results; a small one is hashed inline.
    parts = min(rows, 4 * workers()) if len(data) >= _PARALLEL_BYTES else 1
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
    def from_rows(
        cls, data: bytes | bytearray | memoryview, rows: int, *, jit: bool = True
    ) -> MerkleTree:
        """Build the tree over ``rows`` equal-length rows stored back to back in ``data``.

        With numba (and ``jit``) every hash, leaves and inner nodes, comes from the compiled
        :func:`_keccak_tree`, 8 messages side by side; otherwise (and in the few cases where
        that is not faster, see :func:`_tree_nodes`) one keccak call per hash. Both give the
        same tree.
        """
        view = _row_view(data, rows)
        built = _tree_nodes(view, rows) if jit else None
        if built is None:
            return cls.from_leaves(_leaves(view, rows, len(view) // rows))
        nodes, widths = built
        # One 32-byte void item per hash (little-endian words: the digest's bytes in order);
        # tolist() makes them bytes, trailing zero bytes kept (unlike an "S32" view).
        flat = nodes.view("V32").ravel().tolist()
        levels = []
        start = 0
        for width in widths:
            levels.append(tuple(flat[start : start + width]))
            start += width
        return cls(tuple(levels))

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


def merkle_root(data: bytes | bytearray | memoryview, rows: int, *, jit: bool = True) -> bytes:
    """Root of the tree over ``rows`` equal rows of ``data`` (as :meth:`MerkleTree.from_rows`,
    without turning the other hashes into Python objects)."""
    view = _row_view(data, rows)
    built = _tree_nodes(view, rows) if jit else None
    if built is None:
        return MerkleTree.from_leaves(_leaves(view, rows, len(view) // rows)).root
    return built[0][-1].tobytes()


def _row_view(data: bytes | bytearray | memoryview, rows: int) -> memoryview:
    """``data`` as flat bytes, checked to split into ``rows`` equal rows."""
    view = memoryview(data).cast("B")
    if rows <= 0 or len(view) % rows:
        raise ValueError(f"{len(view)} bytes do not split into {rows} equal rows")
    return view


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


# keccak-f[1600] round constants (FIPS 202 §3.2.5).
_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
_RC_ARRAY = np.array(_RC, dtype=np.uint64)
_RATE_WORDS = 17  # keccak256: rate 1088 bits = 17 lanes of 64 bits
_GROUP = 8  # messages hashed side by side: one 512-bit vector per state word


def _keccak_f(st: Any, rcs: Any) -> None:  # pragma: no cover - compiled by numba
    """keccak-f[1600] in place on 8 states side by side (compiled by numba, never run as Python).

    ``st`` (200 uint64) is word-major: word w of lane l at st[w·8 + l], so that each step of a
    round is one vector operation over the 8 lanes (LLVM emits two 256-bit ones, with AVX-512
    rotates, on the Xeon this was measured on); ``rcs`` holds the 24 round constants. The one
    copy of the permutation: the kernels below call it, and :func:`oracle.compute.parallel.jit`
    compiles it into each of them.
    """
    for rnd in range(24):
        rc = rcs[rnd]
        for lane in range(8):
            a00 = st[0 * 8 + lane]
            a01 = st[1 * 8 + lane]
            a02 = st[2 * 8 + lane]
            a03 = st[3 * 8 + lane]
            a04 = st[4 * 8 + lane]
            a05 = st[5 * 8 + lane]
            a06 = st[6 * 8 + lane]
            a07 = st[7 * 8 + lane]
            a08 = st[8 * 8 + lane]
            a09 = st[9 * 8 + lane]
            a10 = st[10 * 8 + lane]
            a11 = st[11 * 8 + lane]
            a12 = st[12 * 8 + lane]
            a13 = st[13 * 8 + lane]
            a14 = st[14 * 8 + lane]
            a15 = st[15 * 8 + lane]
            a16 = st[16 * 8 + lane]
            a17 = st[17 * 8 + lane]
            a18 = st[18 * 8 + lane]
            a19 = st[19 * 8 + lane]
            a20 = st[20 * 8 + lane]
            a21 = st[21 * 8 + lane]
            a22 = st[22 * 8 + lane]
            a23 = st[23 * 8 + lane]
            a24 = st[24 * 8 + lane]
            c0 = a00 ^ a05 ^ a10 ^ a15 ^ a20
            c1 = a01 ^ a06 ^ a11 ^ a16 ^ a21
            c2 = a02 ^ a07 ^ a12 ^ a17 ^ a22
            c3 = a03 ^ a08 ^ a13 ^ a18 ^ a23
            c4 = a04 ^ a09 ^ a14 ^ a19 ^ a24
            d0 = c4 ^ ((c1 << np.uint64(1)) | (c1 >> np.uint64(63)))
            d1 = c0 ^ ((c2 << np.uint64(1)) | (c2 >> np.uint64(63)))
            d2 = c1 ^ ((c3 << np.uint64(1)) | (c3 >> np.uint64(63)))
            d3 = c2 ^ ((c4 << np.uint64(1)) | (c4 >> np.uint64(63)))
            d4 = c3 ^ ((c0 << np.uint64(1)) | (c0 >> np.uint64(63)))
            b00 = a00 ^ d0
            t = a06 ^ d1
            b01 = (t << np.uint64(44)) | (t >> np.uint64(20))
            t = a12 ^ d2
            b02 = (t << np.uint64(43)) | (t >> np.uint64(21))
            t = a18 ^ d3
            b03 = (t << np.uint64(21)) | (t >> np.uint64(43))
            t = a24 ^ d4
            b04 = (t << np.uint64(14)) | (t >> np.uint64(50))
            t = a03 ^ d3
            b05 = (t << np.uint64(28)) | (t >> np.uint64(36))
            t = a09 ^ d4
            b06 = (t << np.uint64(20)) | (t >> np.uint64(44))
            t = a10 ^ d0
            b07 = (t << np.uint64(3)) | (t >> np.uint64(61))
            t = a16 ^ d1
            b08 = (t << np.uint64(45)) | (t >> np.uint64(19))
            t = a22 ^ d2
            b09 = (t << np.uint64(61)) | (t >> np.uint64(3))
            t = a01 ^ d1
            b10 = (t << np.uint64(1)) | (t >> np.uint64(63))
            t = a07 ^ d2
            b11 = (t << np.uint64(6)) | (t >> np.uint64(58))
            t = a13 ^ d3
            b12 = (t << np.uint64(25)) | (t >> np.uint64(39))
            t = a19 ^ d4
            b13 = (t << np.uint64(8)) | (t >> np.uint64(56))
            t = a20 ^ d0
            b14 = (t << np.uint64(18)) | (t >> np.uint64(46))
            t = a04 ^ d4
            b15 = (t << np.uint64(27)) | (t >> np.uint64(37))
            t = a05 ^ d0
            b16 = (t << np.uint64(36)) | (t >> np.uint64(28))
            t = a11 ^ d1
            b17 = (t << np.uint64(10)) | (t >> np.uint64(54))
            t = a17 ^ d2
            b18 = (t << np.uint64(15)) | (t >> np.uint64(49))
            t = a23 ^ d3
            b19 = (t << np.uint64(56)) | (t >> np.uint64(8))
            t = a02 ^ d2
            b20 = (t << np.uint64(62)) | (t >> np.uint64(2))
            t = a08 ^ d3
            b21 = (t << np.uint64(55)) | (t >> np.uint64(9))
            t = a14 ^ d4
            b22 = (t << np.uint64(39)) | (t >> np.uint64(25))
            t = a15 ^ d0
            b23 = (t << np.uint64(41)) | (t >> np.uint64(23))
            t = a21 ^ d1
            b24 = (t << np.uint64(2)) | (t >> np.uint64(62))
            st[0 * 8 + lane] = b00 ^ (~b01 & b02) ^ rc
            st[1 * 8 + lane] = b01 ^ (~b02 & b03)
            st[2 * 8 + lane] = b02 ^ (~b03 & b04)
            st[3 * 8 + lane] = b03 ^ (~b04 & b00)
            st[4 * 8 + lane] = b04 ^ (~b00 & b01)
            st[5 * 8 + lane] = b05 ^ (~b06 & b07)
            st[6 * 8 + lane] = b06 ^ (~b07 & b08)
            st[7 * 8 + lane] = b07 ^ (~b08 & b09)
            st[8 * 8 + lane] = b08 ^ (~b09 & b05)
            st[9 * 8 + lane] = b09 ^ (~b05 & b06)
            st[10 * 8 + lane] = b10 ^ (~b11 & b12)
            st[11 * 8 + lane] = b11 ^ (~b12 & b13)
            st[12 * 8 + lane] = b12 ^ (~b13 & b14)
            st[13 * 8 + lane] = b13 ^ (~b14 & b10)
            st[14 * 8 + lane] = b14 ^ (~b10 & b11)
            st[15 * 8 + lane] = b15 ^ (~b16 & b17)
            st[16 * 8 + lane] = b16 ^ (~b17 & b18)
            st[17 * 8 + lane] = b17 ^ (~b18 & b19)
            st[18 * 8 + lane] = b18 ^ (~b19 & b15)
            st[19 * 8 + lane] = b19 ^ (~b15 & b16)
            st[20 * 8 + lane] = b20 ^ (~b21 & b22)
            st[21 * 8 + lane] = b21 ^ (~b22 & b23)
            st[22 * 8 + lane] = b22 ^ (~b23 & b24)
            st[23 * 8 + lane] = b23 ^ (~b24 & b20)
            st[24 * 8 + lane] = b24 ^ (~b20 & b21)


def _keccak_paths(  # pragma: no cover - compiled by numba
    msgs: Any,
    index: Any,
    plen: Any,
    sibs: Any,
    rows: int,
    g_lo: int,
    g_hi: int,
    rcs: Any,
    leaves: Any,
    tops: Any,
    bad: Any,
) -> None:
    """Leaf hashes and Merkle paths of 8 rows at a time (compiled by numba, never run as Python).

    ``msgs`` (lanes × words, uint64 little-endian): each lane a whole padded leaf message
    0x00 ‖ index ‖ row ‖ keccak padding, all the same length (a multiple of 17 words).
    ``sibs`` (lanes × levels × 4): each lane's proof, ``plen`` hashes long. Fills ``leaves``
    (the leaf hashes), ``tops`` (the hash each proof leads to, to compare with the root) and
    ``bad`` (the proof has the wrong number of hashes for its row) for groups g_lo ≤ g < g_hi.
    The state is kept word-major (st[w·8 + lane]) so that each step of a round is one vector
    operation over the 8 lanes; nodes (0x01 ‖ left ‖ right, 65 bytes, one block) are built in
    place, so the leaf blocks and the tree levels run through the same permutation
    (:func:`_keccak_f`).
    """
    nblk = msgs.shape[1] // 17
    levels = 0
    width = rows
    while width > 1:
        width = (width + 1) // 2
        levels += 1
    st = np.zeros(25 * 8, dtype=np.uint64)
    h = np.zeros(4 * 8, dtype=np.uint64)
    pos = np.zeros(8, dtype=np.int64)
    used = np.zeros(8, dtype=np.int64)
    has = np.zeros(8, dtype=np.bool_)
    for g in range(g_lo, g_hi):
        base = g * 8
        st[:] = 0
        width = rows
        for step in range(nblk + levels):
            if step < nblk:
                for w in range(17):
                    for lane in range(8):
                        st[w * 8 + lane] ^= msgs[base + lane, step * 17 + w]
            else:
                if step == nblk:
                    for lane in range(8):
                        for q in range(4):
                            h[q * 8 + lane] = st[q * 8 + lane]
                            leaves[base + lane, q] = st[q * 8 + lane]
                        pos[lane] = index[base + lane]
                        used[lane] = 0
                        bad[base + lane] = False
                else:
                    for lane in range(8):
                        if has[lane]:
                            for q in range(4):
                                h[q * 8 + lane] = st[q * 8 + lane]
                    width = (width + 1) // 2
                for lane in range(8):
                    p = pos[lane]
                    has[lane] = (p ^ 1) < width
                    for w in range(25):
                        st[w * 8 + lane] = np.uint64(0)
                    if has[lane] and used[lane] >= plen[base + lane]:
                        bad[base + lane] = True
                        has[lane] = False
                    if has[lane]:
                        k = used[lane]
                        used[lane] = k + 1
                        m0 = np.uint64(0)
                        prev = np.uint64(0)
                        for q in range(8):
                            if (q < 4) == (p % 2 == 0):
                                m0 = h[(q % 4) * 8 + lane]
                            else:
                                m0 = sibs[base + lane, k, q % 4]
                            if q == 0:
                                st[lane] = np.uint64(1) | (m0 << np.uint64(8))
                            else:
                                st[q * 8 + lane] = (prev >> np.uint64(56)) | (m0 << np.uint64(8))
                            prev = m0
                        st[8 * 8 + lane] = (prev >> np.uint64(56)) | np.uint64(0x100)
                        st[16 * 8 + lane] = np.uint64(0x8000000000000000)
                    pos[lane] = p // 2
            _keccak_f(st, rcs)
        for lane in range(8):
            if levels == 0:
                for q in range(4):
                    leaves[base + lane, q] = st[q * 8 + lane]
                    tops[base + lane, q] = st[q * 8 + lane]
                bad[base + lane] = plen[base + lane] != 0
            else:
                if has[lane]:
                    for q in range(4):
                        h[q * 8 + lane] = st[q * 8 + lane]
                for q in range(4):
                    tops[base + lane, q] = h[q * 8 + lane]
                if used[lane] != plen[base + lane]:
                    bad[base + lane] = True


def _paths_signatures(t: Any) -> list[Any]:
    u64, i64 = t.uint64, t.int64
    return [
        t.void(
            t.Array(u64, 2, "C"),
            t.Array(i64, 1, "C"),
            t.Array(i64, 1, "C"),
            t.Array(u64, 3, "C"),
            i64,
            i64,
            i64,
            t.Array(u64, 1, "C"),
            t.Array(u64, 2, "C"),
            t.Array(u64, 2, "C"),
            t.Array(t.bool_, 1, "C"),
        )
    ]


def _keccak_tree(  # pragma: no cover - compiled by numba
    data: Any,
    rows: int,
    lo: int,
    hi: int,
    first: int,
    top: int,
    rcs: Any,
    nodes: Any,
) -> None:
    """Tree levels ``first`` … ``top`` above rows lo ≤ i < hi (compiled by numba).

    ``data`` holds ``rows`` equal rows back to back (uint8); ``nodes`` (uint64 little-endian
    words, 4 per hash) holds every level back to back, leaves (level 0) first. With first = 0
    the leaves of rows lo … hi-1 are hashed 8 side by side: each word of each leaf message
    0x00 ‖ index ‖ row ‖ keccak padding is read straight from ``data`` (no padded copy of the
    result) into the word-major state. Then each level up to ``top`` gets the nodes above that
    range, pairs 8 at a time (a node, 0x01 ‖ left ‖ right, is one block), the odd last node of
    a level copied. lo must be a multiple of 8 and of 2^top, hi one of 2^top or ``rows``, so
    that the range's nodes depend on its rows only and ranges can be hashed in parallel.
    """
    st = np.zeros(25 * 8, dtype=np.uint64)
    if first == 0:
        row_bytes = data.shape[0] // rows
        size = 9 + row_bytes  # leaf message length
        nblk = size // 136 + 1  # blocks after padding (always at least one padding byte)
        last = nblk * 136 - 1  # the message byte that takes the final padding bit 0x80
        # Row bytes are read as 64-bit words from the aligned part of data (two loads and shifts
        # per message word; rows not a multiple of 8 bytes long just shift each lane differently).
        pre = (8 - data.ctypes.data % 8) % 8  # bytes before the first aligned word
        pre = min(pre, data.shape[0])
        d64 = data[pre : pre + (data.shape[0] - pre) // 8 * 8].view(np.uint64)
        nw = d64.shape[0]
        index = np.zeros(8, dtype=np.int64)
        start = np.zeros(8, dtype=np.int64)  # each lane's row offset in data
        for g in range(lo // 8, -(-hi // 8)):
            st[:] = 0
            for lane in range(8):
                index[lane] = min(g * 8 + lane, rows - 1)  # an idle lane hashes the last row again
                start[lane] = index[lane] * row_bytes
            for b in range(nblk):
                for w in range(17):
                    mo = (b * 17 + w) * 8  # message offset of this word
                    if mo >= 9 and mo + 8 <= size:  # row bytes only (most words of a long row)
                        for lane in range(8):
                            s0 = start[lane] + mo - 9 - pre  # offset of the word's bytes in d64
                            j = s0 // 8
                            sh = np.uint64(8 * (s0 % 8))
                            if s0 >= 0 and sh == 0:
                                v = d64[j]
                            elif s0 >= 0 and j + 1 < nw:
                                v = (d64[j] >> sh) | (d64[j + 1] << (np.uint64(64) - sh))
                            else:  # the first or last few bytes of data: byte by byte
                                v = np.uint64(0)
                                for t in range(8):
                                    v |= np.uint64(data[s0 + pre + t]) << np.uint64(8 * t)
                            st[w * 8 + lane] ^= v
                    elif mo > size:  # padding only: zeros, and 0x80 in the very last byte
                        if mo + 7 == last:
                            for lane in range(8):
                                st[w * 8 + lane] ^= np.uint64(0x8000000000000000)
                    else:  # the prefix, or the row's end and the first padding byte
                        for lane in range(8):
                            v = np.uint64(0)
                            for t in range(8):
                                x = mo + t
                                byte = 0
                                if 0 < x < 9:
                                    byte = (index[lane] >> (8 * (8 - x))) & 0xFF
                                elif 9 <= x < size:
                                    byte = np.int64(data[start[lane] + x - 9])
                                elif x == size:
                                    byte = 0x01
                                if x == last:
                                    byte |= 0x80
                                v |= np.uint64(byte) << np.uint64(8 * t)
                            st[w * 8 + lane] ^= v
                _keccak_f(st, rcs)
            for lane in range(min(8, rows - g * 8)):
                for q in range(4):
                    nodes[g * 8 + lane, q] = st[q * 8 + lane]
    off = 0  # where the level below starts in nodes
    width = rows  # its number of nodes
    for level in range(1, top + 1):
        nxt = off + width
        if level >= first:
            k_lo = lo >> level
            k_hi = -(-hi >> level)  # the range's nodes at this level: k_lo ≤ k < k_hi
            pairs = min(k_hi, width // 2)  # nodes below that with two children
            for k0 in range(k_lo, pairs, 8):
                for lane in range(min(8, pairs - k0)):
                    left = off + 2 * (k0 + lane)
                    prev = np.uint64(0)
                    for q in range(8):
                        m = nodes[left + q // 4, q % 4]
                        if q == 0:
                            st[lane] = np.uint64(1) | (m << np.uint64(8))
                        else:
                            st[q * 8 + lane] = (prev >> np.uint64(56)) | (m << np.uint64(8))
                        prev = m
                    st[8 * 8 + lane] = (prev >> np.uint64(56)) | np.uint64(0x100)
                    for w in range(9, 25):
                        st[w * 8 + lane] = np.uint64(0)
                    st[16 * 8 + lane] = np.uint64(0x8000000000000000)
                _keccak_f(st, rcs)
                for lane in range(min(8, pairs - k0)):
                    for q in range(4):
                        nodes[nxt + k0 + lane, q] = st[q * 8 + lane]
            if width % 2 and k_hi > width // 2:  # the promoted last node is in the range
                for q in range(4):
                    nodes[nxt + width // 2, q] = nodes[nxt - 1, q]
        off = nxt
        width = (width + 1) // 2


def _tree_signatures(t: Any) -> list[Any]:
    i64 = t.int64
    return [
        t.void(
            t.Array(t.uint8, 1, "C", readonly=True),
            i64,
            i64,
            i64,
            i64,
            i64,
            t.Array(t.uint64, 1, "C"),
            t.Array(t.uint64, 2, "C"),
        )
    ]


def _tree_kernel(load: bool = True) -> Any:
    """The compiled :func:`_keccak_tree`, or None (no numba, a big-endian machine, or not
    loaded yet and not ``load``)."""
    global _tree_loaded
    if sys.byteorder != "little":  # pragma: no cover - the kernel reads bytes as native words
        return None
    if not (load or _tree_loaded):
        return None
    kernel = _jit(_keccak_tree, _tree_signatures, (_keccak_f,))
    _tree_loaded = _tree_loaded or kernel is not None
    return kernel


def _tree_nodes(view: memoryview, rows: int) -> tuple[np.ndarray, list[int]] | None:
    """Every hash of the tree over ``rows`` equal rows of ``view`` by :func:`_keccak_tree`.

    Returns (nodes, level widths): nodes (uint64, 4 little-endian words per hash) holds the
    levels back to back, leaves first. None without numba, and where one keccak call per hash
    is faster: a single row, or 2-3 long rows (the pool then hashes each row on its own
    thread, while the kernel would fill 2-3 of its 8 lanes on one thread), or while the kernel
    is not loaded yet for a result under ``_JIT_LOAD_BYTES``: importing numba and loading the
    kernel from its cache takes ~0.3 s (compiling it ~2 s), which a process hashing only small
    results (a worker) would not win back soon; :func:`jit_warm_up` loads it for good.
    """
    if rows < 2 or (rows < 4 and len(view) >= _PARALLEL_BYTES and workers() > 1):
        return None
    kernel = _tree_kernel(load=len(view) >= _JIT_LOAD_BYTES)
    if kernel is None:
        return None
    widths = [rows]
    while widths[-1] > 1:
        widths.append((widths[-1] + 1) // 2)
    top = len(widths) - 1
    nodes = np.empty((sum(widths), 4), dtype=np.uint64)
    data = np.frombuffer(view.toreadonly(), dtype=np.uint8)
    # Chunks of a power-of-two number of rows (a multiple of 8), 2-4 per thread so that a core
    # slowed by other work does fewer: each hashes its leaves and the subtree above them.
    per = -(-rows // (_GROUP * 4 * workers()))  # groups of 8 rows per chunk, at least
    span = _GROUP << (per - 1).bit_length()
    if len(view) < _JIT_PARALLEL_BYTES or span >= rows or workers() == 1:
        kernel(data, rows, 0, rows, 0, top, _RC_ARRAY, nodes)
        return nodes, widths
    below = span.bit_length() - 1  # the chunks' subtrees reach this level
    parallel_for(
        lambda c: kernel(
            data, rows, c * span, min(rows, (c + 1) * span), 0, below, _RC_ARRAY, nodes
        ),
        -(-rows // span),
    )
    kernel(data, rows, 0, rows, below + 1, top, _RC_ARRAY, nodes)
    return nodes, widths


def jit_warm_up() -> bool:
    """Compile (or load from numba's cache) the tree and opened-row kernels; True with numba.

    The verifier's ``prepare`` calls it for sampled jobs, and the oracle node at start-up, so
    that checks never compile (loading the second kernel from the cache takes ~5 ms). Once it
    has run, trees of every size use the compiled kernel (before, only large ones load it).
    """
    paths = _jit(_keccak_paths, _paths_signatures, (_keccak_f,))
    return paths is not None and _tree_kernel() is not None


def verify_openings(
    root: bytes,
    indices: Sequence[int],
    rows_data: Sequence[bytes | bytearray | memoryview],
    proofs: Sequence[Sequence[bytes]],
    rows: int,
    *,
    jit: bool = True,
) -> tuple[list[bytes], list[bool]]:
    """Leaf hashes of opened rows and, for each, whether its proof leads to ``root``.

    Exactly ``[leaf_hash(i, row)]`` and ``[verify_proof_leaf(root, i, leaf, proof, rows)]``
    (indices must be in [0, rows)), computed in one compiled pass when numba is present,
    ``jit`` and the rows have equal lengths: 8 rows are hashed side by side with vector
    operations (5x pysha3's one-message speed here, with AVX-512), then their 8 paths climb the
    tree together, with no Python per node. Otherwise one keccak call per leaf and per node.
    """
    count = len(indices)
    if len(rows_data) != count or len(proofs) != count:
        raise ValueError("indices, rows and proofs differ in length")
    if any(not 0 <= i < rows for i in indices):
        raise ValueError(f"opened row index out of range [0, {rows})")
    if count == 0:
        return [], []
    row_len = memoryview(rows_data[0]).nbytes
    kernel = _jit(_keccak_paths, _paths_signatures, (_keccak_f,)) if jit else None
    if kernel is None or any(memoryview(r).nbytes != row_len for r in rows_data):
        leaves = _leaf_list(indices, rows_data)
        oks = [
            verify_proof_leaf(root, i, leaf, proof, rows)
            for i, leaf, proof in zip(indices, leaves, proofs, strict=True)
        ]
        return leaves, oks
    lanes = -(-count // _GROUP) * _GROUP
    size = 9 + row_len
    padded = (size // (8 * _RATE_WORDS) + 1) * 8 * _RATE_WORDS
    buf = np.empty((lanes, padded), dtype=np.uint8)
    buf[count:] = 0  # idle lanes of the last group
    buf[:, 0] = LEAF_PREFIX[0]
    buf[:count, 1:9] = np.asarray(indices, dtype=">u8").view(np.uint8).reshape(count, 8)
    buf[:count, 9:size] = np.frombuffer(b"".join(rows_data), dtype=np.uint8).reshape(count, -1)
    buf[:, size:] = 0
    buf[:, size] = 0x01  # keccak padding: 0x01 … 0x80
    buf[:, padded - 1] |= 0x80
    levels = max(1, (rows - 1).bit_length())  # tree levels above the leaves
    sibs = np.zeros((lanes, levels, 4), dtype=np.uint64)
    plen = np.zeros(lanes, dtype=np.int64)
    sizes = [len(p) for p in proofs]
    flat = [h for p in proofs for h in p]
    joined = b"".join(flat)
    # 32 bytes in all times the count, and none shorter: every hash is 32 bytes
    if len(joined) == 32 * len(flat) and (not flat or min(map(len, flat)) == 32):
        hashes = np.frombuffer(joined, dtype="<u8").reshape(-1, 4)
        well_formed = [n <= levels for n in sizes]
        if len(set(sizes)) == 1 and well_formed[0]:  # the usual case: one proof length
            sibs[:count, : sizes[0]] = hashes.reshape(count, sizes[0], 4)
            plen[:count] = sizes[0]
        else:
            offset = 0
            for lane, n in enumerate(sizes):
                if well_formed[lane]:
                    sibs[lane, :n] = hashes[offset : offset + n]
                    plen[lane] = n
                offset += n
    else:  # some hash is not 32 bytes: sort it out proof by proof
        well_formed = [
            n <= levels and all(len(h) == 32 for h in p) for n, p in zip(sizes, proofs, strict=True)
        ]
        for lane, proof in enumerate(proofs):
            if well_formed[lane] and proof:
                sibs[lane, : len(proof)] = np.frombuffer(b"".join(proof), "<u8").reshape(-1, 4)
                plen[lane] = len(proof)
    index = np.zeros(lanes, dtype=np.int64)
    index[:count] = indices
    leaves_out = np.empty((lanes, 4), dtype=np.uint64)
    tops = np.empty((lanes, 4), dtype=np.uint64)
    bad = np.zeros(lanes, dtype=np.bool_)
    msgs = buf.view("<u8")
    parallel_for(
        lambda g: kernel(msgs, index, plen, sibs, rows, g, g + 1, _RC_ARRAY, leaves_out, tops, bad),
        lanes // _GROUP,
    )
    leaf_bytes = leaves_out[:count].astype("<u8").tobytes()
    leaves = [leaf_bytes[32 * i : 32 * (i + 1)] for i in range(count)]
    expected = np.frombuffer(bytes(root), dtype="<u8") if len(root) == 32 else None
    hit = (tops[:count] == expected).all(axis=1) if expected is not None else np.zeros(count, bool)
    oks = [bool(hit[i]) and not bad[i] and well_formed[i] for i in range(count)]
    return leaves, oks


def _leaf_list(
    indices: Sequence[int], rows_data: Sequence[bytes | bytearray | memoryview]
) -> list[bytes]:
    """Leaf hashes one call each, split over the pool (keccak releases the GIL on rows)."""
    pairs = list(zip(indices, rows_data, strict=True))
    if len(pairs) < 8:
        return [leaf_hash(i, row) for i, row in pairs]
    half = (len(pairs) + 1) // 2
    parts = parallel_map(
        lambda chunk: [leaf_hash(i, row) for i, row in chunk], [pairs[:half], pairs[half:]]
    )
    return parts[0] + parts[1]
