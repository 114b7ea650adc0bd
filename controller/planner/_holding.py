"""Hold: the simulations a pass leaves as they are, and why.

First in the dispatcher's order, as the Deployment controller checks "being deleted" and
"paused" before anything else: a job simfleet did not create, a suspended simulation, a
pool no spec defines, or a job that is not active (being deleted, disabled, terminated)
gets a status row and at most the one action that unblocks it — a job terminated behind
simfleet's back is deleted so that it can be created again.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.planner import _progress
from controller.planner._actions import Action, DeleteJob
from controller.planner._desired import DesiredSimulation
from controller.planner._observed import JobState, ObservedJob
from controller.planner._reports import Condition


@dataclass(frozen=True)
class Held:
    """A simulation that gets no ordinary pass this time, and what it gets instead."""

    messages: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    settled: bool = False  # True: nothing is owed (suspended, or not simfleet's to run)


def hold(
    sim: DesiredSimulation, job: ObservedJob | None, *, pool_defined: bool, note: str
) -> Held | None:
    """Why a simulation is left as it is (not ours, suspended, no pool, job not active)."""
    if job is not None and not job.owned:
        return Held(
            (f"a job named {sim.name} exists and was not created by simfleet; leaving it alone",),
            settled=True,
        )
    if sim.spec.suspend:
        return Held(("suspended: left exactly as it is",), _progress.suspended(), settled=True)
    if not pool_defined:
        return Held((note, f"pool {sim.spec.pool} is not defined in any spec"))
    if job is None or job.state is JobState.ACTIVE:
        return None
    if job.state is JobState.COMPLETED:
        # Terminated behind simfleet's back (az batch job terminate): no task can be added
        # to it again, so it is replaced.
        return Held(("job was terminated; replacing it",), actions=(DeleteJob(sim.name),))
    if job.state is JobState.DISABLED:
        return Held(("job is disabled; enable it (az batch job enable) to resume",))
    return Held((f"job is {job.state}; it is created again once gone",))
