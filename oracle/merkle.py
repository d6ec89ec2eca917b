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

The verifier of a sampled answer checks many openings at once (:func:`verify_openings`): with
numba, a compiled keccak-f[1600] runs 8 messages side by side, one 64-bit word of each in a
512-bit vector (the leaves share a length, and every tree node is one block), so the opened
rows and all their paths cost one call and no Python per hash. It is tested against the one
proof at a time functions below, which stay the reference and the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle._parallel import jit as _jit
from oracle._parallel import parallel_for, parallel_map, workers
from oracle.hashing import keccak256, new_keccak

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


# keccak-f[1600] round constants (FIPS 202 §3.2.5).
_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
_RATE_WORDS = 17  # keccak256: rate 1088 bits = 17 lanes of 64 bits
_GROUP = 8  # messages hashed side by side: one 512-bit vector per state word


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
    place, so the leaf blocks and the tree levels run through the same permutation code.
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


def jit_warm_up() -> bool:
    """Compile (or load from numba's cache) the batched leaf/path kernel; True if numba is present.

    The verifier's ``prepare`` calls it for sampled jobs, so that checks never compile.
    """
    return _jit(_keccak_paths, _paths_signatures) is not None


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
    kernel = _jit(_keccak_paths, _paths_signatures) if jit else None
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
    rcs = np.array(_RC, dtype=np.uint64)
    msgs = buf.view("<u8")
    parallel_for(
        lambda g: kernel(msgs, index, plen, sibs, rows, g, g + 1, rcs, leaves_out, tops, bad),
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
