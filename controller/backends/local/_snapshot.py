"""The local backend's records → one immutable :class:`Observed` snapshot.

Local nodes are allocated the moment they are asked for, so a pool's current counts
equal its targets, all of them usable, and its state is ``steady`` (``deleting``, its
nodes leaving, while its simulators stop).
Everything here was created by simfleet, so everything is ``owned``. A running task
reports the simulator's own pid (what users may ``kill``), not its wrapper's.

Large fleets: a pass must not rebuild 20,000 planner values that did not change, so
:class:`Snapshots` keeps each task's :class:`ObservedTask` for as long as its record (a
frozen value, replaced on every change) and its pid stay the same objects. A snapshot may
be scoped to some jobs (a pass woken by an edit looks only at the simulations it
changed): every pool is still reported, and the values kept for other jobs' tasks stay
kept for the next full snapshot.

Pure apart from the ``pid_of`` lookup it is handed; it changes no record.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from controller.backends.local._records import TaskPhase, TaskRecord
from controller.backends.local._store import Store
from controller.planner import (
    JobState,
    NodeStates,
    Observed,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    PoolState,
    SimulatorState,
)

_STATES = {
    TaskPhase.PENDING: SimulatorState.PENDING,
    TaskPhase.LAUNCHING: SimulatorState.PENDING,
    TaskPhase.RUNNING: SimulatorState.RUNNING,
    TaskPhase.EXITED: SimulatorState.EXITED,
}


class Snapshots:
    """Builds snapshots of one store, reusing the planner values of unchanged tasks."""

    def __init__(self) -> None:
        #: Per job: id of a task record → (that record, its pid, its planner value).
        self._tasks: dict[str, dict[int, tuple[TaskRecord, int | None, ObservedTask]]] = {}

    def __call__(
        self,
        store: Store,
        pid_of: Callable[[TaskRecord], int | None],
        jobs: frozenset[str] | None = None,
    ) -> Observed:
        """See :func:`snapshot`."""
        fresh: dict[str, dict[int, tuple[TaskRecord, int | None, ObservedTask]]] = {}

        def observed(task: TaskRecord, pid: int | None) -> ObservedTask:
            known = self._tasks.get(task.job, {}).get(id(task))
            if known is not None and known[0] is task and known[1] == pid:
                value = known[2]
            else:
                value = observed_task(task, pid)
            fresh.setdefault(task.job, {})[id(task)] = (task, pid, value)
            return value

        built = snapshot(store, pid_of, observed, jobs)
        if jobs is None:
            self._tasks = fresh
        else:
            for job in jobs:
                self._tasks.pop(job, None)
            self._tasks.update(fresh)
        return built


def snapshot(
    store: Store,
    pid_of: Callable[[TaskRecord], int | None],
    observed: Callable[[TaskRecord, int | None], ObservedTask] | None = None,
    jobs: frozenset[str] | None = None,
) -> Observed:
    """Every pool, and every job of ``jobs`` with its tasks (exited ones included), as
    planner values.

    Args:
        store: the records.
        pid_of: the simulator's pid of a running task, if known.
        observed: turns a record into its planner value (:func:`observed_task`).
        jobs: the jobs to report, those of them that exist; None for every job.

    Returns:
        A snapshot whose mappings are read-only views of fresh dicts.
    """
    observed = observed or observed_task
    wanted = store.jobs.keys() if jobs is None else jobs & store.jobs.keys()
    pools = {
        p.name: ObservedPool(
            name=p.name,
            owned=True,
            config=p.config,
            state=PoolState.DELETING if p.deleting else PoolState.STEADY,
            target_dedicated=p.target_dedicated,
            target_spot=p.target_spot,
            current_dedicated=p.target_dedicated,
            current_spot=p.target_spot,
            nodes=_nodes(p.target_dedicated + p.target_spot, deleting=p.deleting),
        )
        for p in store.pools.values()
    }
    tasks: dict[str, list[ObservedTask]] = {}
    for task in store.tasks.values() if wanted else ():
        if task.job not in wanted:
            continue
        pid = pid_of(task) if task.phase is TaskPhase.RUNNING else None
        tasks.setdefault(task.job, []).append(observed(task, pid))
    observed_jobs = {
        j.name: ObservedJob(
            name=j.name,
            pool=j.pool,
            owned=True,
            state=JobState.DELETING if j.deleting else JobState.ACTIVE,
            tasks=tuple(tasks.get(j.name, ())),
            created_at=j.created_at,
        )
        for j in store.jobs.values()
        if j.name in wanted
    }
    return Observed(pools=MappingProxyType(pools), jobs=MappingProxyType(observed_jobs))


def _nodes(count: int, *, deleting: bool) -> NodeStates:
    """Local nodes never break: every one is usable from the moment it is asked for
    (leaving while its pool is deleted), so status has the same shape on both backends."""
    return NodeStates(leaving=count) if deleting else NodeStates(usable=count)


def observed_task(task: TaskRecord, pid: int | None) -> ObservedTask:
    """One task record as the planner sees it."""
    return ObservedTask(
        id=task.id,
        slot=task.slot,
        revision=task.revision,
        attempt=task.attempt,
        state=_STATES[task.phase],
        created_at=task.created_at,
        started_at=task.started_at,
        exited_at=task.exited_at,
        exit=task.exit,
        restarts=task.restarts,
        failures=task.failures,
        pid=pid,
        stopping=task.stopping is not None and task.phase is not TaskPhase.EXITED,
        image=task.template.image,
        run_options=task.template.run_options,
    )
