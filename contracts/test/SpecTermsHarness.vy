# pragma version ~=0.4.3
"""
@title Test harness of the spec_terms module
@license MIT
@notice Exposes the module's internal functions so the tests can hold them
        against the off-chain canonical spec (oracle/protocol/spec.py).
"""

from ..modules import spec_terms


@external
@pure
def matmul_spec(t: spec_terms.MatmulTerms) -> Bytes[spec_terms.MAX_SPEC]:
    """
    @notice The canonical JSON spec the terms write.
    """
    return spec_terms._matmul_spec(t)


@external
@pure
def matmul_spec_hash(t: spec_terms.MatmulTerms) -> bytes32:
    """
    @notice keccak256 of that spec.
    """
    return spec_terms._matmul_spec_hash(t)


@external
@pure
def hex(x: bytes32) -> Bytes[64]:
    """
    @notice The 64 lower-case hex digits of `x`.
    """
    return spec_terms._hex(x)
