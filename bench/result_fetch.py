"""A requester's fetch-and-verify of a delivered result against a plain HTTP GET of its bytes.

Run: ``python bench/result_fetch.py [--n 4096] [--reps 7]``. One process, one store:

* a seeded random ``n``×``n`` int32 result (``<i4``, rows of ``4n`` bytes: 64 MiB at n = 4096),
  its commitment for a fixed worker address, kept by a :class:`BlobServer` (a thread of this
  process) on a temporary directory;
* (a) fetch + verify — ``ResultStores([url]).fetch(c, max_size)``, what ``pouw job result``
  does: ``GET /results/<c>`` into memory, then the row Merkle root of the bytes with the worker's
  address must open ``c`` (``check_result``);
* (b) plain GET — the same ``GET /results/<c>`` with ``requests`` (one session, streamed, read
  as the client reads it: the ``Content-Length`` bytes in one read into one ``bytes``), no
  checks; the ratio (a)/(b) is thus what the checks add to the transfer, nothing else;
* (b') plain GET the usual ``requests`` way (``iter_content`` of 1 MiB, joined), for context;
* (v) verify only — ``check_result`` on the bytes already in memory (the split of (a)).

After warm-up (the Merkle kernel compiled or loaded from numba's cache, one untimed call of
each), (a), (b), (b') and (v) run round-robin ``--reps`` times, so load from other processes hits
them alike; the medians are reported, with the spread (min–max). Writes
``result_fetch_verify_s_4096``, ``result_plain_get_s_4096``, ``result_plain_get_iter_s_4096``,
``result_verify_s_4096`` and
``result_fetch_verify_vs_plain_get_4096`` = (a)/(b) (target ≤ 1.5) to bench/results.json.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import requests  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._results import merge_results  # noqa: E402
from oracle.compute.merkle import chunks_per_row, jit_warm_up, merkle_root  # noqa: E402
from oracle.protocol.commitment import commitment  # noqa: E402
from oracle.store.blobs import LocalBlobStore  # noqa: E402
from oracle.store.results import (  # noqa: E402
    LocalResultStore,
    ResultStores,
    StoredResult,
    check_result,
)
from oracle.store.server import BlobServer  # noqa: E402

WORKER = "0x" + "5e" * 20
SEED = 20240601


def interleaved(fns: dict[str, Callable[[], Any]], reps: int) -> dict[str, list[float]]:
    """Wall seconds of each call, the functions run round-robin ``reps`` times."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def plain_get(session: requests.Session, url: str) -> bytes:
    """The bytes at ``url`` read as the client reads them (streamed, the ``Content-Length``
    bytes in one read into one ``bytes``), nothing checked."""
    with session.get(url, stream=True, timeout=(5.0, 60.0)) as resp:
        resp.raise_for_status()
        data: bytes = resp.raw.read(int(resp.headers["Content-Length"]), decode_content=False)
        return data


def plain_get_iter(session: requests.Session, url: str) -> bytes:
    """The bytes at ``url`` the usual ``requests`` way: 1 MiB chunks joined, nothing checked."""
    with session.get(url, stream=True, timeout=(5.0, 60.0)) as resp:
        resp.raise_for_status()
        return b"".join(resp.iter_content(chunk_size=1 << 20))


def bench(n: int, reps: int) -> dict[str, list[float]]:
    """Per-call seconds of fetch+verify, plain GET and verify only for one n×n result."""
    row_bytes = 4 * n
    data = np.random.default_rng(SEED).integers(-(2**31), 2**31, (n, n), dtype="<i4").tobytes()
    c = commitment(WORKER, merkle_root(data, n * chunks_per_row(n, 4)))  # result tree
    max_size = len(data)
    with tempfile.TemporaryDirectory(prefix="pouw-bench-") as tmp:
        LocalResultStore(tmp).put(StoredResult(c, WORKER, row_bytes, data))
        with BlobServer(LocalBlobStore(tmp)) as srv:
            stores = ResultStores([srv.url])
            session = requests.Session()
            url = f"{srv.url}/results/{c.hex()}"

            def fetch_verify() -> None:
                got = stores.fetch(c, max_size)
                assert got.root is not None and len(got.data) == len(data)

            def plain() -> None:
                assert len(plain_get(session, url)) == len(data)

            def plain_iter() -> None:
                assert len(plain_get_iter(session, url)) == len(data)

            def verify() -> None:
                check_result(c, WORKER, row_bytes, data)

            fns = {
                "fetch_verify": fetch_verify,
                "plain_get": plain,
                "plain_get_iter": plain_iter,
                "verify": verify,
            }
            jit_warm_up()
            for fn in fns.values():  # connections open, kernel loaded, page cache warm
                fn()
            assert stores.fetch(c, max_size).data == data
            return interleaved(fns, reps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="rows and int32 columns")
    parser.add_argument("--reps", type=int, default=7, help="timed calls of each (>= 5)")
    args = parser.parse_args()
    console = Console(width=200)
    mib = args.n * args.n * 4 / (1 << 20)
    console.print(f"[dim]measuring a {args.n}×{args.n} int32 result ({mib:.0f} MiB)…[/dim]")
    times = bench(args.n, max(args.reps, 5))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["fetch_verify"] / med["plain_get"]

    table = Table(title=f"result fetch, n = {args.n} ({len(times['verify'])} runs each)")
    for col in ("", "median s", "min s", "max s", "MiB/s"):
        table.add_column(col, justify="right")
    for name, label in (
        ("fetch_verify", "fetch + verify (ResultStores.fetch)"),
        ("plain_get", "plain GET (requests, one read)"),
        ("plain_get_iter", "plain GET (requests, iter_content 1 MiB)"),
        ("verify", "verify only (check_result)"),
    ):
        ts = times[name]
        table.add_row(
            label, f"{med[name]:.4f}", f"{min(ts):.4f}", f"{max(ts):.4f}", f"{mib / med[name]:.0f}"
        )
    console.print(table)
    console.print(f"fetch + verify / plain GET = {ratio:.3f} (target <= 1.5)")

    out = {
        f"result_fetch_verify_s_{args.n}": round(med["fetch_verify"], 6),
        f"result_plain_get_s_{args.n}": round(med["plain_get"], 6),
        f"result_plain_get_iter_s_{args.n}": round(med["plain_get_iter"], 6),
        f"result_verify_s_{args.n}": round(med["verify"], 6),
        f"result_fetch_verify_vs_plain_get_{args.n}": round(ratio, 6),
    }
    merge_results(out)
    console.print(f"merged {len(out)} numbers into bench/results.json")


if __name__ == "__main__":
    main()
