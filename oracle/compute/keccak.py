"""The compiled keccak-f[1600] kernels behind the Merkle trees of :mod:`oracle.compute.merkle`.

One keccak-f[1600] (:func:`keccak_f`) runs 8 messages side by side, one 64-bit word of each in
512 bits of vector registers (the leaves share a length, and every tree node is one block), in
two kernels that both call it:

* :func:`keccak_tree` hashes a result's leaves 8 rows at a time, reading the rows' words
  straight from the result, then each level 8 pairs at a time (one call builds a tree);
* :func:`keccak_paths` hashes opened rows and climbs their 8 Merkle paths together;
* :func:`keccak_counter` generates the keccak counter-mode stream of seeded inputs
  (:mod:`oracle.compute.keccak_inputs`).

These are plain Python functions that are only ever run compiled, through
:func:`oracle.compute.parallel.jit` with the signatures :func:`tree_signatures` and
:func:`paths_signatures` give (``keccak_f`` is compiled into each kernel as a named helper, so
it must stay in this file). The tree layout they compute (prefixes, promotion of an odd last
node) is defined, and checked against one-hash-at-a-time keccak, in
:mod:`oracle.compute.merkle`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "GROUP",
    "RATE_WORDS",
    "RC_ARRAY",
    "counter_signatures",
    "keccak_counter",
    "keccak_f",
    "keccak_paths",
    "keccak_tree",
    "paths_signatures",
    "tree_signatures",
]

# keccak-f[1600] round constants (FIPS 202 §3.2.5).
_RC = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip
RC_ARRAY = np.array(_RC, dtype=np.uint64)
RATE_WORDS = 17  # keccak256: rate 1088 bits = 17 lanes of 64 bits
GROUP = 8  # messages hashed side by side: one 512-bit vector per state word


def keccak_f(st: Any, rcs: Any) -> None:  # pragma: no cover - compiled by numba
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


def keccak_paths(  # pragma: no cover - compiled by numba
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
    (:func:`keccak_f`).
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
            keccak_f(st, rcs)
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


def paths_signatures(t: Any) -> list[Any]:
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


def keccak_tree(  # pragma: no cover - compiled by numba
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
                                    byte = int(data[start[lane] + x - 9])
                                elif x == size:
                                    byte = 0x01
                                if x == last:
                                    byte |= 0x80
                                v |= np.uint64(byte) << np.uint64(8 * t)
                            st[w * 8 + lane] ^= v
                keccak_f(st, rcs)
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
                keccak_f(st, rcs)
                for lane in range(min(8, pairs - k0)):
                    for q in range(4):
                        nodes[nxt + k0 + lane, q] = st[q * 8 + lane]
            if width % 2 and k_hi > width // 2:  # the promoted last node is in the range
                for q in range(4):
                    nodes[nxt + width // 2, q] = nodes[nxt - 1, q]
        off = nxt
        width = (width + 1) // 2


def tree_signatures(t: Any) -> list[Any]:
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


def keccak_counter(  # pragma: no cover - compiled by numba
    seed: int,
    tensor: int,
    lo: int,
    hi: int,
    words: int,
    rcs: Any,
    out: Any,
) -> None:
    """The keccak counter-mode stream of lines lo ≤ r < hi (compiled by numba).

    Word w of line r is keccak256(abi.encode(uint256 seed, uint256 tensor, uint256 r, uint256 w))
    (:mod:`oracle.compute.keccak_inputs` documents the generator): a 128-byte message, one
    block, whose only non-zero lanes are the big-endian low 8 bytes of each of its four 32-byte
    words (lanes 3, 7, 11, 15, byte-swapped) and the padding. Hashed 8 side by side; ``out``
    (uint64, shape (hi − lo, words, 4)) receives each hash's 4 little-endian words.
    """
    st = np.zeros(25 * 8, dtype=np.uint64)
    total = (hi - lo) * words
    vals = np.zeros(4, dtype=np.uint64)
    vals[0] = np.uint64(seed)
    vals[1] = np.uint64(tensor)
    for g in range(0, total, 8):
        n = min(8, total - g)
        st[:] = 0
        for lane in range(n):
            vals[2] = np.uint64(lo + (g + lane) // words)
            vals[3] = np.uint64((g + lane) % words)
            for k in range(4):
                x = vals[k]
                x = ((x & np.uint64(0x00000000FFFFFFFF)) << np.uint64(32)) | (x >> np.uint64(32))
                x = ((x & np.uint64(0x0000FFFF0000FFFF)) << np.uint64(16)) | (
                    (x >> np.uint64(16)) & np.uint64(0x0000FFFF0000FFFF)
                )
                x = ((x & np.uint64(0x00FF00FF00FF00FF)) << np.uint64(8)) | (
                    (x >> np.uint64(8)) & np.uint64(0x00FF00FF00FF00FF)
                )
                st[(4 * k + 3) * 8 + lane] = x
            st[16 * 8 + lane] = np.uint64(0x01) | (np.uint64(0x80) << np.uint64(56))
        keccak_f(st, rcs)
        for lane in range(n):
            r = (g + lane) // words
            w = (g + lane) % words
            for q in range(4):
                out[r, w, q] = st[q * 8 + lane]


def counter_signatures(t: Any) -> list[Any]:
    i64 = t.int64
    return [
        t.void(t.uint64, i64, i64, i64, i64, t.Array(t.uint64, 1, "C"), t.Array(t.uint64, 3, "C"))
    ]
