"""The halving emission schedule, mirrored from JobMarket.vy.

Epoch ``e`` emits ``initial >> (e // halving_epochs)`` tokens; the 128th halving
emits nothing (``initial < 2**128``). A worker's reward for an ended epoch is
``emission(e) * work(e, worker) // total_work(e)``: work units only, rounded down.
"""

from __future__ import annotations

MAX_HALVINGS = 128


def epoch_emission(initial: int, halving_epochs: int, epoch: int) -> int:
    """Tokens emitted in `epoch`."""
    halvings = epoch // halving_epochs
    return 0 if halvings >= MAX_HALVINGS else initial >> halvings


def schedule_total(initial: int, halving_epochs: int) -> int:
    """Every token the schedule can ever emit; the WorkToken's cap."""
    return sum(halving_epochs * (initial >> h) for h in range(MAX_HALVINGS))


def reward(initial: int, halving_epochs: int, epoch: int, work: int, total_work: int) -> int:
    """A worker's reward for `epoch`, as `JobMarket.claim` mints it."""
    if total_work == 0:
        return 0
    return epoch_emission(initial, halving_epochs, epoch) * work // total_work
