"""Protocol parameters: what a deployment fixes, with presets for live and local chains."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

ETHER = 10**18
HOUR = 3_600
DAY = 24 * HOUR
#: JobMarket's MAX_BATCH: attestations per ``settle``, results per ``submit_results``.
MAX_BATCH = 128


@dataclass(frozen=True)
class ProtocolParams:
    """Constructor arguments of JobMarket besides the token and the oracle set.

    Times are seconds, amounts are the smallest unit (wei, or the token's base unit).
    JobMarket bounds every period to [60 s, 365 days] (the challenge window to [60 s, 30
    days]) and `min_bond` and `oracle_bond` to (0, 10**24]; and it needs
    ``reveal_window + refund_grace + challenge_window <= unbonding_delay``.
    """

    epoch_length: int = DAY
    initial_emission: int = 50 * ETHER
    halving_epochs: int = 210
    min_bond: int = ETHER // 10
    unbonding_delay: int = 7 * DAY
    reveal_window: int = HOUR
    refund_grace: int = DAY
    max_horizon: int = 30 * DAY
    #: Seconds a settled verdict can be disputed; its batch is paid (``finalize``) after them.
    challenge_window: int = DAY
    #: An oracle's bond, in wei: the deployer bonds each initial oracle with it.
    oracle_bond: int = ETHER

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> ProtocolParams:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


#: Live networks and testnets: day-long epochs, a week to unbond.
LIVE = ProtocolParams()

#: Local chains (embedded and anvil): ten-minute epochs that halve every four, so a demo
#: sees halvings; short windows so time travel stays small.
LOCAL = ProtocolParams(
    epoch_length=600,
    initial_emission=1_000 * ETHER,
    halving_epochs=4,
    min_bond=ETHER // 10,
    unbonding_delay=HOUR,
    reveal_window=300,
    refund_grace=600,
    max_horizon=7 * DAY,
    challenge_window=60,
    oracle_bond=ETHER,
)
