"""Hold: the simulations a pass leaves as they are, and why.

First in the dispatcher's order, as the Deployment controller checks "being deleted" and
"paused" before anything else: a job that is not this fleet's (see :mod:`._conflicts`), a
suspended simulation, a pool no spec defines, that is not this fleet's or that cannot be
created (:mod:`._identities`), or a job that is not active (being deleted, disabled,
terminated) gets a status row and at most the one action that unblocks it — a job
terminated behind simfleet's back is deleted so that it can be created again.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.planner import _conflicts, _progress
from controller.planner._actions import Action, DeleteJob
from controller.planner._desired import DesiredSimulation
from controller.planner._observed import JobState, ObservedJob, ObservedPool
from controller.planner._reports import Condition


@dataclass(frozen=True)
class Held:
    """A simulation that gets no ordinary pass this time, and what it gets instead."""

    messages: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    settled: bool = False  # True: nothing is owed (suspended, or not simfleet's to run)
    conflict: bool = False  # True: someone else's object is in the way; nothing would change


def hold(
    sim: DesiredSimulation,
    job: ObservedJob | None,
    *,
    pool_defined: bool,
    note: str,
    pool: ObservedPool | None = None,
    pool_refused: str = "",
) -> Held | None:
    """Why a simulation is left as it is (not ours, suspended, no pool or not our pool,
    job not active). ``pool``: the observed pool the simulation names, if it exists;
    ``pool_refused``: why that pool, not existing, cannot be created ("" if it can)."""
    if job is not None and not job.owned:
        message = _conflicts.taken("job", sim.name, job.owner)
        return Held((message,), settled=True, conflict=True)
    if sim.spec.suspend:
        return Held(("suspended: left exactly as it is",), _progress.suspended(), settled=True)
    if not pool_defined:
        return Held((note, f"pool {sim.spec.pool} is not defined in any spec"))
    if pool is None and pool_refused:
        return Held((note, f"pool {sim.spec.pool} is {pool_refused}"))
    if pool is not None and not pool.owned:
        return Held((note, _conflicts.foreign_pool(pool.name, pool.owner)), conflict=True)
    if job is None or job.state is JobState.ACTIVE:
        return None
    if job.state is JobState.COMPLETED:
        # Terminated behind simfleet's back (az batch job terminate): no task can be added
        # to it again, so it is replaced.
        return Held(("job was terminated; replacing it",), actions=(DeleteJob(sim.name),))
    if job.state is JobState.DISABLED:
        return Held(("job is disabled; enable it (az batch job enable) to resume",))
    return Held((f"job is {job.state}; it is created again once gone",))
