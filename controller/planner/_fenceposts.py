"""Turn ``maxSurge`` / ``maxUnavailable`` into counts, as Kubernetes' ``ResolveFenceposts``.

Percentages are of the desired count; surge rounds *up* (so a rollout always makes
progress), unavailable rounds *down* (so availability is never worse than asked). If both
come to 0 — possible only through rounding, since the spec refuses both written as 0 —
unavailable becomes 1, or the rollout could never move.

Worked numbers, 10 desired: ``25%`` surge → ceil(2.5) = 3; ``25%`` unavailable →
floor(2.5) = 2. With 1 desired and ``maxSurge: 0, maxUnavailable: 10%``: surge 0,
unavailable floor(0.1) = 0 → both 0 → unavailable 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.spec import Percent, Rollout


@dataclass(frozen=True)
class Fenceposts:
    """How far one rollout may go above (``surge``) and below (``unavailable``) desired."""

    surge: int
    unavailable: int


def _scaled(value: int | Percent, desired: int, *, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    exact = value.value * desired / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve(rollout: Rollout, desired: int) -> Fenceposts:
    """Resolve a rollout's limits against ``desired`` simulators.

    Args:
        rollout: the simulation's rollout settings.
        desired: the simulation's desired simulator count.

    Returns:
        The surge and unavailability allowed, in simulators.
    """
    surge = _scaled(rollout.max_surge, desired, round_up=True)
    unavailable = _scaled(rollout.max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return Fenceposts(surge=surge, unavailable=unavailable)
