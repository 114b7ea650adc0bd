"""The reconciler's view of the fleet between steps.

A full step replaces the view with what the backend reported. A scoped step observed only
some jobs (and every pool, which is one cheap listing): their fresh state replaces the
cached one, every other job keeps its cached state. After execution the view takes the
known effects of the executed actions — new simulators pending, stopped ones stopping,
deleted objects gone — so the status a step publishes already shows what it did, and a
later scoped step does not plan against a job as it was before this step changed it.
What the backend does by itself afterwards (a simulator starting) reaches the view with
the next observation of that job; a backend event or the resync brings a full one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime

from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Observed,
    ObservedJob,
    ObservedPool,
    ObservedTask,
    PoolConfig,
    PoolState,
    RecordLogin,
    ResizePool,
    SimulatorState,
    StopTask,
)


def merged(cached: Observed, fresh: Observed, scope: frozenset[str] | None) -> Observed:
    """``fresh`` over ``cached``: every pool from ``fresh``; the jobs in ``scope`` from
    ``fresh`` (a job in scope that ``fresh`` lacks is gone); the other jobs from ``cached``.

    A backend may answer a scoped observation with more jobs than asked for; those are
    fresher than the cache too, so they are taken.
    """
    if scope is None:
        return fresh
    jobs = {name: job for name, job in cached.jobs.items() if name not in scope}
    jobs.update(fresh.jobs)
    return dataclasses.replace(fresh, jobs=jobs)


def with_effects(observed: Observed, executed: Iterable[Action], now: datetime) -> Observed:
    """The snapshot as it stands once ``executed`` took effect, as far as is known without
    asking the backend (a new simulator is pending, a new pool has no nodes yet)."""
    pools = dict(observed.pools)
    jobs = dict(observed.jobs)
    for action in executed:
        match action:
            case CreatePool(name, spec, dedicated, spot):
                pools.setdefault(
                    name,
                    ObservedPool(
                        name,
                        True,
                        PoolConfig.of(spec),
                        PoolState.RESIZING,
                        target_dedicated=dedicated,
                        target_spot=spot,
                    ),
                )
            case RecordLogin(name, _, digest) if name in pools:
                pools[name] = dataclasses.replace(pools[name], login_digest=digest)
            case ResizePool(name, dedicated, spot) if name in pools:
                pools[name] = dataclasses.replace(
                    pools[name],
                    state=PoolState.RESIZING,
                    target_dedicated=dedicated,
                    target_spot=spot,
                )
            case DeletePool(name):
                pools.pop(name, None)
            case CreateJob(name, pool):
                jobs.setdefault(name, ObservedJob(name, pool, True, created_at=now))
            case DeleteJob(name):
                jobs.pop(name, None)
            case AddTasks(job, template, tasks) if job in jobs:
                known = {t.id for t in jobs[job].tasks}
                pending = tuple(
                    ObservedTask(
                        t.id,
                        t.slot,
                        t.revision,
                        t.attempt,
                        SimulatorState.PENDING,
                        now,
                        restarts=t.restarts,
                        failures=t.failures,
                        image=template.image,
                        secret_names=tuple(s.name for s in template.secret_env),
                        run_options=template.container_run_options,
                    )
                    for t in tasks
                    if t.id not in known
                )
                jobs[job] = dataclasses.replace(jobs[job], tasks=jobs[job].tasks + pending)
            case StopTask(job, task_id) if job in jobs:
                jobs[job] = dataclasses.replace(
                    jobs[job],
                    tasks=tuple(
                        dataclasses.replace(t, stopping=True) if t.id == task_id and t.live else t
                        for t in jobs[job].tasks
                    ),
                )
            case DeleteTask(job, task_id) if job in jobs:
                jobs[job] = dataclasses.replace(
                    jobs[job], tasks=tuple(t for t in jobs[job].tasks if t.id != task_id)
                )
    return dataclasses.replace(observed, pools=pools, jobs=jobs)
