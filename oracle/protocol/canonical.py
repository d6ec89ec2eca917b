"""Canonical JSON: the byte form that is hashed for specs and verdict transcripts.

Rules: UTF-8, keys sorted, no insignificant whitespace (``","`` and ``":"`` separators),
non-ASCII escaped, no floats at all (every number is an integer; a float that holds an integer
value such as ``4096.0`` is turned into ``4096``, any other float is refused), no NaN/Infinity,
booleans and ``None`` as JSON literals. Two dicts with equal content always give equal bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from oracle.exceptions import SpecError

__all__ = ["canonical_json", "normalize_numbers"]


def normalize_numbers(value: Any, path: str = "$") -> Any:
    """Return ``value`` with integral floats turned into ints; refuse other floats.

    Raises :class:`SpecError` naming the JSON path of the first offending value.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SpecError(f"{path}: NaN/Infinity is not allowed")
        if not value.is_integer():
            raise SpecError(f"{path}: non-integer number {value!r} is not allowed")
        return int(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(f"{path}: object keys must be strings, got {key!r}")
            out[key] = normalize_numbers(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [normalize_numbers(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise SpecError(f"{path}: unsupported JSON value of type {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` to canonical JSON bytes (see the module docstring)."""
    return json.dumps(
        normalize_numbers(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    ).encode("ascii")
