"""Waiting for nodes: a simulation whose pool is still allocating is Progressing, not Stalled.

On Batch a first deployment takes minutes before any simulator can start: the pool
allocates its nodes (up to its resize timeout, 15 minutes by default, which simfleet
leaves in place), then each node boots its image and pulls the simulator's image. The
progress deadline (10 minutes by default) would call that Stalled although nothing is
wrong. So while a simulation has simulators waiting for a slot and its pool is still
coming up *within the bound Batch itself gives that step*, the simulation is Progressing
with a reason that says so, and its progress clock starts only once the wait is over.
Past the bound the wait is no excuse any more and the deadline counts as usual.

Worked numbers: a pool created at 12:00 is resizing at 12:09: "waiting for pool sims:
allocating nodes, 0/2 usable for 9m". At 12:16 it is still resizing: past the 15-minute
bound, so the simulation's ordinary progress deadline runs from the pass that saw it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.planner._observed import ObservedPool, PoolState, SimulatorState
from controller.planner._view import SimulationView

#: Batch's default ``resizeTimeout``: how long an allocation may take before Batch gives
#: up with an ``AllocationTimedOut`` resize error.
RESIZE_TIMEOUT = timedelta(minutes=15)
#: How long allocated nodes may take to become usable: boot, node agent, image pulls.
NODE_START = timedelta(minutes=10)


def waiting_for_nodes(view: SimulationView, pool: ObservedPool | None, now: datetime) -> str:
    """Why the simulation's simulators wait for nodes still coming, or "" (they do not,
    or the wait has outlasted its bound).

    A pool not there yet is no excuse: the pass that creates it is the one that would
    see it missing, and a pool whose creation keeps failing must end Stalled.
    """
    if pool is None or not _owes_simulators(view):
        return ""
    wanted = pool.target_dedicated + pool.target_spot
    if pool.usable >= wanted or pool.allocation_changed_at is None:
        return ""
    since = pool.allocation_changed_at
    booting = (
        pool.nodes.starting > 0  # broken nodes are not booting: they are no excuse
        if pool.nodes is not None
        else pool.usable < pool.current_dedicated + pool.current_spot
    )
    if pool.state is PoolState.RESIZING:
        step, bound = "allocating nodes", RESIZE_TIMEOUT
    elif pool.state is PoolState.STEADY and booting:
        step, bound = "starting nodes", NODE_START
    else:  # short of its target with nothing under way: resize errors say why
        return ""
    waited = max(now - since, timedelta(0))
    if waited > bound:
        return ""
    return (
        f"waiting for pool {pool.name}: {step}, {pool.usable}/{wanted} usable"
        f" for {_minutes(waited)}"
    )


def _minutes(span: timedelta) -> str:
    """A wait as people read it: ``9m12s``, ``40s``."""
    minutes, seconds = divmod(int(span.total_seconds()), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _owes_simulators(view: SimulationView) -> bool:
    """Whether some slot below the desired count has no running simulator yet: no job,
    an empty slot, or a simulator still pending."""
    if view.job is None:
        return view.desired > 0
    for index in range(view.desired):
        slot = view.slots.get(index)
        if slot is None or not slot.live:
            return True
        if all(task.state is SimulatorState.PENDING for task in slot.live):
            return True
    return False
