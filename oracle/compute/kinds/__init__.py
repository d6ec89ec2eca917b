"""Job kinds and the registry mapping a spec's ``kind`` to its implementation."""

from __future__ import annotations

from oracle.compute.kinds.base import JobKind, Prepared
from oracle.compute.kinds.llm import LlmKind
from oracle.compute.kinds.matmul import MatmulKind
from oracle.compute.kinds.mlp import MlpKind
from oracle.exceptions import SpecError

__all__ = ["KINDS", "JobKind", "Prepared", "get_kind"]

KINDS: dict[str, JobKind] = {"matmul": MatmulKind(), "mlp": MlpKind(), "llm": LlmKind()}


def get_kind(name: str) -> JobKind:
    """The implementation of kind ``name``; SpecError if unknown."""
    try:
        return KINDS[name]
    except KeyError:
        raise SpecError(f"spec.kind: unknown kind {name!r}") from None
