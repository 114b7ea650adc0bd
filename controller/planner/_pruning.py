"""Prune: delete what simfleet created and no spec asks for any more — carefully.

Guards, all of which hold before anything is deleted:

* only objects marked as simfleet's (``owned``) are ever candidates;
* nothing is deleted while any spec file fails to load, or while the specs directory is
  empty or missing (``Desired.prune_allowed`` is False), unless the user asked for it;
* a pool is kept while a desired simulation names it or still runs on it (a simulation
  moved to another pool "needs replacement"), or a job that is not simfleet's runs on it.

Objects kept by a guard still show in status, with the reason, so nothing is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.planner import _pools
from controller.planner._types import (
    Action,
    DeleteJob,
    DeletePool,
    Desired,
    JobState,
    Observed,
    PoolState,
    PoolStatus,
    SimulationStatus,
    SimulatorState,
)


@dataclass(frozen=True)
class PrunePlan:
    """Deletions, plus status rows for the objects no spec asks for."""

    actions: tuple[Action, ...]
    simulations: tuple[SimulationStatus, ...]
    pools: tuple[PoolStatus, ...]


def _verdict(desired: Desired, deleting: bool) -> str:
    if deleting:
        return "not in any spec: being deleted"
    if desired.prune_allowed:
        return "not in any spec: deleting"
    return f"not in any spec; not pruned because {desired.prune_held_because}"


def prune(desired: Desired, observed: Observed) -> PrunePlan:
    """Delete owned jobs and pools that no spec defines, within the guards above."""
    actions: list[Action] = []
    simulations = []
    for name in sorted(observed.jobs):
        job = observed.jobs[name]
        if not job.owned or name in desired.simulations:
            continue
        deleting = job.state is JobState.DELETING
        if desired.prune_allowed and not deleting:
            actions.append(DeleteJob(name))
        simulations.append(
            SimulationStatus(
                name=name,
                pool=job.pool,
                image="",
                desired=0,
                ready=sum(1 for t in job.tasks if t.state is SimulatorState.RUNNING),
                up_to_date=0,
                restarts=0,
                message=desired.notes.get(name) or _verdict(desired, deleting),
                revision="",
            )
        )
    in_use = (
        {sim.spec.pool for sim in desired.simulations.values()}
        | {job.pool for job in observed.jobs.values() if not job.owned}
        # a kept simulation whose spec moved to another pool still runs on its old one
        | {job.pool for name, job in observed.jobs.items() if name in desired.simulations}
    )
    pools = []
    for name in sorted(observed.pools):
        pool = observed.pools[name]
        if not pool.owned or name in desired.pools:
            continue
        deleting = pool.state is PoolState.DELETING
        if name in in_use and not deleting:
            message = "not in any spec, but a simulation still uses it; not pruned"
        else:
            message = _verdict(desired, deleting)
            if desired.prune_allowed and not deleting:
                actions.append(DeletePool(name))
        pools.append(_pools.pool_status(pool, message))
    return PrunePlan(tuple(actions), tuple(simulations), tuple(pools))
