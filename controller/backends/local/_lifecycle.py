"""A recorded task's life: pending → launching → running → exited, and what moves it.

:class:`Lifecycle` starts pending tasks when :mod:`._scheduler` says they fit, stops
tasks (pending ones at once, running ones by SIGTERM and, after the grace, SIGKILL),
records exits the :mod:`._supervisor` reports and removes deleted jobs and pools once their
simulators are gone. What a previous controller left behind is taken over by
:mod:`._recovery`.

Large fleets must not block the event loop: tasks that may start are marked launching
(they hold their slot) and queued, and one launcher task spawns them in slices, yielding
between slices. Exits arrive one by one from the supervisor and are collected in batches
in a worker thread (reaping, exit code, stderr tail, leftover descendants); what follows
(removing deleted jobs, starting what now fits, telling the daemon) runs once per batch.

Every start ends in a state: running, failed with the reason (a value the OS cannot pass,
a missing variable, any exception at all), or back to pending when the state directory
could not be written (reported through :attr:`Lifecycle.storage_error`, retried once the
backend is asked again). Nothing is ever left launching.

It must not decide anything the planner decides (what to run, restarts, back-off), must
not block the event loop waiting for processes, and must not write secret values: the
secrets of a running task stay in memory to mask its stderr tail when it ends.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog

from controller.backends import redact
from controller.backends.local import _exits, _launching, _output, _scheduler
from controller.backends.local._records import StopIntent, TaskPhase, TaskRecord, TaskRef
from controller.backends.local._runtime import (
    STDERR_FILE,
    Ending,
    Handle,
    LaunchError,
    OutputLimits,
    Runtime,
    TaskDirError,
)
from controller.backends.local._store import Store
from controller.backends.local._supervisor import Supervisor
from controller.planner import ExitInfo, ExitReason

#: How long stop_everything waits past the grace for SIGKILLed processes to be gone.
KILL_MARGIN = 5.0
#: The launcher spawns for at most this long before it lets the event loop run.
LAUNCH_SLICE = 0.02


@dataclass(frozen=True)
class _Ended:
    """A simulator the supervisor saw end, waiting to be collected."""

    ref: TaskRef
    task_dir: Path
    handle: Handle
    killed: bool
    secrets: tuple[str, ...] | None  # None: unknown, so the tail is withheld


#: The tail of a simulator that has secrets whose values this controller cannot know (it
#: ended while no controller ran, and the secret may have been rotated since): it may
#: print them, so its tail is not kept. ``simfleet logs`` still reads its output.
WITHHELD_TAIL = "(stderr tail withheld: this simulator's secret values are unknown after a restart)"


def masked_tail(task_dir: Path, secrets: tuple[str, ...] | None) -> str:
    """The stderr tail with ``secrets`` masked, or :data:`WITHHELD_TAIL` when unknown."""
    return WITHHELD_TAIL if secrets is None else _output.tail(task_dir, STDERR_FILE, secrets)


def _collect(runtime: Runtime, ended: list[_Ended]) -> list[tuple[Ending, str]]:
    """In a worker thread: each one's exit facts and redacted stderr tail."""
    return [
        (runtime.collect(e.task_dir, e.handle), masked_tail(e.task_dir, e.secrets)) for e in ended
    ]


