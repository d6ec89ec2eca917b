# pragma version ~=0.4.3
"""
@title Test harness of the entry_check module
@license MIT
@notice Exposes the module's internal functions so the tests can hold them
        against the off-chain reference (oracle/compute/merkle.py, numpy).
"""

from ..modules import entry_check


@external
@pure
def leaf(index: uint256, row: Bytes[16384]) -> bytes32:
    """
    @notice The leaf hash of row `index`.
    """
    return entry_check._leaf(index, row)


@external
@pure
def opens(
    root: bytes32, index: uint256, rows: uint256, row: Bytes[16384], proof: DynArray[bytes32, 64]
) -> bool:
    """
    @notice Whether `row` is row `index` of the `rows`-row tree with root `root`.
    """
    return entry_check._opens(root, entry_check._leaf(index, row), index, rows, proof)


@external
@pure
def dot_int8(a: Bytes[4096], b: Bytes[4096]) -> int256:
    """
    @notice The exact dot product of two int8 vectors.
    """
    return entry_check._dot_int8(a, b)


@external
@pure
def int32_at(row: Bytes[16384], j: uint256) -> int256:
    """
    @notice Entry `j` of a little-endian int32 row.
    """
    return entry_check._int32_of(entry_check._u32_at(row, j))


@external
@pure
def chunks_per_row(n: uint256, item: uint256) -> uint256:
    """
    @notice Leaves per row of a result tree of n entries of `item` bytes.
    """
    return entry_check._chunks_per_row(n, item)


@external
@pure
def entry_bits(
    c_root: bytes32,
    m: uint256,
    n: uint256,
    i: uint256,
    j: uint256,
    c_chunk: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> uint256:
    """
    @notice The bits of C[i][j] from its opened chunk (reverts if the opening fails).
    """
    return entry_check._entry_bits(c_root, m, n, i, j, c_chunk, c_proof)


@external
@pure
def refutes(
    root: bytes32,
    rows: uint256,
    i: uint256,
    j: uint256,
    c_row: Bytes[16384],
    proof: DynArray[bytes32, 64],
    a_row: Bytes[4096],
    b_col: Bytes[4096],
) -> bool:
    """
    @notice Whether the opened row `i` of the committed C has an entry `j` other
            than dot(a_row, b_col); reverts if the row does not open the root.
    """
    assert entry_check._opens(root, entry_check._leaf(i, c_row), i, rows, proof), "entry: bad proof"
    assert 4 * j + 4 <= len(c_row), "entry: no such column"
    return entry_check._int32_of(entry_check._u32_at(c_row, j)) != entry_check._dot_int8(a_row, b_col)


@external
@pure
def refutes_int8(
    c_root: bytes32,
    a_root: bytes32,
    b_root: bytes32,
    m: uint256,
    n: uint256,
    i: uint256,
    j: uint256,
    c_row: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
    a_row: Bytes[4096],
    a_proof: DynArray[bytes32, 64],
    b_col: Bytes[4096],
    b_proof: DynArray[bytes32, 64],
) -> bool:
    """
    @notice Whether entry (i, j) of an int8 blob job's committed C is wrong (reverts
            if an opening fails).
    """
    return entry_check._refutes_int8(
        c_root, a_root, b_root, m, n, i, j, c_row, c_proof, a_row, a_proof, b_col, b_proof
    )


@external
@pure
def keccak_word(seed: uint256, tensor: uint256, line: uint256, word: uint256) -> uint256:
    """
    @notice Word `word` of line `line` of a seeded tensor.
    """
    return entry_check._keccak_word(seed, tensor, line, word)


@external
@pure
def dot_int8_seeded(seed: uint256, i: uint256, j: uint256, k: uint256) -> int256:
    """
    @notice The dot product of row i of A and column j of B of a seeded int8 job.
    """
    return entry_check._dot_int8_seeded(seed, i, j, k)


@external
@pure
def refutes_int8_seeded(
    c_root: bytes32,
    seed: uint256,
    m: uint256,
    n: uint256,
    k: uint256,
    i: uint256,
    j: uint256,
    c_row: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> bool:
    """
    @notice Whether entry (i, j) of a seeded int8 job's committed C is wrong.
    """
    return entry_check._refutes_int8_seeded(c_root, seed, m, n, k, i, j, c_row, c_proof)


@external
@pure
def fp32_outside(bits: uint256, exact: int256, mag: uint256, k: uint256) -> bool:
    """
    @notice Whether float32 `bits` is outside the honest bound of a dot product.
    """
    return entry_check._fp32_outside(bits, exact, mag, k)


@external
@pure
def dot_fp32_seeded(seed: uint256, i: uint256, j: uint256, k: uint256) -> (int256, uint256):
    """
    @notice The exact dot product (units of 2**-46) and magnitude sum of a seeded fp32 entry.
    """
    return entry_check._dot_fp32_seeded(seed, i, j, k)


@external
@pure
def refutes_fp32_seeded(
    c_root: bytes32,
    seed: uint256,
    m: uint256,
    n: uint256,
    k: uint256,
    i: uint256,
    j: uint256,
    c_row: Bytes[16384],
    c_proof: DynArray[bytes32, 64],
) -> bool:
    """
    @notice Whether entry (i, j) of a seeded fp32 job's committed C is refuted.
    """
    return entry_check._refutes_fp32_seeded(c_root, seed, m, n, k, i, j, c_row, c_proof)
