# pragma version ~=0.4.3
"""
@title A matmul job's spec hash, rebuilt on-chain from its terms
@license MIT
@notice A job is named on-chain by keccak256 of its canonical JSON spec
        (oracle/protocol/spec.py). A dispute must know the job's terms (m, n,
        k, dtype, and the seed or the input roots) and cannot parse JSON, so
        it receives the terms and this module writes the canonical JSON they
        stand for, byte for byte, and hashes it. Canonical JSON has sorted
        keys and no whitespace; for a matmul job it is

        {"dtype":"D","inputs":I,"k":K,"kind":"matmul","m":M,"n":N,
         "verify":V,"version":X}

        with I = {"seed":S} or
        {"a":{"blob":"0x..","root":"0x.."},"b":{"blob":"0x..","root":"0x.."}}.
        V (the verification mode) does not change what the entries of C must
        be, so it is passed as the bytes the spec has. Every other field is
        written here from a typed value, and the decimal numbers are followed
        by fixed punctuation, so two different sets of terms never write the
        same bytes: terms whose hash matches the job's are the job's terms.
        This module holds no state.
"""


# @dev The terms of a matmul job, as a dispute passes them.
struct MatmulTerms:
    # Spec version (the version field of the JSON).
    version: uint256
    # True for fp32 inputs, False for int8.
    fp32: bool
    m: uint256
    n: uint256
    k: uint256
    # True: blob inputs (the four hashes below); False: seeded (`seed`).
    blobs: bool
    seed: uint256
    a_blob: bytes32
    a_root: bytes32
    b_blob: bytes32
    b_root: bytes32
    # The spec's "verify" object, as canonical JSON bytes.
    verify: Bytes[64]


# @dev The longest canonical matmul spec these terms write (blob inputs, five
# 20-digit numbers, a 64-byte verify object) is under 500 bytes.
MAX_SPEC: constant(uint256) = 640

# 1 in the low byte of every byte (0x0101...01).
_ONES8: constant(uint256) = max_value(uint256) // 255
# 1 in the low bit of each 16-, 32-, 64- and 128-bit lane.
_ONES16: constant(uint256) = max_value(uint256) // (2**16 - 1)
_ONES32: constant(uint256) = max_value(uint256) // (2**32 - 1)
_ONES64: constant(uint256) = max_value(uint256) // (2**64 - 1)
_ONES128: constant(uint256) = max_value(uint256) // (2**128 - 1)


@internal
@pure
def _hex16(x: uint256) -> bytes32:
    # The 32 lower-case hex digits of a 128-bit value. Each step moves the upper
    # half of every lane's value up by a quarter lane, until each byte of x has
    # a 16-bit lane of its own; then each nibble gets a byte, and a nibble n
    # becomes "0" + n, or "a" + n - 10 when n >= 10 ((n + 6) >> 4 is then 1).
    v: uint256 = ((x & ((2**64 - 1) * 2**64 * _ONES128)) << 64) | (x & ((2**64 - 1) * _ONES128))
    v = ((v & ((2**32 - 1) * 2**32 * _ONES64)) << 32) | (v & ((2**32 - 1) * _ONES64))
    v = ((v & ((2**16 - 1) * 2**16 * _ONES32)) << 16) | (v & ((2**16 - 1) * _ONES32))
    v = ((v & (255 * 256 * _ONES16)) << 8) | (v & (255 * _ONES16))
    v = ((v & (240 * _ONES16)) << 4) | (v & (15 * _ONES16))
    return convert(v + 48 * _ONES8 + (((v + 6 * _ONES8) >> 4) & _ONES8) * 39, bytes32)


@internal
@pure
def _hex(x: bytes32) -> Bytes[64]:
    # The 64 lower-case hex digits of a hash, without "0x".
    word: uint256 = convert(x, uint256)
    return concat(self._hex16(word >> 128), self._hex16(word & (2**128 - 1)))


@internal
@pure
def _dec(x: uint256) -> Bytes[32]:
    # Decimal digits, no sign or leading zeros ("0" for zero), as JSON writes
    # an integer; every number of a spec is below 10**20.
    assert x < 10**20, "spec: number too large"
    word: uint256 = 0
    digits: uint256 = 0
    rest: uint256 = x
    for i: uint256 in range(20):
        word |= (48 + rest % 10) << (8 * digits)
        digits += 1
        rest //= 10
        if rest == 0:
            break
    return slice(convert(word, bytes32), 32 - digits, digits)


@internal
@pure
def _inputs(t: MatmulTerms) -> Bytes[352]:
    # The "inputs" object.
    if not t.blobs:
        return concat(b'{"seed":', self._dec(t.seed), b"}")
    return concat(
        b'{"a":{"blob":"0x',
        self._hex(t.a_blob),
        b'","root":"0x',
        self._hex(t.a_root),
        b'"},"b":{"blob":"0x',
        self._hex(t.b_blob),
        b'","root":"0x',
        self._hex(t.b_root),
        b'"}}',
    )


@internal
@pure
def _matmul_spec(t: MatmulTerms) -> Bytes[MAX_SPEC]:
    # The canonical JSON spec of a matmul job with these terms.
    dtype: Bytes[4] = b"int8"
    if t.fp32:
        dtype = b"fp32"
    return concat(
        b'{"dtype":"',
        dtype,
        b'","inputs":',
        self._inputs(t),
        b',"k":',
        self._dec(t.k),
        b',"kind":"matmul","m":',
        self._dec(t.m),
        b',"n":',
        self._dec(t.n),
        b',"verify":',
        t.verify,
        b',"version":',
        self._dec(t.version),
        b"}",
    )


@internal
@pure
def _matmul_spec_hash(t: MatmulTerms) -> bytes32:
    # keccak256 of the canonical JSON spec: the job's spec hash when these are
    # its terms.
    return keccak256(self._matmul_spec(t))
