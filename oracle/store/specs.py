"""Where job specs live: content-addressed blobs named by their spec hash.

``JobMarket`` publishes only ``spec_hash`` (keccak256 of the canonical spec JSON) in
``JobCreated``. The requester stores the canonical bytes as a blob — whose blob name is then
exactly the spec hash — in one or more spec stores: a local directory (:class:`LocalBlobStore`)
or an HTTP blob server (``PUT /blobs/<hash>``, :class:`BlobServer`). Workers and oracles read
a spec from the first store that has it; the hash check makes any store untrusted.

Failures: :class:`~oracle.exceptions.BlobError` subclasses when no store has the spec
(transient: retry), :class:`~oracle.exceptions.SpecError` when the bytes are not a valid
canonical spec (permanent: the job cannot be verified).

A spec read and checked once is kept in a bounded in-memory cache (``cache_size`` specs, least
recently used out first): a spec is immutable under its hash, so the worker's compute and its
challenge answers, and the oracle's verification, fetch each spec once.

Reachability: every round of requests to the stores reports to ``watch(up, error)`` whether at
least one store answered (with the spec, or "no such blob"); ``up`` is False only when none
did (each was unreachable or failed its transfer). :meth:`probe` asks the stores for a name no
spec can have, so a service learns the stores' state at start-up and while they are down
without touching any job.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from oracle.exceptions import (
    BlobError,
    BlobHashMismatch,
    BlobNotFound,
    BlobTooLarge,
    BlobTransferError,
    SpecError,
)
from oracle.protocol.spec import MAX_SPEC_BYTES, Spec, parse_spec
from oracle.store.blobs import HttpBlobClient, LocalBlobStore

__all__ = ["PROBE_NAME", "InputStore", "SpecStore", "open_store"]

#: The blob name :meth:`SpecStore.probe` asks for: all zeros, which no content hashes to, so a
#: store that answers at all answers "no such blob".
PROBE_NAME = "00" * 32

#: ``watch(up, error)``: at least one store answered (``up``), else what the stores said.
Watch = Callable[[bool, str], None]


def open_store(location: str) -> HttpBlobClient | LocalBlobStore:
    """An HTTP client for ``http(s)://…`` locations, else a local directory store."""
    if location.startswith(("http://", "https://")):
        return HttpBlobClient(
            location, max_size=MAX_SPEC_BYTES, connect_timeout=2.0, read_timeout=5.0
        )
    return LocalBlobStore(location)


