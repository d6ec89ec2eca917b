"""JobMarket's owner-set parameters (`set_parameters`), read and written by name."""

from __future__ import annotations

from typing import Any

#: The fields of `JobMarket.Parameters`, in struct order.
PARAMETERS = (
    "min_bond",
    "unbonding_delay",
    "reveal_window",
    "refund_grace",
    "max_horizon",
    "challenge_window",
)


def current_parameters(market: Any) -> dict[str, int]:
    """The market's parameters now, by name."""
    return {name: int(getattr(market, name)()) for name in PARAMETERS}


def as_struct(values: dict[str, int]) -> tuple[int, ...]:
    """`values` as the `Parameters` tuple `set_parameters` takes."""
    return tuple(values[name] for name in PARAMETERS)


def set_parameters(market: Any, owner: Any, **changes: int) -> Any:
    """`set_parameters` with the current values, but for `changes`."""
    return market.set_parameters(as_struct(current_parameters(market) | changes), sender=owner)
