# pragma version ~=0.4.3
"""
@title One entry of a committed matrix product, checked on-chain
@license MIT
@notice The building blocks of a single-entry dispute (issue 15): the chunk
        of a committed result holding one entry, opened against its Merkle
        root, and the exact dot product of an int8 row of A with an int8
        column of B. A matrix product's entries are independent dot products,
        so one wrong entry C[i][j] is refuted by opening the chunk of row i of
        C that holds it, row i of A and column j of B and recomputing C[i][j]
        here. This module holds no state.

        The tree is pouw's (oracle/compute/merkle.py), fixed because the
        on-chain commitment depends on it:
        leaf_x = keccak256(0x00 ‖ x as 8-byte big-endian ‖ leaf bytes),
        node = keccak256(0x01 ‖ left ‖ right), levels built pairwise left to
        right with the last node of an odd level promoted unchanged (it has no
        sibling in a proof). Input trees have one leaf per row of A / column
        of B. A result tree (m rows of n 4-byte entries) has p leaves per row
        (`_chunks_per_row`): p is the largest power of two that divides n and
        keeps a chunk of n/p entries at least MIN_CHUNK bytes long (p = 1 for
        an odd n or a row under 2 * MIN_CHUNK bytes), and the m * p leaves are
        the rows' chunks in row-major order, leaf i * p + c = chunk c of row
        i. Entry C[i][j] is element j % (n/p) of leaf i * p + j // (n/p).

        The dot product packs eight 32-bit lanes in a word: each int8 byte is
        biased to unsigned (xor 0x80, a + 128 in [0, 255]), a 32-byte word is
        split into four words holding one byte per lane, B's lanes are
        reversed, and one multiplication leaves the eight-term dot product of
        the biased values in the top lane (every lane's coefficient is at most
        8 * 255 * 255 < 2**32, so no carry crosses a lane; the terms above bit
        256 wrap away). The biased sums sit beside it in lanes, and
        sum(a * b) = sum(a' * b') - 128 * (sum(a') + sum(b')) + 16384 * k.
"""


# The largest row of A / column of B (int8 elements): k <= 4096.
MAX_K: constant(uint256) = 4096
# The words of a MAX_K-byte row.
MAX_WORDS: constant(uint256) = 128
# Levels of a row tree: up to 2**64 rows.
MAX_DEPTH: constant(uint256) = 64
# The smallest chunk of a result row that is a leaf of its own (bytes), and
# the size of a result entry (int32 / float32).
MIN_CHUNK: constant(uint256) = 512
ENTRY_BYTES: constant(uint256) = 4

