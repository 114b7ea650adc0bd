"""Which pending tasks may start now: Batch's slot accounting, as a pure function.

A pool runs at most ``(dedicated + spot) × taskSlotsPerNode`` simulators at once across
all the jobs on it (local nodes are allocated at once, so current = target). Pending
tasks start first-in, first-out by creation order as slots free up. Worked example: a
pool of 1 node × 2 slots and three tasks a, b, c (created in that order) → a and b run,
c waits; when a exits, c starts.

A task whose job is being deleted, or whose pool is missing or being deleted, waits.
A task that is being stopped still holds its slot until its process is gone.

A shrink removes idle nodes only (:func:`busy_nodes`): local nodes have no identity, so
the simulators holding slots are taken to be packed onto as few nodes as hold them, as
Batch packs them on a pool created with ``nodeFillType: pack``; those nodes stay.

This module does no I/O and starts nothing; the backend acts on its answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.backends.local._records import (
    JobRecord,
    PoolRecord,
    TaskPhase,
    TaskRecord,
    TaskRef,
)

_HOLDING_A_SLOT = (TaskPhase.LAUNCHING, TaskPhase.RUNNING)


def startable(
    pools: Mapping[str, PoolRecord],
    jobs: Mapping[str, JobRecord],
    tasks: Iterable[TaskRecord],
) -> list[TaskRef]:
    """The pending tasks that fit on their pools now, oldest first.

    Args:
        pools: the pools by name.
        jobs: the jobs by name.
        tasks: every task, in any order.

    Returns:
        References of the tasks to start, in creation order.
    """
    free = {name: pool.capacity for name, pool in pools.items()}
    waiting: list[TaskRecord] = []
    for task in tasks:
        job = jobs.get(task.job)
        if job is None or job.pool not in free:
            continue
        if task.phase in _HOLDING_A_SLOT:
            free[job.pool] -= 1
        elif task.phase is TaskPhase.PENDING and not job.deleting:
            waiting.append(task)
    chosen: list[TaskRef] = []
    for task in sorted(waiting, key=lambda t: t.seq):
        pool = jobs[task.job].pool
        if free[pool] > 0:
            free[pool] -= 1
            chosen.append(task.ref)
    return chosen


def busy_nodes(pool: PoolRecord, jobs: Mapping[str, JobRecord], tasks: Iterable[TaskRecord]) -> int:
    """How many of the pool's nodes its slot-holding simulators fill, packed: 5 on
    4 slots per node → 2."""
    holding = sum(
        1
        for task in tasks
        if task.phase in _HOLDING_A_SLOT and task.job in jobs and jobs[task.job].pool == pool.name
    )
    return -(-holding // pool.config.task_slots_per_node)
