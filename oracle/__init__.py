"""pouw off-chain library: job specs and kinds, verification, Merkle commitments, blob store,
EIP-712 attestations, deployment records and the `pouw` CLI.

Import the submodules you need (`oracle.spec`, `oracle.verify`, `oracle.work`, ...); importing
the package itself loads nothing and has no side effects.
"""
