"""Bundles: many payloads in one HTTP body; a malformed one is refused as a whole."""

from __future__ import annotations

import json

import pytest

from oracle.exceptions import PeerError
from oracle.protocol.bundle import MAX_HEADER_BYTES, decode_bundle, encode_bundle


def _frame(header: object, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(4, "big") + raw + payload


def test_round_trip__fields_sizes_and_payloads_in_order() -> None:
    entries = [
        ({"name": "a"}, b"x" * 5),
        ({"name": "b", "error": "missing"}, b""),
        ({"job_id": 7}, bytes(range(256))),
    ]
    out = decode_bundle(encode_bundle(entries))
    assert [p for _, p in out] == [p for _, p in entries]
    assert [f["size"] for f, _ in out] == [5, 0, 256]
    assert out[1][0]["error"] == "missing" and out[2][0]["job_id"] == 7
    assert decode_bundle(encode_bundle([])) == []


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00", "shorter than its header length"),
        ((10).to_bytes(4, "big") + b"[]", "header length 10 out of range"),
        ((MAX_HEADER_BYTES + 1).to_bytes(4, "big"), "out of range"),
        ((2).to_bytes(4, "big") + b"{]", "not a list of flat JSON objects"),
        (_frame({"size": 1}, b"x"), "not a list of flat JSON objects"),
        (_frame([{"size": -1}]), "non-negative size"),
        (_frame([{"size": "3"}], b"abc"), "non-negative size"),
        (_frame([{"size": True}], b"a"), "non-negative size"),
        (_frame([{"size": 4}], b"abc"), "shorter than their declared sizes"),
        (_frame([{"size": 2}], b"abc"), "1 bytes beyond"),
    ],
)
def test_malformed_bundle__refused_with_reason(data: bytes, message: str) -> None:
    with pytest.raises(PeerError, match=message):
        decode_bundle(data)


def test_decode__nested_header_from_a_hostile_peer__peer_error_even_with_a_deep_stack():
    """A header of 400 KB of nested brackets is refused at its second bracket (typed, flat
    decoding): a PeerError, not a RecursionError, and no SIGSEGV in a process whose recursion
    limit was raised (py_ecc raises it on import)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.setrecursionlimit(100_000)\n"
        "from oracle.exceptions import PeerError, ResultFormatError\n"
        "from oracle.protocol.bundle import decode_bundle\n"
        "from oracle.protocol.results import ANSWER_MAGIC, decode_answer\n"
        "import numpy as np\n"
        "h = b'[' * 400_000\n"
        "try:\n"
        "    decode_bundle(len(h).to_bytes(4, 'big') + h)\n"
        "except PeerError as e:\n"
        "    print('bundle', e)\n"
        "h = b'{\"rows\":' + b'[' * 50_000\n"
        "try:\n"
        "    decode_answer(ANSWER_MAGIC + len(h).to_bytes(4, 'big') + h, rows=1, rounds=1,\n"
        "                  y_dtype=np.dtype('<u8'), row_bytes=8)\n"
        "except ResultFormatError as e:\n"
        "    print('answer', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("bundle bundle header is not a list of flat JSON objects")
    assert lines[1].startswith("answer answer: header is not a flat JSON object")
