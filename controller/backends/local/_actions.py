"""The planner's actions → changes of the local records, the way Batch answers them.

Creating what exists succeeds (Batch's ``JobExists``/``TaskExists`` taken as done),
deleting what is gone succeeds, and what is being deleted refuses new work with a
transient error (``JobBeingDeleted``/``PoolBeingDeleted``) until its simulators are gone.
Each function changes records synchronously, with no ``await`` between reading and
writing them, so any number of callers may run :func:`apply` concurrently on one event
loop; starting and stopping processes is handed to the :class:`~._lifecycle.Lifecycle`.

The caller marks the store changed once per action (:meth:`~._store.Store.mark`): the
state file is written once per burst of actions, not once per record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import assert_never

from controller.backends import PermanentBackendError
from controller.backends import TransientBackendError as Transient
from controller.backends.local._lifecycle import Lifecycle
from controller.backends.local._records import (
    JobRecord,
    PoolRecord,
    StopIntent,
    TaskRecord,
    TemplateRecord,
)
from controller.backends.local._scheduler import busy_nodes
from controller.backends.local._store import Store, check_id
from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    PoolConfig,
    RecordLogin,
    ResizePool,
    ShrinkPool,
    StopTask,
)


class Actions:
    """Applies actions to one store and its lifecycle (see the module docstring)."""

    def __init__(self, store: Store, life: Lifecycle, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._life = life
        self._clock = clock

    def apply(self, action: Action) -> None:
        """Change the records as ``action`` asks.

        Raises:
            PermanentBackendError: ``JobNotFound`` / ``PoolNotFound``, ``InvalidId``.
            TransientBackendError: ``JobBeingDeleted`` / ``PoolBeingDeleted``.
            OSError: the state directory itself failed (a trashed folder).
        """
        match action:
            case CreatePool():
                self._create_pool(action)
            case ResizePool():
                self._resize_pool(action)
            case ShrinkPool():
                self._shrink_pool(action)
            case DeletePool():
                self._delete_pool(action)
            case CreateJob():
                self._create_job(action)
            case DeleteJob():
                self._delete_job(action)
            case AddTasks():
                self._add_tasks(action)
            case StopTask():
                self._life.stop((action.job, action.task_id), StopIntent.STOP)
            case DeleteTask():
                self._delete_task(action)
            case RecordLogin():
                pass  # local simulators pull nothing, so local pools report no login digest
            case _:
                assert_never(action)

    def _create_pool(self, action: CreatePool) -> None:
        check_id("pool", action.name)
        existing = self._store.pools.get(action.name)
        if existing is not None:
            if existing.deleting:
                raise Transient(f"pool {action.name} is being deleted", code="PoolBeingDeleted")
            return
        self._store.pools[action.name] = PoolRecord(
            action.name,
            PoolConfig.of(action.spec),
            action.dedicated,
            action.spot,
            self._clock(),
            spec_pool="" if action.spec_pool == action.name else action.spec_pool,
        )
        self._life.schedule()

    def _sizable(self, name: str) -> PoolRecord:
        """The pool a resize or shrink changes: it exists and is not being deleted."""
        pool = self._store.pools.get(name)
        if pool is None:
            raise PermanentBackendError(f"no pool {name}", code="PoolNotFound")
        if pool.deleting:
            raise Transient(f"pool {name} is being deleted", code="PoolBeingDeleted")
        return pool

    def _resize_pool(self, action: ResizePool) -> None:
        pool = self._sizable(action.name)
        self._store.pools[pool.name] = replace(
            pool, target_dedicated=action.dedicated, target_spot=action.spot
        )
        self._life.schedule()

    def _shrink_pool(self, action: ShrinkPool) -> None:
        """Lower the targets by the idle nodes only: no running simulator loses its slot."""
        pool = self._sizable(action.name)
        busy = busy_nodes(pool, self._store.jobs, self._store.tasks.values())
        dedicated, spot = action.targets_after(busy)
        self._store.pools[pool.name] = replace(pool, target_dedicated=dedicated, target_spot=spot)

    def _delete_pool(self, action: DeletePool) -> None:
        pool = self._store.pools.get(action.name)
        if pool is None:
            return
        self._store.pools[pool.name] = replace(pool, deleting=True)
        self._life.stop_where(lambda t: self._life.pool_of(t) == pool.name)
        self._life.sweep()

    def _create_job(self, action: CreateJob) -> None:
        check_id("job", action.name)
        existing = self._store.jobs.get(action.name)
        if existing is not None:
            if existing.deleting:
                raise Transient(f"job {action.name} is being deleted", code="JobBeingDeleted")
            return
        self._store.jobs[action.name] = JobRecord(
            action.name, action.pool, self._clock(), simulation=action.simulation
        )

    def _delete_job(self, action: DeleteJob) -> None:
        job = self._store.jobs.get(action.name)
        if job is None:
            return
        self._store.jobs[job.name] = replace(job, deleting=True)
        self._life.stop_where(lambda t: t.job == job.name)
        self._life.sweep()

    def _add_tasks(self, action: AddTasks) -> None:
        job = self._store.jobs.get(action.job)
        if job is None:
            raise PermanentBackendError(f"no job {action.job}", code="JobNotFound")
        if job.deleting:
            raise Transient(f"job {action.job} is being deleted", code="JobBeingDeleted")
        for new in action.tasks:
            check_id("task", new.id)
        template = TemplateRecord.of(action.template)
        values = {s.name: s.value.get_secret_value() for s in action.template.secret_env}
        now = self._clock()
        for new in action.tasks:
            ref = (action.job, new.id)
            if ref in self._store.tasks:
                continue  # Batch's TaskExists: the task is there, which is what was asked
            self._store.tasks[ref] = TaskRecord(
                job=action.job,
                id=new.id,
                seq=self._store.next_seq(),
                slot=new.slot,
                revision=new.revision,
                attempt=new.attempt,
                restarts=new.restarts,
                failures=new.failures,
                template=template,
                workdir=action.workdir,
                created_at=now,
            )
            if values:
                self._life.remember_secrets(ref, values)
        self._life.schedule()

    def _delete_task(self, action: DeleteTask) -> None:
        task = self._store.tasks.get((action.job, action.task_id))
        if task is not None and not task.live:
            self._store.remove_task(task.ref)
