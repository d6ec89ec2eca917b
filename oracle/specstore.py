"""Where job specs live: content-addressed blobs named by their spec hash.

``JobMarket`` publishes only ``spec_hash`` (keccak256 of the canonical spec JSON) in
``JobCreated``. The requester stores the canonical bytes as a blob — whose blob name is then
exactly the spec hash — in one or more spec stores: a local directory (:class:`LocalBlobStore`)
or an HTTP blob server (``PUT /blobs/<hash>``, :class:`BlobServer`). Workers and oracles read
a spec from the first store that has it; the hash check makes any store untrusted.

Failures: :class:`~oracle.exceptions.BlobError` subclasses when no store has the spec
(transient: retry), :class:`~oracle.exceptions.SpecError` when the bytes are not a valid
canonical spec (permanent: the job cannot be verified).
"""

from __future__ import annotations

from collections.abc import Sequence

from oracle.blobstore import HttpBlobClient, LocalBlobStore
from oracle.exceptions import BlobError, BlobNotFound, SpecError
from oracle.spec import MAX_SPEC_BYTES, Spec, parse_spec

__all__ = ["SpecStore", "open_store"]


def open_store(location: str) -> HttpBlobClient | LocalBlobStore:
    """An HTTP client for ``http(s)://…`` locations, else a local directory store."""
    if location.startswith(("http://", "https://")):
        return HttpBlobClient(location, max_size=MAX_SPEC_BYTES, connect_timeout=2.0,
                              read_timeout=5.0)
    return LocalBlobStore(location)


class SpecStore:
    """Reads (and publishes) specs by hash across several stores."""

    def __init__(self, locations: Sequence[str]) -> None:
        self.stores = [open_store(loc) for loc in locations]

    def get(self, spec_hash: bytes) -> Spec:
        """The spec with this hash; BlobError if no store has it, SpecError if malformed."""
        name = spec_hash.hex()
        last: BlobError = BlobNotFound(name)
        for store in self.stores:
            try:
                data = store.get(name, max_size=MAX_SPEC_BYTES)
            except BlobError as exc:
                last = exc
                continue
            spec = parse_spec(data)
            if spec.hash != spec_hash or spec.canonical != data:
                raise SpecError(f"spec 0x{name}: stored bytes are not the canonical spec")
            return spec
        raise last

    def put(self, spec: Spec) -> str:
        """Publish the canonical bytes to every store; returns the blob name (= spec hash)."""
        for store in self.stores:
            store.put(spec.canonical)
        return spec.hash.hex()