class SpecStore:
    """Reads (and publishes) specs by hash across several stores."""

    def __init__(
        self, locations: Sequence[str], cache_size: int = 4096, watch: Watch | None = None
    ) -> None:
        self.locations = list(locations)
        self.stores = [open_store(loc) for loc in locations]
        self.cache_size = cache_size
        self.watch = watch
        self._cache: OrderedDict[bytes, Spec] = OrderedDict()
        self._lock = threading.Lock()

    def _report(self, answered: bool, errors: list[str]) -> None:
        if self.watch is not None:
            self.watch(answered, "; ".join(errors))

    def cached(self, spec_hash: bytes) -> Spec | None:
        """The spec if it is in the cache (no store is asked)."""
        with self._lock:
            return self._cache.get(bytes(spec_hash))

    def probe(self) -> bool:
        """Ask every store for :data:`PROBE_NAME`; True iff at least one answered (reported to
        ``watch`` like any other round)."""
        answered, errors = False, []
        for loc, store in zip(self.locations, self.stores, strict=True):
            try:
                store.get(PROBE_NAME, max_size=MAX_SPEC_BYTES)
            except BlobTransferError as exc:
                errors.append(f"{loc}: {exc}")
            except BlobError:
                answered = True  # "no such blob": the store is there
            else:
                answered = True
        self._report(answered, errors)
        return answered

    def get(self, spec_hash: bytes) -> Spec:
        """The spec with this hash; BlobError if no store has it, SpecError if malformed."""
        key = bytes(spec_hash)
        with self._lock:
            spec = self._cache.get(key)
            if spec is not None:
                self._cache.move_to_end(key)
                return spec
        spec = self._fetch(key)
        self._remember([spec])
        return spec

    def _remember(self, specs: Sequence[Spec]) -> None:
        with self._lock:
            for spec in specs:
                self._cache[spec.hash] = spec
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def prefetch(self, spec_hashes: Sequence[bytes]) -> None:
        """Read the specs not cached yet in one request per store (``get_many``), so that the
        :meth:`get` calls that follow hit the cache. Best effort: anything not found, not
        canonical or not reachable here is left for :meth:`get` to report."""
        missing = {bytes(h).hex(): bytes(h) for h in spec_hashes}
        with self._lock:
            for name in [n for n, h in missing.items() if h in self._cache]:
                del missing[name]
        found: list[Spec] = []
        asked, answered, errors = False, False, []
        for loc, store in zip(self.locations, self.stores, strict=True):
            if not missing:
                break
            asked = True
            try:
                got = store.get_many(list(missing), max_size=MAX_SPEC_BYTES)
            except BlobError as exc:
                if isinstance(exc, BlobTransferError):
                    errors.append(f"{loc}: {exc}")
                else:
                    answered = True
                continue
            answered = True
            for name, data in got.items():
                try:
                    spec = parse_spec(data)
                except SpecError:
                    continue
                if spec.hash == missing[name] and spec.canonical == data:
                    found.append(spec)
                    del missing[name]
        self._remember(found)
        if asked:
            self._report(answered, errors)

    def _fetch(self, spec_hash: bytes) -> Spec:
        name = spec_hash.hex()
        last: BlobError = BlobNotFound(name)
        errors: list[str] = []
        answered = False
        for loc, store in zip(self.locations, self.stores, strict=True):
            try:
                data = store.get(name, max_size=MAX_SPEC_BYTES)
            except BlobTransferError as exc:
                last = exc
                errors.append(f"{loc}: {exc}")
                continue
            except BlobError as exc:
                last, answered = exc, True
                continue
            self._report(True, errors)
            spec = parse_spec(data)
            if spec.hash != spec_hash or spec.canonical != data:
                raise SpecError(f"spec 0x{name}: stored bytes are not the canonical spec")
            return spec
        self._report(answered, errors)
        raise last

    def require_all(self) -> None:
        """BlobTransferError naming the first store that does not answer (an HTTP server that
        is down, a directory that cannot be written): a publisher checks every store *before*
        it writes anything, so that a failure leaves no store half-published."""
        for loc, store in zip(self.locations, self.stores, strict=True):
            if isinstance(store, LocalBlobStore):
                _require_writable(loc, store.root)
                continue
            try:
                store.get(PROBE_NAME, max_size=MAX_SPEC_BYTES)
            except BlobTransferError as exc:
                raise BlobTransferError(f"store {loc} does not answer: {exc}") from None
            except BlobError:
                pass  # "no such blob": the store is there

    def put_blob(self, data: bytes) -> str:
        """Publish ``data`` as it is to every store; returns its name (keccak256 hex, no 0x).
        A store that refuses or does not answer is a BlobError naming it (the stores before
        it keep the blob)."""
        name = ""
        for loc, store in zip(self.locations, self.stores, strict=True):
            try:
                name = store.put(data)
            except BlobTransferError as exc:
                raise BlobTransferError(f"store {loc} does not answer: {exc}") from None
            except OSError as exc:
                raise BlobTransferError(f"store {loc}: cannot write: {exc.strerror}") from None
        return name

    def missing(self, name: str) -> list[str]:
        """The locations that do not hold blob ``name`` (so a large blob already published,
        a model file, is not sent again). BlobTransferError naming a store that does not
        answer."""
        out = []
        for loc, store in zip(self.locations, self.stores, strict=True):
            try:
                if not store.has(name):
                    out.append(loc)
            except BlobTransferError as exc:
                raise BlobTransferError(f"store {loc} does not answer: {exc}") from None
        return out

    def put(self, spec: Spec) -> str:
        """Publish the canonical bytes to every store; returns the blob name (= spec hash)."""
        self.put_blob(spec.canonical)
        return spec.hash.hex()


def _require_writable(loc: str, root: Path) -> None:
    """BlobTransferError unless ``root`` is a writable directory or could be created as one
    (its nearest existing ancestor is a writable directory); nothing is created."""
    path = root.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        raise BlobTransferError(f"store {loc}: {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise BlobTransferError(f"store {loc}: {path} is not writable")


class InputStore:
    """Blob inputs (matrices, weights) by name across the job stores: the first store that
    has the blob serves it, hash-checked as it arrives (:class:`HttpBlobClient`), so no store is
    trusted. A :class:`~oracle.compute.kinds.base.BlobSource` for the kinds' ``load_inputs``.

    Failures: BlobNotFound if every store answered without it, BlobHashMismatch /
    BlobTooLarge if the copies found were bad, BlobTransferError if no store answered."""

    def __init__(self, locations: Sequence[str], read_timeout: float = 60.0) -> None:
        self.locations = list(locations)
        self.stores = [
            HttpBlobClient(loc, connect_timeout=2.0, read_timeout=read_timeout)
            if loc.startswith(("http://", "https://"))
            else LocalBlobStore(loc)
            for loc in locations
        ]

    def get(self, name: str, max_size: int | None = None) -> bytes:
        """Blob ``name`` (64 hex, with or without 0x) from the first store that has it."""
        problems: list[BlobError] = []
        for loc, store in zip(self.locations, self.stores, strict=True):
            try:
                return store.get(name, max_size)
            except BlobError as exc:
                problems.append(type(exc)(f"{loc}: {exc}"))
        for kind in (BlobHashMismatch, BlobTooLarge, BlobNotFound):
            found = [p for p in problems if isinstance(p, kind)]
            if found:
                raise kind("; ".join(str(p) for p in problems))
        raise BlobTransferError("; ".join(str(p) for p in problems) or "no input store")