# 1 in the low bit of each 32-bit lane (8 lanes).
_LANE_ONES: constant(uint256) = (
    1 + 2**32 + 2**64 + 2**96 + 2**128 + 2**160 + 2**192 + 2**224
)
# 0xFF in the low byte of each 32-bit lane.
_LANE_BYTE: constant(uint256) = 255 * _LANE_ONES
# 0x80 in every byte.
_BIAS: constant(uint256) = 128 * (max_value(uint256) // 255)
# Lane-reversal masks: the low 64 bits of each 128-bit half; the low 32 bits of each
# 64-bit quarter.
_SWAP64: constant(uint256) = (2**64 - 1) * (1 + 2**128)
_SWAP32: constant(uint256) = (2**32 - 1) * (1 + 2**64 + 2**128 + 2**192)
_LOW32: constant(uint256) = 2**32 - 1
# Per 32-bit lane: its low 16 bits; the low byte of each 16-bit half; its low 24 and 23 bits.
_LANE_LO16: constant(uint256) = (2**16 - 1) * _LANE_ONES
_LANE_LO8: constant(uint256) = 255 * (_LANE_ONES + 2**16 * _LANE_ONES)
_LANE_24: constant(uint256) = (2**24 - 1) * _LANE_ONES
_LANE_23: constant(uint256) = (2**23 - 1) * _LANE_ONES
# The even 32-bit lanes (the low half of each 64-bit lane); 1 in each 64-bit lane.
_EVEN32: constant(uint256) = (2**32 - 1) * (1 + 2**64 + 2**128 + 2**192)
_ONES64: constant(uint256) = 1 + 2**64 + 2**128 + 2**192
# The tensors of a seeded matmul: A (by rows) and B (by columns).
_TENSOR_A: constant(uint256) = 0
_TENSOR_B: constant(uint256) = 1


@internal
@pure
def _leaf(index: uint256, row: Bytes[16384]) -> bytes32:
    """
    @dev The leaf hash of row `index` of a result (its bytes as stored).
    @param index The row's index (below 2**64).
    @param row The row's bytes.
    @return bytes32 keccak256(0x00 ‖ index as 8 bytes ‖ row).
    """
    return keccak256(concat(b"\x00", convert(convert(index, uint64), bytes8), row))


@internal
@pure
def _opens(
    root: bytes32, leaf: bytes32, index: uint256, rows: uint256, proof: DynArray[bytes32, 64]
) -> bool:
    """
    @dev True iff `leaf` is leaf `index` of the `rows`-leaf tree with root `root`,
         the proof holding exactly the siblings of its path (none where its node
         was promoted).
    @param root The committed row Merkle root.
    @param leaf The leaf hash of the row (see `_leaf`).
    @param index The row's index.
    @param rows The tree's number of leaves.
    @param proof The sibling hashes from the leaf level up.
    @return bool Whether the proof leads to the root.
    """
    if index >= rows:
        return False
    h: bytes32 = leaf
    pos: uint256 = index
    width: uint256 = rows
    used: uint256 = 0
    for _: uint256 in range(MAX_DEPTH):
        if width <= 1:
            break
        if (pos ^ 1) < width:
            if used >= len(proof):
                return False
            sibling: bytes32 = proof[used]
            used += 1
            if pos % 2 == 0:
                h = keccak256(concat(b"\x01", h, sibling))
            else:
                h = keccak256(concat(b"\x01", sibling, h))
        pos //= 2
        width = (width + 1) // 2
    return used == len(proof) and h == root


@internal
@pure
def _chunks_per_row(n: uint256, item: uint256) -> uint256:
    """
    @dev Leaves per row of a result tree (module notice; the same rule as
         oracle.compute.merkle.chunks_per_row).
    @param n Entries per row (at least 1).
    @param item Bytes per entry.
    @return uint256 p: the largest power of two dividing n with (n / p) * item >= MIN_CHUNK.
    """
    p: uint256 = 1
    for _: uint256 in range(MAX_DEPTH):
        w: uint256 = n // p
        if w % 2 != 0 or (w // 2) * item < MIN_CHUNK:
            break
        p *= 2
    return p


@internal
@pure
def _entry_bits(
    c_root: bytes32,
    m: uint256,
    n: uint256,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> uint256:
    """
    @dev The 32 bits of entry C[i][j] of an m x n result of 4-byte entries,
         from the chunk of row i that holds it; reverts unless (i, j) lies in
         the matrix, the chunk has n / p entries and opens `c_root` as leaf
         i * p + j // (n / p) of the m * p leaves.
    @param c_root The result's Merkle root.
    @param m Rows of C.
    @param n Columns of C.
    @param i The row of the entry.
    @param j The column of the entry.
    @param c_chunk The chunk (n / p little-endian entries; the whole row if p = 1).
    @param c_proof Its proof.
    @return uint256 The entry's bits (little-endian as stored, read as a number).
    """
    assert i < m and j < n, "entry: outside the matrix"
    p: uint256 = self._chunks_per_row(n, ENTRY_BYTES)
    width: uint256 = n // p
    assert len(c_chunk) == ENTRY_BYTES * width, "entry: chunk of C is not n/p entries"
    leaf: uint256 = i * p + j // width
    assert self._opens(c_root, self._leaf(leaf, c_chunk), leaf, m * p, c_proof), "entry: bad proof of C"
    return self._u32_at(c_chunk, j % width)


@internal
@pure
def _reverse_lanes(x: uint256) -> uint256:
    """
    @dev The eight 32-bit lanes of `x` in reverse order.
    """
    y: uint256 = (x >> 128) | (x << 128)
    y = ((y >> 64) & _SWAP64) | ((y & _SWAP64) << 64)
    return ((y >> 32) & _SWAP32) | ((y & _SWAP32) << 32)


@internal
@pure
def _word_dot(wa: uint256, wb: uint256) -> (uint256, uint256):
    """
    @dev The dot product of two words of 32 biased bytes (each byte a + 128; padding
         bytes 0), and the lane-wise sums of their bytes (module notice).
    @param wa 32 biased bytes of the first vector, big-endian (first element on top).
    @param wb The same 32 elements of the second vector.
    @return (uint256, uint256) sum(a' * b') over the word, and its bytes' lane sums.
    """
    rb: uint256 = self._reverse_lanes(wb)
    # the four bytes of each lane, unrolled (a loop of four costs ~40% more here)
    a0: uint256 = wa & _LANE_BYTE
    b0: uint256 = rb & _LANE_BYTE
    a1: uint256 = (wa >> 8) & _LANE_BYTE
    b1: uint256 = (rb >> 8) & _LANE_BYTE
    a2: uint256 = (wa >> 16) & _LANE_BYTE
    b2: uint256 = (rb >> 16) & _LANE_BYTE
    a3: uint256 = (wa >> 24) & _LANE_BYTE
    b3: uint256 = (rb >> 24) & _LANE_BYTE
    prod: uint256 = unsafe_add(
        unsafe_add(unsafe_mul(a0, b0) >> 224, unsafe_mul(a1, b1) >> 224),
        unsafe_add(unsafe_mul(a2, b2) >> 224, unsafe_mul(a3, b3) >> 224),
    )
    sums: uint256 = unsafe_add(
        unsafe_add(unsafe_add(a0, b0), unsafe_add(a1, b1)),
        unsafe_add(unsafe_add(a2, b2), unsafe_add(a3, b3)),
    )
    return prod, sums


@internal
@pure
def _unbias(acc: uint256, sums: uint256, k: uint256) -> int256:
    """
    @dev sum(a * b) from sum(a' * b') and the lane sums of the biased bytes:
         each lane of `sums` is at most 8 * 255 * 2 * MAX_WORDS < 2**32, so one
         multiplication folds the lanes into the top one.
    """
    total: uint256 = unsafe_mul(sums, _LANE_ONES) >> 224
    return convert(acc, int256) - 128 * convert(total, int256) + 16384 * convert(k, int256)


@internal
@pure
def _tail_mask(k: uint256, start: uint256) -> uint256:
    """
    @dev The mask keeping the bytes of a word at `start` that lie before `k`.
    """
    if start + 32 <= k:
        return max_value(uint256)
    return max_value(uint256) ^ ((1 << (8 * (32 - (k - start)))) - 1)


@internal
@pure
def _dot_int8(a: Bytes[MAX_K], b: Bytes[MAX_K]) -> int256:
    """
    @dev The exact dot product of two int8 vectors of the same length.
    @param a The first vector, one signed byte per element.
    @param b The second vector, as long as `a`.
    @return int256 sum(a[t] * b[t]).
    """
    k: uint256 = len(a)
    assert len(b) == k, "entry: lengths differ"
    acc: uint256 = 0
    sums: uint256 = 0
    for w: uint256 in range((k + 31) // 32, bound=MAX_WORDS):
        start: uint256 = w * 32
        wa: uint256 = 0
        wb: uint256 = 0
        if start + 32 <= k:
            wa = extract32(a, start, output_type=uint256) ^ _BIAS
            wb = extract32(b, start, output_type=uint256) ^ _BIAS
        else:
            # The tail: zero-padded, and the padding's bias cleared so it adds nothing.
            keep: uint256 = self._tail_mask(k, start)
            ta: Bytes[4128] = concat(slice(a, start, k - start), empty(bytes32))
            tb: Bytes[4128] = concat(slice(b, start, k - start), empty(bytes32))
            wa = (extract32(ta, 0, output_type=uint256) ^ _BIAS) & keep
            wb = (extract32(tb, 0, output_type=uint256) ^ _BIAS) & keep
        prod: uint256 = 0
        s: uint256 = 0
        prod, s = self._word_dot(wa, wb)
        acc = unsafe_add(acc, prod)
        sums = unsafe_add(sums, s)
    return self._unbias(acc, sums, k)


@internal
@pure
def _keccak_word(seed: uint256, tensor: uint256, line: uint256, word: uint256) -> uint256:
    """
    @dev Word `word` of line `line` of a seeded tensor (oracle/compute/keccak_inputs.py):
         keccak256(abi.encode(seed, tensor, line, word)), first byte on top.
    """
    return convert(keccak256(abi_encode(seed, tensor, line, word)), uint256)


@internal
@pure
def _dot_int8_seeded(seed: uint256, i: uint256, j: uint256, k: uint256) -> int256:
    """
    @dev The exact dot product of row i of A and column j of B of an int8 job
         whose inputs are generated from `seed` (A is tensor 0, B tensor 1
         generated column-major): both regenerated here, nothing from calldata.
    @param seed The job's input seed.
    @param i The row of A.
    @param j The column of B.
    @param k Their length.
    @return int256 sum(A[i][t] * B[t][j]).
    """
    assert k <= MAX_K, "entry: k too large"
    acc: uint256 = 0
    sums: uint256 = 0
    for w: uint256 in range((k + 31) // 32, bound=MAX_WORDS):
        keep: uint256 = self._tail_mask(k, w * 32)
        wa: uint256 = (self._keccak_word(seed, _TENSOR_A, i, w) ^ _BIAS) & keep
        wb: uint256 = (self._keccak_word(seed, _TENSOR_B, j, w) ^ _BIAS) & keep
        prod: uint256 = 0
        s: uint256 = 0
        prod, s = self._word_dot(wa, wb)
        acc = unsafe_add(acc, prod)
        sums = unsafe_add(sums, s)
    return self._unbias(acc, sums, k)


@internal
@pure
def _u32_at(row: Bytes[16384], j: uint256) -> uint256:
    """
    @dev The 32 bits of entry `j` of a result row or chunk of 4-byte entries
         (little-endian, as pouw stores results).
    """
    buf: Bytes[36] = concat(slice(row, 4 * j, 4), empty(bytes32))
    be: uint256 = extract32(buf, 0, output_type=uint256) >> 224
    return ((be & 255) << 24) | (((be >> 8) & 255) << 16) | (((be >> 16) & 255) << 8) | (be >> 24)


@internal
@pure
def _int32_of(le: uint256) -> int256:
    """
    @dev The int32 whose 32 bits are `le`.
    """
    if le >= 2**31:
        return convert(le, int256) - 2**32
    return convert(le, int256)


@internal
@pure
def _refutes_int8(
    c_root: bytes32,
    a_root: bytes32,
    b_root: bytes32,
    m: uint256,
    n: uint256,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
    a_row: Bytes[MAX_K],
    a_proof: DynArray[bytes32, 64],
    b_col: Bytes[MAX_K],
    b_proof: DynArray[bytes32, 64],
) -> bool:
    """
    @dev Whether entry (i, j) of an int8 blob job's committed C is wrong: the
         chunk of row i of C holding it opens the result root (`_entry_bits`),
         row i of A opens A's root and column j of B (row j of B's column-major
         blob) opens B's root, and C[i][j] != dot(A[i, :], B[:, j]). Reverts if
         any opening fails, so a false return means the entry is right.
    @param c_root The result's Merkle root (the worker's commitment opens it).
    @param a_root A's row root (m rows of k bytes), from the job's spec.
    @param b_root B's column root (n columns of k bytes), from the job's spec.
    @param m Rows of A and C.
    @param n Columns of B and C.
    @param i The row of the entry.
    @param j The column of the entry.
    @param c_chunk The chunk of row i of C holding column j, little-endian int32.
    @param c_proof Its proof.
    @param a_row Row i of A.
    @param a_proof Its proof.
    @param b_col Column j of B.
    @param b_proof Its proof.
    @return bool True iff C[i][j] is not the dot product.
    """
    c: int256 = self._int32_of(self._entry_bits(c_root, m, n, i, j, c_chunk, c_proof))
    assert self._opens(a_root, self._leaf(i, a_row), i, m, a_proof), "entry: bad proof of A"
    assert self._opens(b_root, self._leaf(j, b_col), j, n, b_proof), "entry: bad proof of B"
    return c != self._dot_int8(a_row, b_col)


@internal
@pure
def _refutes_int8_seeded(
    c_root: bytes32,
    seed: uint256,
    m: uint256,
    n: uint256,
    k: uint256,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> bool:
    """
    @dev Whether entry (i, j) of a seeded int8 job's committed C is wrong: the
         chunk of row i of C holding it opens the result root (`_entry_bits`)
         and C[i][j] != dot(A[i, :], B[:, j]) with A and B regenerated from
         the seed. Reverts if the opening fails.
    @param c_root The result's Merkle root.
    @param seed The job's input seed.
    @param m Rows of A and C.
    @param n Columns of B and C.
    @param k Columns of A, rows of B.
    @param i The row of the entry.
    @param j The column of the entry.
    @param c_chunk The chunk of row i of C holding column j, little-endian int32.
    @param c_proof Its proof.
    @return bool True iff C[i][j] is not the dot product.
    """
    c: int256 = self._int32_of(self._entry_bits(c_root, m, n, i, j, c_chunk, c_proof))
    return c != self._dot_int8_seeded(seed, i, j, k)


@internal
@pure
def _fp32_lanes(word: uint256, keep: uint256) -> (uint256, uint256):
    """
    @dev Eight fp32 grid elements of a stream word as 32-bit lanes: v = (u >> 8)
         with u the little-endian uint32 of each 4 bytes (element (v - 2**23) *
         2**-23), and |v - 2**23|; lanes outside `keep` zeroed. Element e of the
         word sits in lane 7 - e.
    """
    # bswap each 32-bit lane (b0 b1 b2 b3 -> b3 b2 b1 b0), then drop b0
    y: uint256 = ((word >> 16) & _LANE_LO16) | ((word & _LANE_LO16) << 16)
    y = ((y >> 8) & _LANE_LO8) | ((y & _LANE_LO8) << 8)
    v: uint256 = (y >> 8) & _LANE_24
    neg: uint256 = ((v >> 23) & _LANE_ONES) ^ _LANE_ONES  # 1 where v < 2**23
    mag: uint256 = unsafe_add((v & _LANE_23) ^ unsafe_mul(neg, 2**23 - 1), neg)
    return v & keep, mag & keep


@internal
@pure
def _dot_fp32_seeded(seed: uint256, i: uint256, j: uint256, k: uint256) -> (int256, uint256):
    """
    @dev The exact dot product of row i of A and column j of B of a seeded fp32
         job, in units of 2**-46, and the sum of the products' magnitudes in the
         same units. Each element is a multiple of 2**-23 (oracle/compute/
         keccak_inputs.py: bytes 4e..4e+3 of the line as a little-endian uint32
         u, element ((u >> 8) - 2**23) * 2**-23), so both sums are integers.
         Eight elements per stream word, in 32-bit lanes; B's 64-bit lanes are
         reversed and each word split into its even and odd 32-bit lanes, so one
         multiplication sums four 48-bit products in the top 64-bit lane
         (sum(a * b) = sum(v_a * v_b) - 2**23 * sum(v_a + v_b) + 2**46 * k).
    @return (int256, uint256) sum(a * b) * 2**46 and sum(|a * b|) * 2**46.
    """
    assert k <= MAX_K, "entry: k too large"
    vv: uint256 = 0
    mm: uint256 = 0
    sv: uint256 = 0
    for w: uint256 in range((k + 7) // 8, bound=4 * MAX_WORDS):
        keep: uint256 = max_value(uint256)
        if w * 8 + 8 > k:
            keep = keep ^ ((1 << (32 * (w * 8 + 8 - k))) - 1)
        va: uint256 = 0
        ma: uint256 = 0
        vb: uint256 = 0
        mb: uint256 = 0
        # `_keccak_word` inlined: its 1,024 calls at k = 4096 cost 85k gas (1.18M, not 1.10M)
        va, ma = self._fp32_lanes(
            convert(keccak256(abi_encode(seed, _TENSOR_A, i, w)), uint256), keep
        )
        vb, mb = self._fp32_lanes(
            convert(keccak256(abi_encode(seed, _TENSOR_B, j, w)), uint256), keep
        )
        both: uint256 = unsafe_add(va, vb)  # 32-bit lanes below 2**25; summed in 64-bit ones
        sv = unsafe_add(sv, unsafe_add(both & _EVEN32, (both >> 32) & _EVEN32))
        # B's four 64-bit lanes reversed (the 32-bit pairs inside stay together)
        r: uint256 = (vb >> 128) | (vb << 128)
        vb = ((r >> 64) & _SWAP64) | ((r & _SWAP64) << 64)
        r = (mb >> 128) | (mb << 128)
        mb = ((r >> 64) & _SWAP64) | ((r & _SWAP64) << 64)
        vv = unsafe_add(
            vv,
            unsafe_add(
                unsafe_mul(va & _EVEN32, vb & _EVEN32) >> 192,
                unsafe_mul((va >> 32) & _EVEN32, (vb >> 32) & _EVEN32) >> 192,
            ),
        )
        mm = unsafe_add(
            mm,
            unsafe_add(
                unsafe_mul(ma & _EVEN32, mb & _EVEN32) >> 192,
                unsafe_mul((ma >> 32) & _EVEN32, (mb >> 32) & _EVEN32) >> 192,
            ),
        )
    total_v: uint256 = unsafe_mul(sv, _ONES64) >> 192  # the four 64-bit lanes folded
    exact: int256 = (
        convert(vv, int256) - 2**23 * convert(total_v, int256) + 2**46 * convert(k, int256)
    )
    return exact, mm


@internal
@pure
def _fp32_outside(bits: uint256, exact: int256, mag: uint256, k: uint256) -> bool:
    """
    @dev Whether the float32 `bits` lies outside the error bound of every fp32
         summation order of a k-term dot product whose exact value is
         exact * 2**-46 and whose products' magnitudes sum to mag * 2**-46:
         |c - exact| > gamma_k * mag with gamma_k = k*u / (1 - k*u), u = 2**-24
         (no underflow: every product and partial sum is a multiple of 2**-46),
         decided in integers as |c * 2**46 - exact| * (2**24 - k) > k * mag.
         NaN and infinities are outside.
    """
    expo: uint256 = (bits >> 23) & 255
    if expo == 255:
        return True
    frac: uint256 = bits & (2**23 - 1)
    mant: uint256 = frac
    if expo == 0:
        expo = 1  # subnormal: frac * 2**-149
    else:
        mant = frac | 2**23
    value: int256 = convert(mant, int256)  # c = value * 2**(expo - 150)
    if bits >> 31 == 1:
        value = -value
    lhs_scale: uint256 = 2**24 - k
    # c * 2**46 = value * 2**(expo - 104)
    diff: int256 = 0
    rhs: uint256 = k * mag
    if expo >= 104:
        diff = value * convert(1 << (expo - 104), int256) - exact
    else:
        up: uint256 = 1 << (104 - expo)
        diff = value - exact * convert(up, int256)
        rhs = rhs * up
    return convert(abs(diff), uint256) * lhs_scale > rhs


@internal
@pure
def _refutes_fp32_seeded(
    c_root: bytes32,
    seed: uint256,
    m: uint256,
    n: uint256,
    k: uint256,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> bool:
    """
    @dev Whether entry (i, j) of a seeded fp32 job's committed C is outside the
         bound no honest fp32 summation order exceeds (`_fp32_outside`), with
         row i of A and column j of B regenerated from the seed. Reverts if the
         chunk of row i holding the entry does not open the result root
         (`_entry_bits`).
    @param c_root The result's Merkle root.
    @param seed The job's input seed.
    @param m Rows of A and C.
    @param n Columns of B and C.
    @param k Columns of A, rows of B.
    @param i The row of the entry.
    @param j The column of the entry.
    @param c_chunk The chunk of row i of C holding column j, little-endian float32.
    @param c_proof Its proof.
    @return bool True iff C[i][j] is refuted.
    """
    bits: uint256 = self._entry_bits(c_root, m, n, i, j, c_chunk, c_proof)
    exact: int256 = 0
    mag: uint256 = 0
    exact, mag = self._dot_fp32_seeded(seed, i, j, k)
    return self._fp32_outside(bits, exact, mag, k)