log = structlog.get_logger("simfleet.local")


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
        output: OutputLimits,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        """Args:
        store: the records; marked dirty on every change.
        runtime: starts, signals and watches processes.
        clock: the current time, UTC.
        grace: seconds from SIGTERM to SIGKILL.
        changed: called when something changed by itself (an exit, a failed start).
        output: how much output each simulator keeps.
        may_act: asked before each slice of starts and each signal; False once the
            state directory was lost (the backend then abandons this lifecycle).
        """
        self._store = store
        self._runtime = runtime
        self._clock = clock
        self._grace = grace
        self._changed = changed
        self._output = output
        self._may_act = may_act
        self._supervisor = Supervisor(runtime, self._on_gone, may_act)
        self._secrets: dict[TaskRef, Mapping[str, str]] = {}
        self._queue: collections.deque[TaskRef] = collections.deque()
        self._launcher: asyncio.Task[None] | None = None
        self._ended: list[_Ended] = []
        self._collector: asyncio.Task[None] | None = None
        self._all_ended: asyncio.Event | None = None
        #: Set when a task folder could not be prepared; taken by :meth:`retry_storage`.
        self.storage_error: TaskDirError | None = None
        self._storage_failing = False
        self.starting = True  # False once the backend closes: nothing new starts

    def remember_secrets(self, ref: TaskRef, values: Mapping[str, str]) -> None:
        """Keep a task's secret values in memory (only) for as long as it lives."""
        if values:
            self._secrets[ref] = values

    def pool_of(self, task: TaskRecord) -> str | None:
        """The pool a task runs on, through its job."""
        job = self._store.jobs.get(task.job)
        return None if job is None else job.pool

    def secret_values(self, task: TaskRecord) -> list[str]:
        """Every value a task's secrets may hold: as handed over or read back from the
        process, and what the controller's environment holds now (memory only)."""
        values = list(self._secrets.get(task.ref, {}).values())
        values += [
            os.environ[s.from_env] for s in task.template.secrets if s.from_env in os.environ
        ]
        return values

    def tail_secrets(self, task: TaskRecord) -> tuple[str, ...] | None:
        """The values to mask a task's tail against; None when its own are unknown: it has
        secrets, but neither its start nor its live process told this controller, or even
        its template is unknown (adopted from the process table without a record)."""
        if not task.template.known or (task.template.secrets and task.ref not in self._secrets):
            return None
        return tuple(self.secret_values(task))

    # ------------------------------------------------------------------- starting

    def schedule(self) -> None:
        """Queue the pending tasks that fit; they hold their slots while launching."""
        if not self.starting:
            return
        store = self._store
        if not any(t.phase is TaskPhase.PENDING for t in store.tasks.values()):
            return
        refs = _scheduler.startable(store.pools, store.jobs, store.tasks.values())
        if not refs:
            return
        for ref in refs:
            store.tasks[ref] = replace(store.tasks[ref], phase=TaskPhase.LAUNCHING)
            self._queue.append(ref)
        store.mark()
        if self._launcher is None:
            self._launcher = asyncio.get_running_loop().create_task(self._launch_queued())

    async def _launch_queued(self) -> None:
        try:
            while self._queue and self.starting and self._may_act():
                slice_ends = time.monotonic() + LAUNCH_SLICE
                while self._queue and self.starting and time.monotonic() < slice_ends:
                    task = self._store.tasks.get(self._queue.popleft())
                    if task is not None and task.phase is TaskPhase.LAUNCHING:
                        self._launch(task)
                await asyncio.sleep(0)
        finally:
            self._launcher = None

    def _launch(self, task: TaskRecord) -> None:
        task_dir = self._store.task_dir(task.ref)
        try:
            launch = _launching.launch_of(
                task,
                task_dir,
                self._secrets.get(task.ref),
                os.environ,
                pool=self.pool_of(task) or "",
                output=self._output,
                simulation=job.simulation if (job := self._store.jobs.get(task.job)) else "",
            )
            handle = self._runtime.spawn(launch)
        except TaskDirError as error:
            self._storage_failed(task, error)
            return
        except LaunchError as error:
            self._failed_to_start(task, str(error))
            return
        except Exception as error:
            self._failed_to_start(task, f"could not start the simulator: {_describe(error)}")
            return
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.RUNNING,
            pid=handle.pid,
            start_ticks=handle.start_ticks,
            started_at=self._clock(),
        )
        self._store.mark()
        self._storage_failing = False
        self.watch(task.ref, handle)

    def _failed_to_start(self, task: TaskRecord, message: str) -> None:
        message = redact(message, self.secret_values(task))
        self._secrets.pop(task.ref, None)
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.EXITED,
            exited_at=self._clock(),
            exit=ExitInfo(ExitReason.FAILED, message=message),
        )
        self._store.mark()
        log.warning("simulator_not_started", job=task.job, task=task.id, reason=message)
        self._changed()

    def _storage_failed(self, task: TaskRecord, error: TaskDirError) -> None:
        """The state directory cannot be written: this task and every queued one wait."""
        if not self._storage_failing:  # once per fault, not once per retry
            log.warning("task_folder_unwritable", error=str(error))
        self._storage_failing = True
        self.storage_error = error
        self._store.tasks[task.ref] = replace(task, phase=TaskPhase.PENDING)
        while self._queue:
            ref = self._queue.popleft()
            queued = self._store.tasks.get(ref)
            if queued is not None and queued.phase is TaskPhase.LAUNCHING:
                self._store.tasks[ref] = replace(queued, phase=TaskPhase.PENDING)
        self._store.mark()
        self._changed()

    def retry_storage(self) -> TaskDirError | None:
        """Take the last storage error, if any, and queue the waiting tasks again."""
        error, self.storage_error = self.storage_error, None
        if error is not None:
            self.schedule()
        return error

    async def drain(self) -> None:
        """Wait until every queued task has been started (or failed to) and every ended
        one has been recorded."""
        while self._launcher is not None or self._collector is not None:
            for task in (self._launcher, self._collector):
                if task is not None:
                    await asyncio.shield(task)

    def watch(self, ref: TaskRef, handle: Handle) -> None:
        """Watch a running task for its exit and arm its maxLifetime deadline."""
        task = self._store.tasks[ref]
        self._supervisor.watch(ref, self._store.task_dir(ref), handle)
        started = task.started_at or self._clock()
        ran = (self._clock() - started).total_seconds()
        self._supervisor.set_deadline(
            ref, task.template.wall_clock_limit - ran, lambda: self._lifetime_over(ref)
        )
        if task.stopping is not None:  # adopted in the middle of a stop: finish it
            self._supervisor.terminate(ref, self._grace)

    # ------------------------------------------------------------------- stopping

    def stop(self, ref: TaskRef, intent: StopIntent) -> None:
        """End a task: a waiting one at once, a running one by SIGTERM (then SIGKILL).

        Stopping a task that is already stopping or has exited changes nothing.
        """
        task = self._store.tasks.get(ref)
        if task is None:
            return
        if task.phase in (TaskPhase.PENDING, TaskPhase.LAUNCHING):  # the launcher skips it
            self._secrets.pop(ref, None)
            self._store.tasks[ref] = replace(
                task,
                phase=TaskPhase.EXITED,
                exited_at=self._clock(),
                exit=ExitInfo(ExitReason.STOPPED, message="stopped by simfleet before it started"),
            )
            self._store.mark()
        elif task.phase is TaskPhase.RUNNING and task.stopping is None:
            self._store.tasks[ref] = replace(task, stopping=intent)
            self._store.mark()
            self._supervisor.terminate(ref, self._grace)

    def stop_where(self, selected: Callable[[TaskRecord], bool]) -> None:
        """Stop every live task ``selected`` accepts."""
        for task in list(self._store.tasks.values()):
            if task.live and selected(task):
                self.stop(task.ref, StopIntent.STOP)

    def stop_unwanted(self, ref: TaskRef, task_dir: Path, handle: Handle) -> None:
        """Stop a simulator no record wants (adoption found it): SIGTERM, then SIGKILL."""
        self._supervisor.watch(ref, task_dir, handle)
        self._supervisor.terminate(ref, self._grace)

    def _lifetime_over(self, ref: TaskRef) -> None:
        self.stop(ref, StopIntent.LIFETIME)

    async def stop_everything(self) -> None:
        """SIGTERM all at once, wait for them together (SIGKILL follows the grace), record
        them STOPPED, and wait until no descendant is left.

        All are signalled before anything is awaited but a turn of the loop now and then
        (signalling hundreds of process groups takes a while, and the daemon still answers
        meanwhile); exits are collected as they come, in batches, whatever their order.
        """
        self.starting = False
        self._all_ended = asyncio.Event()
        slice_ends = time.monotonic() + LAUNCH_SLICE
        for task in list(self._store.tasks.values()):
            if task.live:
                self.stop(task.ref, StopIntent.SHUTDOWN)
            if time.monotonic() > slice_ends:  # signalling 500 groups takes a while
                await asyncio.sleep(0)
                slice_ends = time.monotonic() + LAUNCH_SLICE
        if self._running():
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
                    stopping=None,
                )
                self._store.mark()
        await self._runtime.settle(until_gone=True)

    def abandon(self) -> None:
        """The state directory was taken away: never start, signal or record again."""
        self._queue.clear()
        self.close()

    def close(self) -> None:
        """Stop watching; simulators still running keep running, unwatched (one that
        ended but was not recorded yet is found ended by the next controller)."""
        self.starting = False
        for task in (self._launcher, self._collector):
            if task is not None:
                task.cancel()
        self._supervisor.close()

    # ---------------------------------------------------------------------- exits

    def _on_gone(self, ref: TaskRef, task_dir: Path, handle: Handle, killed: bool) -> None:
        """The supervisor saw a simulator end: queue it for the collector."""
        task = self._store.tasks.get(ref)
        secrets = self.tail_secrets(task) if task is not None else ()
        self._ended.append(_Ended(ref, task_dir, handle, killed, secrets))
        if self._collector is None:
            self._collector = asyncio.get_running_loop().create_task(self._collect_ended())

    async def _collect_ended(self) -> None:
        """Collect ended simulators in batches off the loop, record them, then settle once
        per batch: remove what was deleted, start what fits, tell the daemon."""
        try:
            while self._ended:
                batch, self._ended = self._ended, []
                facts = await asyncio.to_thread(_collect, self._runtime, batch)
                slice_ends = time.monotonic() + LAUNCH_SLICE
                for ended, (ending, tail) in zip(batch, facts, strict=True):
                    task = self._store.tasks.get(ended.ref)
                    if task is not None and task.phase is TaskPhase.RUNNING:
                        self.record_exit(task, ending, killed=ended.killed, tail=tail)
                    if time.monotonic() > slice_ends:
                        await asyncio.sleep(0)
                        slice_ends = time.monotonic() + LAUNCH_SLICE
                await self._runtime.settle()
                self._settle_exits()
        finally:
            self._collector = None

    def _settle_exits(self) -> None:
        self.sweep()
        self.schedule()
        self._changed()
        if self._all_ended is not None and not self._running():
            self._all_ended.set()

    def record_exit(
        self,
        task: TaskRecord,
        ending: Ending,
        *,
        killed: bool,
        at: datetime | None = None,
        tail: str | None = None,
    ) -> None:
        """Record how a task ended, with its stderr tail (read now unless given), secrets
        masked."""
        stderr = tail
        if stderr is None:
            stderr = masked_tail(self._store.task_dir(task.ref), self.tail_secrets(task))
        self._secrets.pop(task.ref, None)
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.EXITED,
            exited_at=at or self._clock(),
            exit=_exits.describe(ending, task.stopping, killed=killed, stderr_tail=stderr),
            stopping=None,
        )
        self._store.mark()

    def lose(self, task: TaskRecord, message: str) -> None:
        """Record a task as LOST with ``message`` (nothing of it runs any more)."""
        self._supervisor.release(task.ref)
        self._secrets.pop(task.ref, None)
        self._store.tasks[task.ref] = replace(
            task,
            phase=TaskPhase.EXITED,
            exited_at=self._clock(),
            exit=ExitInfo(ExitReason.LOST, message=message),
            stopping=None,
        )
        self._store.mark()

    def sweep(self) -> None:
        """Remove deleted jobs and pools whose simulators are all gone."""
        store = self._store
        if not any(j.deleting for j in store.jobs.values()) and not any(
            p.deleting for p in store.pools.values()
        ):
            return
        live_jobs = {t.job for t in store.tasks.values() if t.live}
        for job in list(store.jobs.values()):
            if job.deleting and job.name not in live_jobs:
                store.remove_job(job.name)
        running_pools = {
            self.pool_of(t) for t in store.tasks.values() if t.phase is TaskPhase.RUNNING
        }
        for pool in list(store.pools.values()):
            if pool.deleting and pool.name not in running_pools:
                del store.pools[pool.name]
                store.mark()

    def _running(self) -> bool:
        return any(t.phase is TaskPhase.RUNNING for t in self._store.tasks.values())


def _describe(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
