"""`pouw report`'s labels and its two modes (demo: names and compute seconds; chain: neither)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oracle.client.report import ReportData, draw_report

W = ["0x" + c * 40 for c in "abc"]
TOKEN = "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9"
ETH = "0x" + "00" * 20


def _data() -> ReportData:
    d = ReportData(1000 * 10**18, 4, 3)
    job = 0
    for epoch in range(3):
        for i, w in enumerate(W):
            d.work.append((epoch, w, (7, 1, 2)[i] * 10**6))
        for k in range(6):
            job += 1
            d.jobs.append((job, ETH if k % 2 else TOKEN, 5 * 10**12, 1000))
            d.settled.append((job, W[k % 3]))
    return d


def test_label__known_name_else_short_address() -> None:
    d = _data()
    d.names = {W[0]: "fast"}
    assert d.label(W[0]) == "fast"
    assert d.label(W[1]) == "0xbbbb…bbbb"


@pytest.mark.parametrize("demo", [True, False])
def test_draw_report__writes_a_png_in_both_modes(tmp_path: Path, demo: bool) -> None:
    d = _data()
    if demo:
        d.names = dict(zip(W, ("fast", "medium", "slow-cheat"), strict=True))
        d.busy_seconds = dict(zip(W, (0.2, 0.5, 1.1), strict=True))
    out = tmp_path / "r.png"
    draw_report(d, str(out))
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 50_000
