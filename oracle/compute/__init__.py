"""The work and its checks: job kinds, worker compute, verification (Freivalds, Merkle trees and
openings, sampled answers), compute backends, seeded input generation and the compiled kernels.

Reads blobs through the :class:`~oracle.compute.kinds.base.BlobSource` protocol only; imports
:mod:`oracle.protocol` and nothing above it.
"""
