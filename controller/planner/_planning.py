"""``plan``: the one entry point of the planner, and the order of its phases.

The order is written down once, here: pools first (a job's simulators need somewhere to
run), then each simulation (the dispatcher in :mod:`._simulations`: hold, scale, roll
out, fill, trim history), then prune. Stops and deletions come last so that a pass which
both adds and removes never leaves the fleet smaller than asked in between. Pure: same
inputs, same plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from controller.planner import _changes, _identities, _naming, _pools, _pruning, _replacement
from controller.planner._actions import REMOVALS, Action, DeleteJob
from controller.planner._desired import Desired, DesiredSimulation
from controller.planner._observed import JobState, Observed, ObservedJob, SimulatorState
from controller.planner._reports import Change, Plan, Progress, SimulationStatus, Status
from controller.planner._simulations import SimulationPlan, Tuning, plan_simulation
from controller.planner._sizing import SCALE_DOWN_DELAY, PoolMemory
from controller.planner._view import template_of, view_of

__all__ = ["PlannerConfig", "plan", "template_of"]


@dataclass(frozen=True)
class PlannerConfig:
    """Tuning that is not part of any spec.

    Attributes:
        history: exited simulators kept per slot for their logs.
        settle: how long a simulator must run before it counts as available.
        prune_delay: how long an object's definition must stay absent before it is
            pruned (the daemon's ``--prune-delay``).
        scale_down_delay: how long demand must stay below an auto pool's target before
            the pool shrinks (the daemon's ``--scale-down-delay``).
    """

    history: int = 3
    settle: timedelta = timedelta(0)
    prune_delay: timedelta = timedelta(0)
    scale_down_delay: timedelta = SCALE_DOWN_DELAY


def _failed_simulation(
    sim: DesiredSimulation, job: ObservedJob | None, error: Exception
) -> SimulationStatus:
    """The status row of a simulation whose planning raised: what runs, and why not more."""
    tasks = job.tasks if job is not None else ()
    return SimulationStatus(
        name=sim.name,
        pool=sim.spec.pool,
        image=sim.spec.image,
        desired=sim.spec.simulators,
        ready=sum(1 for t in tasks if t.state is SimulatorState.RUNNING),
        up_to_date=0,
        restarts=sum(t.restarts for t in tasks),
        message=_failure_words(error),
        revision="",
    )


def _failure_words(error: Exception) -> str:
    return f"cannot plan this simulation, left as it is: {type(error).__name__}: {error}"


def _plan_one(
    sim: DesiredSimulation,
    desired: Desired,
    observed: Observed,
    tuning: Tuning,
    progress: Progress | None,
    jobs: tuple[ObservedJob, ...] = (),
    pool_id: str = "",
) -> tuple[SimulationPlan, str | None]:
    """One simulation's plan, or its failure isolated: one must not stop the fleet.

    ``jobs``: every job of the simulation; ``pool_id``: the current generation of its
    pool (see :mod:`._replacement`): the job there is its job, the others' simulators
    (on an old generation, or on the pool its spec named before) move to it, and an
    other job with none left is deleted.
    """
    pool_id = pool_id or sim.spec.pool
    job_id = _replacement.current_job(sim.name, pool_id, sim.spec.pool, jobs)
    job = next((j for j in jobs if j.name.lower() == job_id.lower()), None)
    others = tuple(j for j in jobs if j is not job and j.owned)
    try:
        elsewhere = tuple(
            dataclasses.replace(t, job=j.name)
            for j in others
            if j.state is not JobState.DELETING
            for t in j.tasks
            if t.live
        )
        view = view_of(sim, job, tuning.now, job_id=job_id, pool_id=pool_id, elsewhere=elsewhere)
        planned = plan_simulation(
            view,
            tuning,
            pool_defined=sim.spec.pool in desired.pools,
            note=desired.notes.get(sim.name, ""),
            progress=progress,
            pool=observed.pools.get(pool_id),
            pool_refused=_identities.refusal(desired.pools.get(sim.spec.pool), observed),
        )
        emptied = tuple(
            DeleteJob(j.name, moved=pool_id, simulation="" if j.name == sim.name else sim.name)
            for j in others
            if j.state is not JobState.DELETING and not any(t.live for t in j.tasks)
        )
        if emptied and desired.prune_allowed and not sim.spec.suspend:
            changes = tuple(_changes.moved_job(d) for d in emptied) if tuning.explain else ()
            planned = dataclasses.replace(
                planned,
                actions=planned.actions + emptied,
                changes=planned.changes + changes,
            )
        return planned, None
    except Exception as error:  # isolate: one simulation must not stop the fleet
        words = _failure_words(error)
        changes = (_changes.cannot_plan(sim.name, words),) if tuning.explain else ()
        failed = SimulationPlan((), _failed_simulation(sim, job, error), None, changes=changes)
        return failed, words


def plan(
    desired: Desired,
    observed: Observed,
    now: datetime,
    config: PlannerConfig | None = None,
    progress: Mapping[str, Progress] | None = None,
    absent: Mapping[tuple[str, str], datetime] | None = None,
    *,
    sizing: Mapping[str, PoolMemory] | None = None,
    scope: frozenset[str] | None = None,
    explain: bool = True,
) -> Plan:
    """Compare desired with observed state and return the actions of one pass.

    One simulation whose planning raises (a bug, or a value no validation foresaw) gets
    a status row with the reason and no actions; every other object is planned as usual.

    Args:
        desired: what the spec files ask for, secrets resolved.
        observed: one snapshot of the backend.
        now: the current time (timezone-aware); the planner reads no clock.
        config: tuning; defaults are fine for most uses.
        progress: ``Plan.progress`` of the previous pass (progress deadlines span passes).
        absent: ``Plan.absent`` of the previous pass (the prune delay spans passes).
        sizing: ``Plan.sizing`` of the previous pass (the scale-down delay and resize
            retries span passes).
        scope: plan only these simulations (names as Batch compares them, without regard
            to case), None for all. Pools are still planned from the whole ``desired``
            and ``observed`` (a pool's size depends on every simulation on it), but no
            action touches a simulation outside the scope, nothing outside it is pruned
            (so no pool is), status rows are only those of the scope and the pools, and
            ``progress`` / ``absent`` entries outside the scope are carried over as given.
            ``requeue_after`` then covers only what was planned. An edit to one
            simulation so costs one simulation's planning, not the fleet's.
        explain: compute ``Plan.changes`` (``simfleet plan``); the daemon, which prints
            none, passes False and so pays nothing for the words.

    Returns:
        The actions (creations and resizes first, stops and deletions last), the status
        of every object and the earliest moment a timer (a back-off, a progress deadline,
        a prune delay) runs out.
    """
    config = config or PlannerConfig()
    desired = _naming.align(desired, observed)
    in_scope = _scope_test(scope)
    tuning = Tuning(now, config.history, config.settle, explain)
    actions: list[Action] = []
    pool_plans = _pools.plan_pools(
        desired,
        observed,
        now,
        config.scale_down_delay,
        sizing or {},
        explain=explain,
        full=scope is None,
    )
    currents = {
        name: _replacement.generations(name, spec, observed).current
        for name, spec in desired.pools.items()
    }
    by_simulation = _replacement.jobs_by_simulation(observed)
    requeue: list[datetime] = []
    memory: dict[str, PoolMemory] = {}
    for name in sorted(pool_plans):
        pool_plan = pool_plans[name]
        actions += pool_plan.actions
        if pool_plan.requeue_after is not None:
            requeue.append(pool_plan.requeue_after)
        if pool_plan.memory is not None and pool_plan.memory != PoolMemory():
            memory[name] = pool_plan.memory

    simulations = []
    tracked: dict[str, Progress] = {}
    failures: dict[tuple[str, str], str] = {}
    sim_changes: list[Change] = []
    for name in sorted(filter(in_scope, desired.simulations)):
        sim = desired.simulations[name]
        sim_plan, failure = _plan_one(
            sim,
            desired,
            observed,
            tuning,
            (progress or {}).get(name),
            by_simulation.get(name.lower(), ()),
            currents.get(sim.spec.pool, ""),
        )
        if failure is not None:
            failures[("simulation", name)] = failure
        if sim_plan.progress is not None:
            tracked[name] = sim_plan.progress
        actions += sim_plan.actions
        simulations.append(sim_plan.status)
        sim_changes += sim_plan.changes
        if sim_plan.requeue_after is not None:
            requeue.append(sim_plan.requeue_after)

    pruned = _pruning.prune(
        desired,
        observed,
        now,
        config.prune_delay,
        absent,
        None if scope is None else in_scope,
        explain=explain,
    )
    actions += pruned.actions
    if pruned.requeue_after is not None:
        requeue.append(pruned.requeue_after)
    ordered = [a for a in actions if not isinstance(a, REMOVALS)] + [
        a for a in actions if isinstance(a, REMOVALS)
    ]
    status = Status(
        simulations=tuple(simulations) + pruned.simulations,
        pools=tuple(pool_plans[n].status for n in sorted(pool_plans)) + pruned.pools,
    )
    changes = (  # in the order of the phases: pools, simulations, prunes
        *(c for n in sorted(pool_plans) for c in pool_plans[n].changes),
        *sim_changes,
        *pruned.changes,
    )
    if scope is not None:  # what this pass did not look at goes on as it was
        tracked = {
            **{n: p for n, p in (progress or {}).items() if not in_scope(n)},
            **tracked,
        }
        clocks = {k: t for k, t in (absent or {}).items() if not _key_in_scope(k, in_scope)}
        pruned_absent = {**clocks, **pruned.absent}
    else:
        pruned_absent = dict(pruned.absent)
    return Plan(
        tuple(ordered),
        status,
        min(requeue, default=None),
        tracked,
        changes,
        pruned_absent,
        failures,
        memory,
    )


def _everything(_: str) -> bool:
    return True


def _scope_test(scope: frozenset[str] | None) -> Callable[[str], bool]:
    """Whether a simulation (or job) name is in ``scope``; ids compare without case."""
    if scope is None:
        return _everything
    folded = frozenset(name.lower() for name in scope)
    return lambda name: name.lower() in folded


def _key_in_scope(key: tuple[str, str], in_scope: Callable[[str], bool]) -> bool:
    """Whether an absence clock belongs to the scope: a pool's never does."""
    kind, name = key
    return kind == "simulation" and in_scope(name)
