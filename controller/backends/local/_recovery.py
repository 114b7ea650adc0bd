"""Taking over what a previous controller left: records and the process table together.

The state file may be behind (writes are coalesced, and a controller killed between a
spawn and the next write never recorded it), damaged, or gone (``rm -rf``). The process
table is not: every live simulator's wrapper names its task folder and pool
(:mod:`._wrapper`). So recovery reads the table once and reconciles the two:

- a task recorded as running is adopted if its wrapper is still the same process (pid and
  start time), else its exit code is read, else it is LOST;
- a task recorded as pending or launching whose wrapper runs is adopted (the controller
  died after starting it); without one, an exit code in its folder means it ran and ended,
  otherwise it simply waits again;
- a live wrapper with no record is adopted as a running task when its folder names a
  valid job and a task id simfleet makes (slot, revision and attempt are read back from
  the id), so the planner counts it and starts nothing twice; its job is recreated with
  the pool the wrapper names. A wrapper whose id cannot be read, or whose task is recorded
  as exited, is stopped: nothing wants it, and it must not stay an orphan.

Each task is recovered on its own: whatever goes wrong with one (a damaged record, an
unexpected value) makes it LOST with the reason, logged, and never stops the backend from
opening; a simulator it had is stopped rather than left unwatched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import structlog

from controller.backends._environment import SIMFLEET_VARIABLES
from controller.backends.local import _exits, _proctable
from controller.backends.local._lifecycle import Lifecycle
from controller.backends.local._records import JobRecord, TaskPhase, TaskRecord, TemplateRecord
from controller.backends.local._runtime import Found, Handle, Runtime
from controller.backends.local._store import Store
from controller.planner import parse_task_id

log = structlog.get_logger("simfleet.local")
#: What a wrapper was told its simulation is (``SIMFLEET_SIMULATION``).
_SIMULATION = frozenset(SIMFLEET_VARIABLES[:1])


class Recovery:
    """One take-over at ``open()`` (see the module docstring)."""

    def __init__(
        self, store: Store, runtime: Runtime, life: Lifecycle, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._life = life
        self._clock = clock

    def run(self) -> None:
        """Reconcile records with the process table and resume deletions. Starting what
        fits is the caller's, once the runtime has settled: a task that waits again must
        not be started before the sweep for what its earlier start left behind."""
        store = self._store
        found = self._runtime.scan(store.root)
        pools = {task_dir: live.pool for task_dir, live in found.items()}
        handles = {task_dir: live.handle for task_dir, live in found.items()}
        for task in list(store.tasks.values()):
            live = found.pop(store.task_dir(task.ref), None)
            try:
                self._recover(task, live)
            except Exception as error:
                reason = f"{type(error).__name__}: {error}"
                log.error("task_not_recovered", job=task.job, task=task.id, error=reason)
                self._life.lose(task, f"could not be taken over after a restart ({reason})")
                if live is not None:  # not left running unwatched: nothing would count it
                    self._life.stop_unwanted(task.ref, live.task_dir, live.handle)
        for live in found.values():
            self._adopt_unrecorded(live)
        self._give_jobs_to_orphans(pools, handles)
        store.damaged.clear()
        deleting_jobs = {j.name for j in store.jobs.values() if j.deleting}
        deleting_pools = {p.name for p in store.pools.values() if p.deleting}
        self._life.stop_where(
            lambda t: t.job in deleting_jobs or self._life.pool_of(t) in deleting_pools
        )
        self._life.sweep()
        store.mark()

    def _recover(self, task: TaskRecord, live: Found | None) -> None:
        if task.ref in self._store.damaged:
            if live is not None:
                self._adopt(task, live.handle)
            return
        if task.phase is TaskPhase.RUNNING:
            self._recover_running(task, live)
        elif task.phase in (TaskPhase.PENDING, TaskPhase.LAUNCHING):
            self._recover_waiting(task, live)
        elif live is not None:  # recorded as exited, yet its wrapper runs
            log.warning("stopping_unwanted_simulator", job=task.job, task=task.id)
            self._life.stop_unwanted(task.ref, live.task_dir, live.handle)

    def _recover_running(self, task: TaskRecord, live: Found | None) -> None:
        """Adopt the task's process if it is still the same one, else learn how it ended."""
        if task.pid is not None and task.start_ticks is not None:
            handle = Handle(task.pid, task.start_ticks)
            if self._runtime.alive(handle):
                if live is not None and live.handle != handle:  # two wrappers, one task
                    self._life.stop_unwanted(task.ref, live.task_dir, live.handle)
                self._adopt(task, handle)
                return
        else:
            handle = None
        if live is not None:
            self._adopt(task, live.handle)
            return
        ending = self._runtime.collect(self._store.task_dir(task.ref), handle)
        if ending.code is None and ending.signal is None:
            self._life.lose(task, _exits.LOST_MESSAGE)
        else:
            self._life.record_exit(task, ending, killed=False, at=ending.at)

    def _recover_waiting(self, task: TaskRecord, live: Found | None) -> None:
        """A task not known to have started: did it, and does it still run?"""
        if live is not None:
            self._adopt(task, live.handle)
            return
        ending = self._runtime.collect(self._store.task_dir(task.ref), None)
        if ending.code is not None:
            self._life.record_exit(task, ending, killed=False, at=ending.at)
        elif ending.started:  # it ran, its pid unsaved, and vanished with no code
            self._life.lose(task, _exits.LOST_MESSAGE)
        elif task.phase is not TaskPhase.PENDING:  # never started: it simply waits again
            self._store.tasks[task.ref] = replace(task, phase=TaskPhase.PENDING)

    def _adopt(self, task: TaskRecord, handle: Handle) -> None:
        """Watch ``handle`` as the task's running simulator; read its secrets back (memory
        only) so its stderr tail can be masked when it ends."""
        started = task.started_at
        if task.phase is not TaskPhase.RUNNING or task.pid != handle.pid:
            started = _proctable.started_at(handle.start_ticks)
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.RUNNING,
            pid=handle.pid,
            start_ticks=handle.start_ticks,
            started_at=started,
            exited_at=None,
            exit=None,
        )
        names = frozenset(s.name for s in task.template.secrets)
        self._life.remember_secrets(task.ref, self._runtime.environment(handle, names))
        self._life.watch(task.ref, handle)

    def _adopt_unrecorded(self, live: Found) -> None:
        """A live simulator the records do not know: adopt it if its id says which slot it
        holds, stop it otherwise."""
        store = self._store
        ref = store.ref_of(live.task_dir)
        key = None if ref is None else parse_task_id(ref[0], ref[1])
        if ref is None or key is None:
            log.warning("stopping_unknown_simulator", task_dir=str(live.task_dir))
            self._life.stop_unwanted(ref or ("", str(live.task_dir)), live.task_dir, live.handle)
            return
        started = _proctable.started_at(live.handle.start_ticks)
        task = TaskRecord(
            job=ref[0],
            id=ref[1],
            seq=store.next_seq(),
            slot=key.slot,
            revision=key.revision,
            attempt=key.attempt,
            restarts=0,
            failures=0,
            template=TemplateRecord.unknown(),
            workdir=None,
            created_at=started,
            phase=TaskPhase.RUNNING,
            pid=live.handle.pid,
            start_ticks=live.handle.start_ticks,
            started_at=started,
        )
        store.tasks[task.ref] = task
        log.warning("adopted_from_process_table", job=task.job, task=task.id, pid=live.handle.pid)
        self._life.watch(task.ref, live.handle)

    def _give_jobs_to_orphans(self, pools: dict[Path, str], handles: dict[Path, Handle]) -> None:
        """Every running task needs its job (the planner sees tasks through jobs), on the
        pool its wrapper names and marked with the simulation its wrapper was told (a job
        on a replacement pool is not named after its simulation); a task whose job is
        gone and that does not run is forgotten."""
        store = self._store
        for task in list(store.tasks.values()):
            if task.job in store.jobs:
                continue
            if task.phase is not TaskPhase.RUNNING:
                log.warning("forgetting_task_without_job", job=task.job, task=task.id)
                del store.tasks[task.ref]
                continue
            task_dir = store.task_dir(task.ref)
            pool = pools.get(task_dir, "")
            handle = handles.get(task_dir)
            told = self._runtime.environment(handle, _SIMULATION) if handle is not None else {}
            simulation = told.get(SIMFLEET_VARIABLES[0], "")
            store.jobs[task.job] = JobRecord(
                task.job,
                pool,
                self._clock(),
                simulation="" if simulation == task.job else simulation,
            )
            log.warning("job_recreated", job=task.job, pool=pool)
