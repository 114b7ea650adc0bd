"""Teardown: what ``simfleet delete`` removes, as the planner's own deletions.

``delete`` is a prune the operator asks for by name instead of by a spec's absence, so it
speaks the same vocabulary (:class:`DeleteJob`, :class:`DeletePool`) and the reconciler's
executor carries it out under the same request budget and ``Retry-After`` handling. The
guards are prune's, minus the prune delay:

* only this fleet's objects are ever deleted: another fleet's job or pool, one simfleet
  did not create and the fleet's lease job (which no fleet owns) are not candidates;
* a pool goes only when nothing else needs it: no job that stays (of any fleet, or none)
  runs on it, and, when simulations are named, no simulation the specs still define
  besides them names it. A pool another fleet's job runs on would take that fleet's
  simulators with it. While a spec file fails to load, nobody can say which pools its
  simulations name, so a named deletion keeps every pool (prune's rule: never delete
  because a file failed to parse).

Names are Batch ids, which Batch compares without regard to case: ``CartPole`` names the
job ``cartpole``. A name is a simulation's: while its pool is being replaced it has a
second job on the new pool (``cartpole-p…``, see ``_replacement``), and both go.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from controller.planner._actions import Action, DeleteJob, DeletePool
from controller.planner._conflicts import whose
from controller.planner._observed import JobState, Observed, PoolState


@dataclass(frozen=True)
class Teardown:
    """What one ``delete`` removes, and what it leaves, and why.

    Attributes:
        actions: the deletions still to send (objects already being deleted need none).
        simulations: job → its live simulators, for every job this teardown removes
            (those already being deleted included: they are part of what will be gone).
        pools: pool → its nodes, likewise.
        kept: pools of the deleted simulations that stay, one line each saying why.
        unknown: names that match no job at all.
        foreign: name → whose it is, for names that match a job this fleet does not own.
    """

    actions: tuple[Action, ...] = ()
    simulations: Mapping[str, int] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    kept: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    foreign: Mapping[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """A name was wrong: nothing at all may be deleted."""
        return bool(self.unknown or self.foreign)

    @property
    def empty(self) -> bool:
        """Nothing to delete (nor to wait for)."""
        return not self.simulations and not self.pools

    def remaining(self, observed: Observed) -> tuple[list[str], list[str]]:
        """The jobs and pools of this teardown that ``observed`` still holds."""
        jobs = {name.lower() for name in observed.jobs}
        pools = {name.lower() for name in observed.pools}
        return (
            [name for name in self.simulations if name.lower() in jobs],
            [name for name in self.pools if name.lower() in pools],
        )


def teardown(
    observed: Observed,
    names: Collection[str] | None = None,
    in_use: Collection[str] = (),
    unreadable: Collection[str] = (),
) -> Teardown:
    """Plan the deletion of the whole fleet (``names`` None) or of the named simulations.

    Args:
        observed: the fleet as it is now.
        names: the simulations to delete, in any letter case; None: every job and pool
            this fleet owns.
        in_use: pools the specs' remaining simulations name (only with ``names``).
        unreadable: spec files that failed to load (only with ``names``): any of them
            may name any pool.

    Returns:
        The teardown; when a name is unknown or not this fleet's, it deletes nothing.
    """
    if names is None:
        targets = sorted(name for name, job in observed.jobs.items() if job.owned)
    else:
        jobs_of: dict[str, list[str]] = {}  # simulation (lower case) → its jobs
        for name, job in observed.jobs.items():
            jobs_of.setdefault((job.simulation or name).lower(), []).append(name)
        unknown = [name for name in names if name.lower() not in jobs_of]
        foreign = {
            name: whose(observed.jobs[theirs[0]].owner)
            for name in names
            if (theirs := [j for j in jobs_of.get(name.lower(), ()) if not observed.jobs[j].owned])
        }
        if unknown or foreign:
            return Teardown(unknown=tuple(unknown), foreign=foreign)
        targets = sorted({job for name in names for job in jobs_of[name.lower()]})
    chosen = set(targets)
    staying = {
        name: job
        for name, job in observed.jobs.items()
        if name not in chosen and job.state is not JobState.DELETING
    }
    wanted = {pool.lower() for pool in in_use}
    candidates = (
        sorted(observed.pools)
        if names is None
        else sorted({observed.jobs[name].pool for name in targets} & set(observed.pools))
    )
    pools: dict[str, int] = {}
    kept: list[str] = []
    for name in candidates:
        pool = observed.pools[name]
        users = sorted(job for job, seen in staying.items() if seen.pool.lower() == name.lower())
        if not pool.owned:
            if names is not None:
                kept.append(f"pool {name} {whose(pool.owner)}; not deleted")
        elif users:
            kept.append(f"pool {name} is still used by simulation {', '.join(users)}; not deleted")
        elif name.lower() in wanted:
            kept.append(f"pool {name} is still named by a simulation in the specs; not deleted")
        elif unreadable and names is not None:
            files = ", ".join(sorted(unreadable))
            kept.append(f"pool {name} may be named in {files}, which failed to load; not deleted")
        else:
            pools[name] = pool.current_dedicated + pool.current_spot
    actions: list[Action] = [
        DeleteJob(name) for name in targets if observed.jobs[name].state is not JobState.DELETING
    ]
    actions += [
        DeletePool(name) for name in pools if observed.pools[name].state is not PoolState.DELETING
    ]
    simulations = {name: sum(1 for t in observed.jobs[name].tasks if t.live) for name in targets}
    return Teardown(tuple(actions), simulations, pools, tuple(kept))
