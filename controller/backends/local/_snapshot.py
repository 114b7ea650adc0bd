"""The local backend's records → one immutable :class:`Observed` snapshot.

Local nodes are allocated the moment they are asked for, so a pool's current counts
equal its targets and its state is ``steady`` (``deleting`` while its simulators stop).
Everything here was created by simfleet, so everything is ``owned``. A running task
reports the simulator's own pid (what users may ``kill``), not its wrapper's.

Pure apart from the ``pid_of`` lookup it is handed; it changes no record.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from controller.backends.local._records import TaskPhase, TaskRecord
from controller.backends.local._store import Store
from controller.planner import (
    JobState,
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


def snapshot(store: Store, pid_of: Callable[[TaskRecord], int | None]) -> Observed:
    """Every pool, job and task of ``store`` (exited tasks included), as planner values.

    Args:
        store: the records.
        pid_of: the simulator's pid of a running task, if known.

    Returns:
        A snapshot whose mappings are read-only views of fresh dicts.
    """
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
        )
        for p in store.pools.values()
    }
    tasks: dict[str, list[ObservedTask]] = {}
    for task in store.tasks.values():
        pid = pid_of(task) if task.phase is TaskPhase.RUNNING else None
        tasks.setdefault(task.job, []).append(observed_task(task, pid))
    jobs = {
        j.name: ObservedJob(
            name=j.name,
            pool=j.pool,
            owned=True,
            state=JobState.DELETING if j.deleting else JobState.ACTIVE,
            tasks=tuple(tasks.get(j.name, ())),
            created_at=j.created_at,
        )
        for j in store.jobs.values()
    }
    return Observed(pools=MappingProxyType(pools), jobs=MappingProxyType(jobs))


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
