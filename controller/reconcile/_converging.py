"""``apply --wait``: steps of the reconciler until the fleet converged, stalled or time ran out.

Between steps it backs off — 1 s, doubling up to 15 s, back to 1 s whenever a step
executed something or the status moved — and never sends inside a ``Retry-After``
window. While every pool the unconverged simulations need exists but has no usable node
(nodes are minutes away on Batch), nothing can start, so it polls the pools alone (one
listing) instead of every job; once a poll finds a usable node, a full step follows at
once (and the back-off starts again from 1 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from controller.backends import TransientBackendError
from controller.planner import ConditionType, Status
from controller.reconcile._reconciler import Reconciler
from controller.reconcile._result import PassResult


class Verdict(StrEnum):
    """How a wait ended."""

    CONVERGED = "converged"
    STALLED = "stalled"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class Backoff:
    """Seconds between steps: ``first``, doubled after each step that changed nothing,
    at most ``most``."""

    first: float = 1.0
    most: float = 15.0

    def next(self, previous: float, changed: bool) -> float:
        """The pause after a step, given the pause before it."""
        return self.first if changed else min(self.most, previous * 2)


#: Seconds to wait for an unreachable backend that named no ``Retry-After``.
UNREACHABLE_PAUSE = 2.0


def stalled(status: Status) -> list[str]:
    """``name: why`` for every simulation whose Stalled condition holds."""
    return [
        f"{s.name}: {c.message}"
        for s in status.simulations
        for c in s.conditions
        if c.type is ConditionType.STALLED and c.status
    ]


def waiting_for_nodes(result: PassResult) -> bool:
    """True when the simulations still to converge all need pools that exist but have no
    usable node: observing their jobs again cannot show anything new.

    Judged on the fleet as the step left it, so the step that created a pool and its
    simulators is followed by polls of the pool, not by a listing of every new job; a
    step with failed actions is followed by a full one, which retries them.
    """
    if result.failures:
        return False
    simulations = result.desired.simulations
    pools = {simulations[name].spec.pool for name in result.plan.progress if name in simulations}
    observed = (result.left or result.observed).pools
    return bool(pools) and all(name in observed and observed[name].usable == 0 for name in pools)


async def converge(
    reconciler: Reconciler,
    *,
    within: float,
    on_step: Callable[[PassResult], None],
    on_retry: Callable[[TransientBackendError, float], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    backoff: Backoff | None = None,
) -> tuple[Verdict, PassResult | None]:
    """Step until converged (a full step's verdict), stalled, or ``within`` seconds passed.

    Args:
        reconciler: whose steps these are.
        within: seconds on the reconciler's monotonic clock.
        on_step: told every step's result (``apply`` prints it).
        on_retry: told when the backend could not be reached or throttled an observation,
            and how long the wait is.
        sleep: how to wait (tests pass one that moves a fake clock).
        backoff: the pauses between steps.

    Returns:
        How the wait ended, and the last step's result.

    Raises:
        BackendError: a permanent error, or a transient one the time left cannot wait out.
    """
    backoff = backoff or Backoff()
    clock = reconciler.clock
    deadline = clock.monotonic() + within
    pause = backoff.first
    full = True
    last: PassResult | None = None
    while True:
        try:
            result = await reconciler.step(full=full)
        except TransientBackendError as exc:
            wait = max(reconciler.window.remaining(), exc.retry_after or UNREACHABLE_PAUSE)
            if clock.monotonic() + wait > deadline:
                raise
            on_retry(exc, wait)
            await sleep(wait)
            full = True
            continue
        on_step(result)
        if full and result.plan.converged:
            return Verdict.CONVERGED, result
        if stalled(result.status):
            return Verdict.STALLED, result
        moved = bool(result.executed) or last is None or result.status != last.status
        pause = backoff.next(pause, moved)
        polled, full = not full, not waiting_for_nodes(result)
        last = result
        if polled and full:  # a poll found usable nodes: look at the jobs now, not later
            pause = backoff.first
            wait = reconciler.window.remaining()
        else:
            wait = max(pause, reconciler.window.remaining())
        if clock.monotonic() + wait > deadline:
            return Verdict.TIMED_OUT, result
        await sleep(wait)
