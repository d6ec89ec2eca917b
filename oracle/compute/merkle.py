"""keccak256 Merkle tree over the rows (or row chunks) of a matrix.

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

**Result trees have chunked leaves.** A result's tree (the worker's commitment,
``oracle.compute.work.result_tree``) does not hash whole rows: each row of n elements of
``itemsize`` bytes is cut into p equal chunks, p = :func:`chunks_per_row` (the largest power of
two that divides n and keeps a chunk at least :data:`MIN_CHUNK_BYTES` = 512 bytes; p = 1, the
plain row tree, for a row under 1024 bytes or an odd n), and the tree above is the tree over
the m·p chunks as rows: literally ``MerkleTree.from_rows(data, m * p)`` over the same
row-major bytes, leaf i·p + c = keccak256(0x00 || i·p + c || chunk c of row i). As p is a power
of two and every row starts on a multiple of p, the p chunks of row i form a complete subtree
(no promotion inside it) whose root sits at position i of level log2(p), and that level and
those above have exactly the shape of the plain m-row tree. So:

* a whole row is opened by its bytes and the proof above its subtree,
  ``tree.row_proof(i, p)`` = ``tree.proof(i * p)[log2(p):]`` (as long as a plain row proof):
  the verifier hashes the p chunks as leaves i·p + c, builds the subtree (:func:`row_root`)
  and climbs the m-row tree from position i (:func:`verify_row`, :func:`verify_openings` with
  ``chunks=p``);
* one entry C[i][j] is opened by its chunk alone (what an on-chain dispute sends,
  ``contracts/modules/entry_check.vy``): chunk c = j // (n/p) of row i and
  ``tree.proof(i * p + c)`` against m·p leaves, the entry at element j mod (n/p) of the chunk.

Input trees (rows of A, columns of B) and the llm trace trees are plain row trees.

With numba, a tree is built and opened rows are checked by the compiled keccak kernels of
:mod:`oracle.compute.keccak` (8 messages side by side):

* building a tree (:meth:`MerkleTree.from_rows`, :func:`merkle_root`): ``keccak_tree`` hashes
  the leaves 8 rows at a time, reading the rows' words straight from the result, and then
  each level 8 pairs at a time, so a tree costs one call and no Python per hash (a large
  result is split into power-of-two chunks of rows, each with the subtree above it, over the
  thread pool, and one last call joins their tops);
* checking a sampled answer (:func:`verify_openings`): ``keccak_paths`` hashes the opened rows
  and climbs their 8 paths together.

Both are tested against the one hash at a time functions below (pysha3 or eth-hash), which
stay the reference and the fallback (no numba, a single row, 2-3 long rows, or a small result
in a process that has not loaded the tree kernel: see :func:`_tree_nodes`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracle.compute.keccak import (
    GROUP,
    RATE_WORDS,
    RC_ARRAY,
    keccak_f,
    keccak_paths,
    keccak_tree,
    paths_signatures,
    tree_signatures,
)
from oracle.compute.parallel import jit as _jit
from oracle.compute.parallel import parallel_for, parallel_map, workers
from oracle.protocol.hashing import IncrementalHash, keccak256, new_keccak

# safe-pysha3's keccak_256 is the same function with ~4x less per-call overhead than eth-hash's
# pycryptodome wrapper (1 µs against 4 µs for a node); optional fast path.
_fast_keccak: Callable[[bytes], IncrementalHash] | None
try:
    from sha3 import keccak_256

    _fast_keccak = keccak_256
except ImportError:  # pragma: no cover - depends on the environment
    _fast_keccak = None

__all__ = [
    "MIN_CHUNK_BYTES",
    "FlatProofs",
    "MerkleTree",
    "chunks_per_row",
    "jit_warm_up",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "proof_length",
    "proof_lengths",
    "row_root",
    "verify_openings",
    "verify_proof",
    "verify_proof_leaf",
    "verify_row",
]

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

#: The smallest chunk of a result row that is a leaf of its own (module docstring; the same
#: constant is ``entry_check.MIN_CHUNK``).
MIN_CHUNK_BYTES = 512


def chunks_per_row(n_elements: int, itemsize: int) -> int:
    """p, the number of leaves per row of a result tree (module docstring): the largest power
    of two that divides ``n_elements`` with chunks of n_elements/p elements still at least
    :data:`MIN_CHUNK_BYTES` long; 1 for an odd count or a row under 2·MIN_CHUNK_BYTES."""
    if n_elements <= 0 or itemsize <= 0:
        raise ValueError(f"a row of {n_elements} elements of {itemsize} bytes")
    p = 1
    while (n_elements // p) % 2 == 0 and (n_elements // p // 2) * itemsize >= MIN_CHUNK_BYTES:
        p *= 2
    return p


def _check_chunks(chunks: int) -> None:
    if chunks < 1 or chunks & (chunks - 1):
        raise ValueError(f"chunks per row must be a power of two, got {chunks}")


def _subtree_top(level: list[bytes]) -> bytes:
    """The root above a power-of-two number of hashes (a complete subtree)."""
    while len(level) > 1:
        level = [node_hash(level[k], level[k + 1]) for k in range(0, len(level), 2)]
    return level[0]


def row_root(index: int, row: bytes | bytearray | memoryview, chunks: int = 1) -> bytes:
    """The hash standing for row ``index`` at level log2(``chunks``) of a chunked tree: its
    ``chunks`` equal chunks hashed as leaves index·chunks + c and the complete subtree above
    them (the row's leaf hash when chunks = 1)."""
    _check_chunks(chunks)
    view = memoryview(row).cast("B")
    if len(view) % chunks:
        raise ValueError(f"a row of {len(view)} bytes does not split into {chunks} chunks")
    if chunks == 1:
        return leaf_hash(index, view)
    size = len(view) // chunks
    base = index * chunks
    return _subtree_top(
        [leaf_hash(base + c, view[c * size : (c + 1) * size]) for c in range(chunks)]
    )


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
        ``keccak_tree``, 8 messages side by side; otherwise (and in the few cases where
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

    def row_proof(self, index: int, chunks: int = 1) -> list[bytes]:
        """The proof of whole row ``index`` of a tree with ``chunks`` leaves per row: the
        siblings above the row's subtree, ``proof(index * chunks)[log2(chunks):]`` (module
        docstring); checked by :func:`verify_row`."""
        _check_chunks(chunks)
        if self.rows % chunks:
            raise ValueError(f"{self.rows} leaves are not rows of {chunks} chunks")
        return self.proof(index * chunks)[chunks.bit_length() - 1 :]

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


def proof_lengths(indices: np.ndarray, rows: int) -> np.ndarray:
    """:func:`proof_length` of every index of ``indices`` (int64 array) at once."""
    pos = np.asarray(indices, dtype=np.int64).copy()
    count = np.zeros(pos.shape, dtype=np.int64)
    width = rows
    while width > 1:
        count += (pos ^ 1) < width
        pos //= 2
        width = (width + 1) // 2
    return count


@dataclass(frozen=True)
class FlatProofs:
    """The proofs of several opened rows back to back, as a decoder finds them: ``hashes``
    (uint64, 4 little-endian words per hash, shape (Σ sizes, 4)) and each proof's length
    (``sizes``). :func:`verify_openings` reads them without splitting them into bytes."""

    hashes: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    def as_lists(self) -> list[list[bytes]]:
        """The proofs as lists of 32-byte hashes."""
        raw = self.hashes.astype("<u8", copy=False).tobytes()
        out, offset = [], 0
        for n in self.sizes.tolist():
            out.append([raw[32 * (offset + i) : 32 * (offset + i + 1)] for i in range(n)])
            offset += n
        return out


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


def verify_row(
    root: bytes,
    index: int,
    row: bytes | bytearray | memoryview,
    proof: Sequence[bytes],
    rows: int,
    chunks: int = 1,
) -> bool:
    """True iff ``row`` is row ``index`` of the ``rows``-row matrix committed to by ``root``
    in a tree of ``chunks`` leaves per row, ``proof`` being :meth:`MerkleTree.row_proof`."""
    _check_chunks(chunks)
    if not 0 <= index < rows or memoryview(row).nbytes % chunks:
        return False
    return verify_proof_leaf(root, index, row_root(index, row, chunks), proof, rows)


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


def _tree_kernel(load: bool = True) -> Any:
    """The compiled ``keccak_tree``, or None (no numba, a big-endian machine, or not
    loaded yet and not ``load``)."""
    global _tree_loaded
    if sys.byteorder != "little":  # pragma: no cover - the kernel reads bytes as native words
        return None
    if not (load or _tree_loaded):
        return None
    kernel = _jit(keccak_tree, tree_signatures, (keccak_f,))
    _tree_loaded = _tree_loaded or kernel is not None
    return kernel


def _tree_nodes(view: memoryview, rows: int) -> tuple[np.ndarray, list[int]] | None:
    """Every hash of the tree over ``rows`` equal rows of ``view`` by ``keccak_tree``.

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
    per = -(-rows // (GROUP * 4 * workers()))  # groups of 8 rows per chunk, at least
    span = GROUP << (per - 1).bit_length()
    if len(view) < _JIT_PARALLEL_BYTES or span >= rows or workers() == 1:
        kernel(data, rows, 0, rows, 0, top, RC_ARRAY, nodes)
        return nodes, widths
    below = span.bit_length() - 1  # the chunks' subtrees reach this level
    parallel_for(
        lambda c: kernel(
            data, rows, c * span, min(rows, (c + 1) * span), 0, below, RC_ARRAY, nodes
        ),
        -(-rows // span),
    )
    kernel(data, rows, 0, rows, below + 1, top, RC_ARRAY, nodes)
    return nodes, widths


def jit_warm_up() -> bool:
    """Compile (or load from numba's cache) the tree and opened-row kernels; True with numba.

    The verifier's ``prepare`` calls it for sampled jobs, and the oracle node at start-up, so
    that checks never compile (loading the second kernel from the cache takes ~5 ms). Once it
    has run, trees of every size use the compiled kernel (before, only large ones load it).
    """
    paths = _jit(keccak_paths, paths_signatures, (keccak_f,))
    return paths is not None and _tree_kernel() is not None


def verify_openings(
    root: bytes,
    indices: Sequence[int],
    rows_data: Sequence[bytes | bytearray | memoryview] | np.ndarray,
    proofs: Sequence[Sequence[bytes]] | FlatProofs,
    rows: int,
    *,
    chunks: int = 1,
    jit: bool = True,
) -> tuple[list[bytes], list[bool]]:
    """Leaf hashes of opened rows and, for each, whether its proof leads to ``root``
    (``rows_data``: one bytes-like per row, or a C-contiguous array with one row per opened
    row, which is copied into the hashing buffer without joining).

    Exactly ``[leaf_hash(i, row)]`` and ``[verify_proof_leaf(root, i, leaf, proof, rows)]``
    (indices must be in [0, rows)), computed in one compiled pass when numba is present,
    ``jit`` and the rows have equal lengths: 8 rows are hashed side by side with vector
    operations (5x pysha3's one-message speed here, with AVX-512), then their 8 paths climb the
    tree together, with no Python per node. Otherwise one keccak call per leaf and per node.

    With ``chunks`` = p > 1 (a result tree of p leaves per row, module docstring) each proof
    is the one above the row's subtree (:meth:`MerkleTree.row_proof`), the hashes returned are
    the rows' subtree roots (:func:`row_root`) and the outcome is exactly :func:`verify_row`'s:
    the chunks are hashed as leaves by the same compiled pass (all chunks of all rows side by
    side), the p − 1 nodes of each subtree and the path above it one keccak call each.
    """
    count = len(indices)
    if len(rows_data) != count or len(proofs) != count:
        raise ValueError("indices, rows and proofs differ in length")
    if any(not 0 <= i < rows for i in indices):
        raise ValueError(f"opened row index out of range [0, {rows})")
    _check_chunks(chunks)
    if count == 0:
        return [], []
    if chunks > 1:
        return _verify_chunked(root, indices, rows_data, proofs, rows, chunks, jit)
    row_len = memoryview(rows_data[0]).nbytes
    kernel = _jit(keccak_paths, paths_signatures, (keccak_f,)) if jit else None
    uneven = not isinstance(rows_data, np.ndarray) and any(
        memoryview(r).nbytes != row_len for r in rows_data
    )
    if kernel is None or uneven:
        as_rows = (
            [r.tobytes() for r in rows_data] if isinstance(rows_data, np.ndarray) else rows_data
        )
        leaves = _leaf_list(indices, as_rows)
        as_lists = proofs.as_lists() if isinstance(proofs, FlatProofs) else proofs
        oks = [
            verify_proof_leaf(root, i, leaf, proof, rows)
            for i, leaf, proof in zip(indices, leaves, as_lists, strict=True)
        ]
        return leaves, oks
    if isinstance(rows_data, np.ndarray):  # rows already side by side: no join, one copy
        data = rows_data.reshape(count, -1).view(np.uint8)
    else:
        data = np.frombuffer(b"".join(rows_data), dtype=np.uint8).reshape(count, -1)
    lanes = -(-count // GROUP) * GROUP
    levels = max(1, (rows - 1).bit_length())  # tree levels above the leaves
    sibs = np.zeros((lanes, levels, 4), dtype=np.uint64)
    plen = np.zeros(lanes, dtype=np.int64)
    if isinstance(proofs, FlatProofs):
        sizes = proofs.sizes.tolist()
        well_formed = [n <= levels for n in sizes]
        _fill_sibs(sibs, plen, proofs.hashes, sizes, well_formed)
    else:
        well_formed = _sibs_of_lists(sibs, plen, proofs, levels)
    leaves_out, tops, bad = _paths_pass(
        kernel, np.asarray(indices, dtype=np.int64), data, sibs, plen, rows
    )
    leaf_bytes = leaves_out[:count].astype("<u8").tobytes()
    leaves = [leaf_bytes[32 * i : 32 * (i + 1)] for i in range(count)]
    expected = np.frombuffer(bytes(root), dtype="<u8") if len(root) == 32 else None
    hit = (tops[:count] == expected).all(axis=1) if expected is not None else np.zeros(count, bool)
    oks = [bool(hit[i]) and not bad[i] and well_formed[i] for i in range(count)]
    return leaves, oks


def _paths_pass(
    kernel: Any,
    indices: np.ndarray,
    data: np.ndarray,
    sibs: np.ndarray,
    plen: np.ndarray,
    rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The compiled pass of :func:`verify_openings`: leaf ``indices[t]`` of row ``data[t]``
    (uint8, one row per opened leaf) hashed 8 lanes side by side, then each lane's path
    (``sibs``, ``plen`` siblings; lanes padded to a multiple of 8) climbed. Returns the leaves,
    the tops reached and which lanes had a malformed path, as (lanes, 4) little-endian words."""
    count, row_len = data.shape
    lanes = sibs.shape[0]
    size = 9 + row_len
    padded = (size // (8 * RATE_WORDS) + 1) * 8 * RATE_WORDS
    buf = np.empty((lanes, padded), dtype=np.uint8)
    buf[count:] = 0  # idle lanes of the last group
    buf[:, 0] = LEAF_PREFIX[0]
    buf[:count, 1:9] = indices.astype(">u8").view(np.uint8).reshape(count, 8)
    buf[:count, 9:size] = data
    buf[:, size:] = 0
    buf[:, size] = 0x01  # keccak padding: 0x01 … 0x80
    buf[:, padded - 1] |= 0x80
    index = np.zeros(lanes, dtype=np.int64)
    index[:count] = indices
    leaves_out = np.empty((lanes, 4), dtype=np.uint64)
    tops = np.empty((lanes, 4), dtype=np.uint64)
    bad = np.zeros(lanes, dtype=np.bool_)
    msgs = buf.view("<u8")
    # groups of 8 lanes in a few ranges per thread (one kernel call per range: many short
    # messages, such as the chunks of opened rows, would otherwise pay a call per group)
    groups = lanes // GROUP
    step = -(-groups // min(groups, 4 * workers()))
    parallel_for(
        lambda s: kernel(
            msgs, index, plen, sibs, rows, s * step, min(groups, (s + 1) * step), RC_ARRAY,
            leaves_out, tops, bad,
        ),
        -(-groups // step),
    )  # fmt: skip
    return leaves_out, tops, bad


def _verify_chunked(
    root: bytes,
    indices: Sequence[int],
    rows_data: Sequence[bytes | bytearray | memoryview] | np.ndarray,
    proofs: Sequence[Sequence[bytes]] | FlatProofs,
    rows: int,
    chunks: int,
    jit: bool,
) -> tuple[list[bytes], list[bool]]:
    """:func:`verify_openings` with ``chunks`` > 1 leaves per row."""
    count = len(indices)
    if isinstance(rows_data, np.ndarray):
        flat = np.ascontiguousarray(rows_data).reshape(count, -1).view(np.uint8)
        splits = flat.shape[1] % chunks == 0 and flat.shape[1] > 0
        good = list(range(count)) if splits else []
        pieces: Any = flat.reshape(count * chunks, -1) if splits else []
    else:
        views = [memoryview(r).cast("B") for r in rows_data]
        good = [t for t, v in enumerate(views) if len(v) and len(v) % chunks == 0]
        if good and len({len(views[t]) for t in good}) == 1:  # equal rows: one join, no split
            joined = b"".join(views[t] for t in good)
            pieces = np.frombuffer(joined, dtype=np.uint8).reshape(len(good) * chunks, -1)
        else:
            pieces = []
            for t in good:
                size = len(views[t]) // chunks
                pieces.extend(views[t][c * size : (c + 1) * size] for c in range(chunks))
    as_lists = proofs.as_lists() if isinstance(proofs, FlatProofs) else proofs
    tops = [b""] * count
    oks = [False] * count
    if not good:
        return tops, oks
    # every chunk as a leaf (index i·p + c), by the compiled pass when it applies: proofs of
    # length 0 make each lane's top its leaf (the root given is not used)
    leaf_index = [indices[t] * chunks + c for t in good for c in range(chunks)]
    kernel = _tree_kernel() if jit else None
    paths = _jit(keccak_paths, paths_signatures, (keccak_f,)) if kernel is not None else None
    equal = isinstance(pieces, np.ndarray) or len({len(v) for v in pieces}) == 1
    if kernel is None or paths is None or not equal:  # one keccak call per node
        leaves, _ = verify_openings(
            b"", leaf_index, pieces, [()] * len(leaf_index), rows * chunks, jit=jit
        )
        for at, t in enumerate(good):
            tops[t] = _subtree_top(leaves[at * chunks : (at + 1) * chunks])
            oks[t] = verify_proof_leaf(root, indices[t], tops[t], as_lists[t], rows)
        return tops, oks
    # every chunk as a leaf by the compiled pass with empty paths (no Python per chunk); a
    # tree of one leaf as far as the kernel knows, so it runs no level above the leaves (the
    # leaf's index is in its message, not taken from the tree)
    if not isinstance(pieces, np.ndarray):
        pieces = np.frombuffer(b"".join(pieces), dtype=np.uint8).reshape(len(leaf_index), -1)
    lanes = -(-len(leaf_index) // GROUP) * GROUP
    chunk_words, _, _ = _paths_pass(
        paths,
        np.asarray(leaf_index, dtype=np.int64),
        pieces,
        np.zeros((lanes, 1, 4), dtype=np.uint64),
        np.zeros(lanes, dtype=np.int64),
        1,
    )
    # The subtrees' levels by keccak_tree over the opened chunks' leaves side by side (whole
    # subtrees, so no pair crosses two rows), then each row's chunk 0 climbs its whole path
    # (its subtree siblings, then the proof given) by keccak_paths: no Python per node.
    depth = chunks.bit_length() - 1
    width = len(leaf_index)
    starts = [sum(width >> u for u in range(level)) for level in range(depth + 1)]
    nodes = np.empty((starts[-1] + (width >> depth), 4), dtype=np.uint64)
    nodes[:width] = chunk_words[:width]
    kernel(_NO_DATA, width, 0, width, 1, depth, RC_ARRAY, nodes)
    top_bytes = nodes[starts[-1] :].astype("<u8").tobytes()
    first = np.arange(len(good), dtype=np.int64)
    sib = np.stack(
        [nodes[starts[level] + first * (chunks >> level) + 1] for level in range(depth)], axis=1
    ).astype("<u8")
    sib_raw = sib.tobytes()
    full = []
    for at, t in enumerate(good):
        tops[t] = top_bytes[32 * at : 32 * (at + 1)]
        own = sib_raw[32 * depth * at : 32 * depth * (at + 1)]
        full.append([own[32 * u : 32 * (u + 1)] for u in range(depth)] + list(as_lists[t]))
    heads: Any = (
        np.ascontiguousarray(pieces[::chunks])
        if isinstance(pieces, np.ndarray)
        else pieces[::chunks]
    )
    _, climbed = verify_openings(
        root, [indices[t] * chunks for t in good], heads, full, rows * chunks, jit=jit
    )
    for at, t in enumerate(good):
        oks[t] = climbed[at]
    return tops, oks


_NO_DATA = np.zeros(8, dtype=np.uint8)  # keccak_tree reads no row above the leaves
_NO_DATA.flags.writeable = False


def _fill_sibs(
    sibs: np.ndarray, plen: np.ndarray, hashes: np.ndarray, sizes: list[int], ok: list[bool]
) -> None:
    """Each well-formed proof's hashes (rows of ``hashes``, back to back) into its lane."""
    if sizes and len(set(sizes)) == 1 and ok[0]:  # the usual case: one proof length
        count = len(sizes)
        sibs[:count, : sizes[0]] = hashes.reshape(count, sizes[0], 4)
        plen[:count] = sizes[0]
        return
    offset = 0
    for lane, n in enumerate(sizes):
        if ok[lane]:
            sibs[lane, :n] = hashes[offset : offset + n]
            plen[lane] = n
        offset += n


def _sibs_of_lists(
    sibs: np.ndarray, plen: np.ndarray, proofs: Sequence[Sequence[bytes]], levels: int
) -> list[bool]:
    """Proofs given as lists of hashes into their lanes; which ones are well formed (no
    longer than the tree, every hash 32 bytes)."""
    sizes = [len(p) for p in proofs]
    flat = [h for p in proofs for h in p]
    joined = b"".join(flat)
    # 32 bytes in all times the count, and none shorter: every hash is 32 bytes
    if len(joined) == 32 * len(flat) and (not flat or min(map(len, flat)) == 32):
        well_formed = [n <= levels for n in sizes]
        _fill_sibs(
            sibs, plen, np.frombuffer(joined, dtype="<u8").reshape(-1, 4), sizes, well_formed
        )
        return well_formed
    # some hash is not 32 bytes: sort it out proof by proof
    well_formed = [
        n <= levels and all(len(h) == 32 for h in p) for n, p in zip(sizes, proofs, strict=True)
    ]
    for lane, proof in enumerate(proofs):
        if well_formed[lane] and proof:
            sibs[lane, : len(proof)] = np.frombuffer(b"".join(proof), "<u8").reshape(-1, 4)
            plen[lane] = len(proof)
    return well_formed


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
