"""Prune: delete what simfleet created and no spec asks for any more — carefully.

Guards, all of which hold before anything is deleted:

* only this fleet's objects (``owned``) are ever candidates: another fleet's, or one
  simfleet did not create, is never deleted, nor even reported (see :mod:`._conflicts`);
* nothing is deleted while any spec file fails to load, or while the specs directory is
  empty or missing (``Desired.prune_allowed`` is False), unless the user asked for it;
* a pool is kept while a desired simulation names it or still runs on it (one whose
  spec names another pool, until its simulators have moved), or a job that is not this
  fleet's runs on it;
* a job of a desired simulation and a generation of a desired pool are never pruned
  here, whatever their ids: a pool replacement moves and deletes them
  (:mod:`._replacement`);
* an object is deleted only once its definition has stayed absent for the prune delay,
  counted from the first pass that saw it absent while pruning was allowed. An editor's
  non-atomic save, a generator redirected into a file or a ``git checkout`` that moves a
  simulation from one file to another all bring the definition back well within it.

Objects kept by a guard still show in status, with the reason, so nothing is silent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.planner import _changes, _pools, _replacement
from controller.planner._actions import Action, DeleteJob, DeletePool
from controller.planner._desired import Desired
from controller.planner._observed import JobState, Observed, PoolState, SimulatorState
from controller.planner._reports import Change, PoolStatus, SimulationStatus


@dataclass(frozen=True)
class PrunePlan:
    """Deletions, status rows for the objects no spec asks for, and the absence clocks.

    Attributes:
        absent: per object waiting out the prune delay (or being deleted now), when its
            absence was first seen; the next pass gets it back.
        requeue_after: when the next object's delay runs out.
    """

    actions: tuple[Action, ...]
    simulations: tuple[SimulationStatus, ...]
    pools: tuple[PoolStatus, ...]
    absent: Mapping[tuple[str, str], datetime]
    requeue_after: datetime | None
    changes: tuple[Change, ...] = ()


@dataclass
class _Clock:
    """The prune delay against the absence clocks of the previous pass.

    ``waiting`` collects the clocks that go on: every object that may be pruned, from the
    pass that first saw it absent.
    """

    now: datetime
    delay: timedelta
    previous: Mapping[tuple[str, str], datetime]
    waiting: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def due(self, key: tuple[str, str], may_prune: bool) -> datetime | None:
        """When ``key`` may be deleted (None: not at all now); its clock keeps running."""
        if not may_prune:
            return None
        since = self.waiting[key] = self.previous.get(key, self.now)
        return since + self.delay

    def next_due(self) -> datetime | None:
        """When the next clock still running out runs out."""
        pending = [since + self.delay for since in self.waiting.values()]
        return min((due for due in pending if due > self.now), default=None)


def _wait_words(remaining: timedelta) -> str:
    seconds = max(0.0, remaining.total_seconds())
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"


def _verdict(desired: Desired, deleting: bool, due: datetime | None, now: datetime) -> str:
    if deleting:
        return "not in any spec: being deleted"
    if not desired.prune_allowed:
        return f"not in any spec; not pruned because {desired.prune_held_because}"
    if due is not None and due > now:
        return f"not in any spec: will be pruned in {_wait_words(due - now)}"
    return "not in any spec: deleting"


def prune(
    desired: Desired,
    observed: Observed,
    now: datetime,
    delay: timedelta = timedelta(0),
    absent: Mapping[tuple[str, str], datetime] | None = None,
    scope: Callable[[str], bool] | None = None,
    *,
    explain: bool = False,
) -> PrunePlan:
    """Delete owned jobs and pools that no spec defines, within the guards above.

    Args:
        desired / observed: as for :func:`~controller.planner.plan`.
        now: the planner's "now".
        delay: how long a definition must stay absent before its object is deleted.
        absent: ``PrunePlan.absent`` of the previous pass ({} on the first).
        scope: prune only the jobs whose names it accepts, and no pool; None for all.
        explain: also put the deletions, and those still waiting, in words.
    """
    clock = _Clock(now, delay, absent or {})
    actions: list[Action] = []
    changes: list[Change] = []
    simulations = []
    for name in sorted(observed.jobs):
        job = observed.jobs[name]
        simulation = _replacement.simulation_of(job)
        if not job.owned or simulation in desired.simulations or (scope and not scope(simulation)):
            continue
        deleting = job.state is JobState.DELETING
        due = clock.due(("simulation", name), desired.prune_allowed and not deleting)
        if due is not None and due <= now:
            actions.append(DeleteJob(name))
            if explain:
                changes.append(_changes.pruned_job(name, job))
        simulations.append(
            SimulationStatus(
                name=name,
                pool=job.pool,
                image="",
                desired=0,
                ready=sum(1 for t in job.tasks if t.state is SimulatorState.RUNNING),
                up_to_date=0,
                restarts=0,
                message=desired.notes.get(name) or _verdict(desired, deleting, due, now),
                revision="",
            )
        )
    in_use = (
        {sim.spec.pool for sim in desired.simulations.values()}
        | {job.pool for job in observed.jobs.values() if not job.owned}
        # a kept simulation whose spec moved to another pool still runs on its old one
        | {
            job.pool
            for job in observed.jobs.values()
            if _replacement.simulation_of(job) in desired.simulations
        }
    )
    pools = []
    for name in sorted(observed.pools) if scope is None else ():
        pool = observed.pools[name]
        if (
            not pool.owned
            or name in desired.pools
            or _replacement.belongs_to(pool) in desired.pools
        ):
            continue
        deleting = pool.state is PoolState.DELETING
        if name in in_use and not deleting:
            message = "not in any spec, but a simulation still uses it; not pruned"
        else:
            due = clock.due(("pool", name), desired.prune_allowed and not deleting)
            if due is not None and due <= now:
                actions.append(DeletePool(name))
                if explain:
                    changes.append(_changes.pruned_pool(name))
            message = _verdict(desired, deleting, due, now)
        pools.append(_pools.pool_status(pool, message))
    if explain:
        waiting = {key: since + delay for key, since in clock.waiting.items()}
        changes += _changes.waiting_prunes({k: t for k, t in waiting.items() if t > now}, now)
    return PrunePlan(
        tuple(actions),
        tuple(simulations),
        tuple(pools),
        clock.waiting,
        clock.next_due(),
        tuple(changes),
    )
