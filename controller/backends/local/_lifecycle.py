"""A recorded task's life: pending → launching → running → exited, and what moves it.

:class:`Lifecycle` starts pending tasks when :mod:`._scheduler` says they fit, stops
tasks (pending ones at once, running ones by SIGTERM and, after the grace, SIGKILL),
records exits the :mod:`._supervisor` reports, removes deleted jobs and pools once their
simulators are gone, and takes over what a previous controller left behind.

Why the state is saved before and after each spawn: a controller killed with ``kill -9``
at any moment must, when started again, find every simulator it started (a task saved as
``launching`` is looked for in ``/proc``), learn the exit code of each that ended
meanwhile, and start nothing twice.

It must not decide anything the planner decides (what to run, restarts, back-off), must
not block the event loop waiting for processes, and must not write secret values.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from controller.backends.local import _exits, _launching, _output, _scheduler
from controller.backends.local._records import StopIntent, TaskPhase, TaskRecord, TaskRef
from controller.backends.local._runtime import STDERR_FILE, Ending, Handle, LaunchError, Runtime
from controller.backends.local._store import Store
from controller.backends.local._supervisor import Supervisor
from controller.planner import ExitInfo, ExitReason

#: How long stop_everything waits past the grace for SIGKILLed processes to be gone.
KILL_MARGIN = 5.0


class Lifecycle:
    """Moves tasks through their life and keeps the store in step (see module doc)."""

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        *,
        clock: Callable[[], datetime],
        grace: float,
        changed: Callable[[], None],
    ) -> None:
        """Args:
        store: the records; saved after every change made outside an ``execute``.
        runtime: starts, signals and watches processes.
        clock: the current time, UTC.
        grace: seconds from SIGTERM to SIGKILL.
        changed: called when something changed by itself (an exit, a failed start).
        """
        self._store = store
        self._runtime = runtime
        self._clock = clock
        self._grace = grace
        self._changed = changed
        self._supervisor = Supervisor(runtime, self._on_gone)
        self._secrets: dict[TaskRef, Mapping[str, str]] = {}
        self._all_ended: asyncio.Event | None = None
        self.starting = True  # False once the backend closes: nothing new starts

    def remember_secrets(self, ref: TaskRef, values: Mapping[str, str]) -> None:
        """Keep a task's secret values in memory (only) until it starts or is stopped."""
        self._secrets[ref] = values

    def pool_of(self, task: TaskRecord) -> str | None:
        """The pool a task runs on, through its job."""
        job = self._store.jobs.get(task.job)
        return None if job is None else job.pool

    # ------------------------------------------------------------------- starting

    def schedule(self) -> None:
        """Start the pending tasks that fit; they are saved as launching first."""
        if not self.starting:
            return
        store = self._store
        refs = _scheduler.startable(store.pools, store.jobs, store.tasks.values())
        if not refs:
            return
        for ref in refs:
            store.tasks[ref] = replace(store.tasks[ref], phase=TaskPhase.LAUNCHING)
        store.save()
        for ref in refs:
            self._launch(store.tasks[ref])

    def _launch(self, task: TaskRecord) -> None:
        task_dir = self._store.task_dir(task.ref)
        secrets = self._secrets.pop(task.ref, None)
        try:
            launch = _launching.launch_of(task, task_dir, secrets, os.environ)
            handle = self._runtime.spawn(launch)
        except LaunchError as error:
            self._store.tasks[task.ref] = replace(
                task,
                phase=TaskPhase.EXITED,
                exited_at=self._clock(),
                exit=ExitInfo(ExitReason.FAILED, message=str(error)),
            )
            self._changed()
            return
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.RUNNING,
            pid=handle.pid,
            start_ticks=handle.start_ticks,
            started_at=self._clock(),
        )
        self._watch(task.ref, handle)

    def _watch(self, ref: TaskRef, handle: Handle) -> None:
        """Watch a running task for its exit and arm its maxLifetime deadline."""
        task = self._store.tasks[ref]
        self._supervisor.watch(ref, self._store.task_dir(ref), handle)
        assert task.started_at is not None
        ran = (self._clock() - task.started_at).total_seconds()
        self._supervisor.set_deadline(
            ref, task.template.wall_clock_limit - ran, lambda: self._lifetime_over(ref)
        )
        if task.stopping is not None:  # adopted in the middle of a stop: finish it
            self._supervisor.terminate(ref, self._grace)

    # ------------------------------------------------------------------- stopping

    def stop(self, ref: TaskRef, intent: StopIntent) -> None:
        """End a task: a pending one at once, a running one by SIGTERM (then SIGKILL).

        Stopping a task that is already stopping or has exited changes nothing.
        """
        task = self._store.tasks.get(ref)
        if task is None:
            return
        if task.phase in (TaskPhase.PENDING, TaskPhase.LAUNCHING):
            self._secrets.pop(ref, None)
            self._store.tasks[ref] = replace(
                task,
                phase=TaskPhase.EXITED,
                exited_at=self._clock(),
                exit=ExitInfo(ExitReason.STOPPED, message="stopped by simfleet before it started"),
            )
        elif task.phase is TaskPhase.RUNNING and task.stopping is None:
            self._store.tasks[ref] = replace(task, stopping=intent)
            self._supervisor.terminate(ref, self._grace)

    def stop_where(self, selected: Callable[[TaskRecord], bool]) -> None:
        """Stop every live task ``selected`` accepts."""
        for task in list(self._store.tasks.values()):
            if task.live and selected(task):
                self.stop(task.ref, StopIntent.STOP)

    def _lifetime_over(self, ref: TaskRef) -> None:
        self.stop(ref, StopIntent.LIFETIME)
        self._store.save()

    async def stop_everything(self) -> None:
        """SIGTERM all, wait up to the grace (SIGKILL follows), record them STOPPED."""
        self.starting = False
        for task in list(self._store.tasks.values()):
            if task.live:
                self.stop(task.ref, StopIntent.SHUTDOWN)
        self._store.save()
        if self._running():
            self._all_ended = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_ended.wait(), self._grace + KILL_MARGIN)
        for task in list(self._store.tasks.values()):
            if task.phase is TaskPhase.RUNNING:  # not even SIGKILL ended it (D state?)
                self._supervisor.release(task.ref)
                self._store.tasks[task.ref] = replace(
                    task,
                    phase=TaskPhase.EXITED,
                    exited_at=self._clock(),
                    exit=ExitInfo(
                        ExitReason.STOPPED, message="stopped; still ending after SIGKILL"
                    ),
                )

    def close(self) -> None:
        """Stop watching; simulators still running keep running, unwatched."""
        self.starting = False
        self._supervisor.close()

    # ---------------------------------------------------------------------- exits

    def _on_gone(self, ref: TaskRef, ending: Ending, killed: bool) -> None:
        """The supervisor saw a running task end: record it, start what now fits."""
        task = self._store.tasks.get(ref)
        if task is None or task.phase is not TaskPhase.RUNNING:
            return
        self._record_exit(task, ending, killed=killed)
        self.sweep()
        self.schedule()
        self._store.save()
        self._changed()
        if self._all_ended is not None and not self._running():
            self._all_ended.set()

    def _record_exit(
        self, task: TaskRecord, ending: Ending, *, killed: bool, at: datetime | None = None
    ) -> None:
        stderr = _output.tail(self._store.task_dir(task.ref) / STDERR_FILE)
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.EXITED,
            exited_at=at or self._clock(),
            exit=_exits.describe(ending, task.stopping, killed=killed, stderr_tail=stderr),
            stopping=None,
        )

    def sweep(self) -> None:
        """Remove deleted jobs and pools whose simulators are all gone."""
        store = self._store
        for job in list(store.jobs.values()):
            if job.deleting and not any(t.live for t in store.tasks_of_job(job.name)):
                store.remove_job(job.name)
        for pool in list(store.pools.values()):
            if pool.deleting and not any(
                t.phase is TaskPhase.RUNNING and self.pool_of(t) == pool.name
                for t in store.tasks.values()
            ):
                del store.pools[pool.name]

    def _running(self) -> bool:
        return any(t.phase is TaskPhase.RUNNING for t in self._store.tasks.values())

    # ------------------------------------------------------------------- adoption

    def recover(self) -> None:
        """Take over what the previous controller left: adopt what runs, account for the
        rest, resume unfinished deletions, then start what fits."""
        for task in list(self._store.tasks.values()):
            if task.phase is TaskPhase.LAUNCHING:
                self._recover_launching(task)
            elif task.phase is TaskPhase.RUNNING:
                self._recover_running(task)
        deleting_jobs = {j.name for j in self._store.jobs.values() if j.deleting}
        deleting_pools = {p.name for p in self._store.pools.values() if p.deleting}
        self.stop_where(lambda t: t.job in deleting_jobs or self.pool_of(t) in deleting_pools)
        self.sweep()
        self.schedule()

    def _recover_launching(self, task: TaskRecord) -> None:
        """The controller died around a spawn: is there a wrapper for this task?"""
        task_dir = self._store.task_dir(task.ref)
        found = self._runtime.find(task_dir)
        if found is not None:
            self._store.tasks[task.ref] = replace(
                task,
                phase=TaskPhase.RUNNING,
                pid=found.pid,
                start_ticks=found.start_ticks,
                started_at=self._clock(),
            )
            self._watch(task.ref, found)
            return
        ending = self._runtime.collect(task_dir, None)
        if ending.code is None:  # never started: it simply waits again
            self._store.tasks[task.ref] = replace(task, phase=TaskPhase.PENDING)
        else:
            self._record_exit(task, ending, killed=False, at=ending.at)

    def _recover_running(self, task: TaskRecord) -> None:
        """Adopt the task's process if it is still the same one, else learn how it ended."""
        assert task.pid is not None
        assert task.start_ticks is not None
        handle = Handle(task.pid, task.start_ticks)
        if self._runtime.alive(handle):
            self._watch(task.ref, handle)
            return
        ending = self._runtime.collect(self._store.task_dir(task.ref), handle)
        if ending.code is None and ending.signal is None:
            self._store.tasks[task.ref] = replace(
                task,
                phase=TaskPhase.EXITED,
                exited_at=self._clock(),
                exit=ExitInfo(ExitReason.LOST, message=_exits.LOST_MESSAGE),
                stopping=None,
            )
        else:
            self._record_exit(task, ending, killed=False, at=ending.at)
