"""``LocalBackend``: Azure Batch's pools, jobs and tasks, emulated on this machine.

It carries out the planner's actions the way Batch would: creating what exists succeeds
(Batch's ``JobExists``/``TaskExists`` taken as done), deleting what is gone succeeds, a
pool's slots cap how many simulators run and the rest wait, a deleted job or pool shows
``deleting`` until its simulators are gone. It reports everything in one
:class:`Observed` snapshot per call.

The pieces: :mod:`._store` remembers (``state.json`` plus task folders, under a lock),
:mod:`._lifecycle` moves tasks from pending to exited (with :mod:`._scheduler`,
:mod:`._launching`, the runtime and :mod:`._supervisor`), :mod:`._recovery` takes over
what a previous controller left, :mod:`._snapshot` builds the observed state. This class
is the :class:`~controller.backends.Backend` surface: it turns each action into record
changes and hands the rest to the lifecycle.

The state file is written once per burst of changes, shortly after them, at the start of
every ``observe`` and at close, never once per action. When it cannot be written, nothing
in memory waits for it: ``execute`` refuses to act (``StateWriteFailed``, transient, so
each simulation's status says why) until a write succeeds again, and ``observe`` fails
the same way while waiting tasks cannot get their folders. When the state directory is
taken away (its lock file removed or replaced: ``rm -rf``, or another controller locked
it anew), this backend stops acting for good: it neither starts nor signals a simulator
again, writes nothing, and every call raises ``StateDirLost``.

It must not decide anything the planner decides, must not block the event loop waiting
for processes, and must not write secret values.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import assert_never

import structlog

from controller.backends import OutputChunk, OutputStream, PermanentBackendError
from controller.backends import TransientBackendError as Transient
from controller.backends.local import _output, _snapshot
from controller.backends.local._lifecycle import Lifecycle
from controller.backends.local._processes import ProcessRuntime
from controller.backends.local._records import (
    JobRecord,
    PoolRecord,
    StopIntent,
    TaskRecord,
    TaskRef,
    TemplateRecord,
)
from controller.backends.local._recovery import Recovery
from controller.backends.local._runtime import STDERR_FILE, STDOUT_FILE, OutputLimits, Runtime
from controller.backends.local._store import Store, check_id
from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    Observed,
    PoolConfig,
    ResizePool,
    StopTask,
)

#: Seconds between a change and the state file write that includes it (coalescing).
FLUSH_DELAY = 0.25
#: ``execute`` lets the event loop run after this many seconds of back-to-back actions.
YIELD_EVERY = 0.02
#: Seconds between looks at the lock file while nothing else looks (see _still_owner).
OWNER_CHECK_EVERY = 2.0
#: Signals and starts within this many seconds of a look at the lock file share it.
OWNER_RECHECK = 0.01
#: Descriptors the controller may hold (a pidfd per simulator), if the hard limit allows.
WANTED_DESCRIPTORS = 65536

log = structlog.get_logger("simfleet.local")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LocalBackend:
    """Runs simulators on this machine; satisfies :class:`controller.backends.Backend`.

    Use it as ``backend = LocalBackend(dir); await backend.open(); ...; await
    backend.close()``, or as ``async with LocalBackend(dir) as backend:`` (which closes
    with ``stop_simulators=False``).
    """

    name = "local"
    tasks_per_request = 10_000  # one execute starts them all; the limit is the machine

    def __init__(
        self,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        stop_grace: float = 10.0,
        read_only: bool = False,
        runtime: Runtime | None = None,
        log_max_bytes: int = OutputLimits.max_bytes,
        log_max_files: int = OutputLimits.max_files,
    ) -> None:
        """Prepare a backend; nothing is read, locked or started before :meth:`open`.

        Args:
            state_dir: the controller's state directory; this backend uses ``local/``.
                A relative path is made absolute here, once.
            clock: returns the current time, timezone-aware UTC.
            stop_grace: seconds between SIGTERM and SIGKILL when stopping a simulator.
            read_only: observe and read output only (``simfleet logs``): no lock, never
                spawns, signals or writes.
            runtime: what runs simulators; the ``process`` runtime by default.
            log_max_bytes: the size at which a simulator's stdout or stderr file is
                rotated (10 MiB by default, like the kubelet).
            log_max_files: how many files of each stream are kept, the current one
                included (5 by default; at least 2).

        Raises:
            ValueError: output limits out of range.
        """
        self._store = Store(state_dir, read_only=read_only, clock=clock)
        self._read_only = read_only
        self._runtime: Runtime = runtime or ProcessRuntime()
        self._life = Lifecycle(
            self._store,
            self._runtime,
            clock=clock,
            grace=stop_grace,
            changed=self._changed,
            output=OutputLimits(log_max_bytes, log_max_files),
            may_act=self._still_owner,
        )
        self._clock = clock
        self._callbacks: list[Callable[[], None]] = []
        self._notify_pending = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._last_yield = time.monotonic()
        self._snapshots = _snapshot.Snapshots()
        self._pids: dict[tuple[TaskRef, int | None], int] = {}
        self._lost = False
        self._owner_checked = -OWNER_RECHECK
        self._owner_timer: asyncio.TimerHandle | None = None
        self._write_failing = False
        self._state = "new"  # new → open → closing → closed

    async def open(self) -> None:
        """Lock the state directory, load it and take over what the last controller left.

        Simulators are taken over from the records and from the process table together
        (see :mod:`._recovery`): no record, damaged or missing, stops the backend from
        opening. Pending tasks that fit are started.

        Raises:
            PermanentBackendError: another controller holds the state directory
                (``StateDirLocked``), or the directory cannot be used at all
                (``StateDirUnusable``).
        """
        if self._state != "new":
            return
        try:
            if not self._read_only:
                self._store.lock()
            self._store.load()
            self._state = "open"
            if not self._read_only:
                _raise_descriptor_limit()
                self._store.on_mark = self._flush_later
                self._store.take_out_trash()
                Recovery(self._store, self._runtime, self._life, self._clock).run()
        except OSError as error:
            self._abandon()
            raise PermanentBackendError(
                f"cannot use {self._store.root}: {error}", code="StateDirUnusable"
            ) from error
        except PermanentBackendError:
            self._abandon()
            raise
        if not self._read_only:
            await self._runtime.settle()  # what ended while no controller ran leaves nothing
            self._life.schedule()
            self._check_owner_later()
            with contextlib.suppress(OSError, PermanentBackendError):  # observe reports it
                await self._flush()

    async def __aenter__(self) -> LocalBackend:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, *, stop_simulators: bool = False) -> None:
        """Let go of the state directory.

        Args:
            stop_simulators: SIGTERM every simulator at once, SIGKILL those still there
                after the grace period, and record them as STOPPED (the daemon's
                SIGTERM/Ctrl-C). Otherwise they keep running and the next controller
                adopts them; tasks being started are started first.
        """
        if self._state != "open":
            return
        self._state = "closing"
        if not self._read_only and not self._lost:
            if stop_simulators:
                await self._life.stop_everything()
            else:
                await self._life.drain()
            self._life.close()
            await self._runtime.settle()
            self._cancel_flush_timer()
            try:
                await self._flush()
            except (OSError, PermanentBackendError) as error:
                log.error("state_not_saved", path=str(self._store.state_file), error=str(error))
        self._cancel_flush_timer()
        if self._owner_timer is not None:
            self._owner_timer.cancel()
        self._store.unlock()
        self._state = "closed"

    def request_counts(self) -> Mapping[tuple[str, str], int]:
        """No HTTP requests: nothing to count."""
        return {}

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` from the event loop after a simulator started or ended by itself.

        Args:
            callback: takes no arguments; called once per burst of changes.
        """
        self._callbacks.append(callback)

    # --------------------------------------------------------------------- observe

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        """One immutable snapshot of every pool, job and task (exited ones included); a
        scoped observation (``jobs``) gets the same, more than it asks for, never less.

        Writes the state first if it changed, and starts again what waits for a task
        folder that could not be made; a state file that cannot be written does not fail
        the snapshot (``execute`` refuses to act until it can be written).

        Returns:
            The snapshot; running tasks carry the simulator's pid.

        Raises:
            TransientBackendError: ``StateWriteFailed``: waiting tasks still cannot get
                their folders (nothing asked for can start; tried again each call).
            PermanentBackendError: ``StateDirLost``: the state directory was taken away.
        """
        del jobs
        self._require_usable()
        if self._read_only:
            self._store.reload_if_changed()
        else:
            folders = self._life.retry_storage()
            with contextlib.suppress(OSError):  # kept in write_error: execute reports it
                await self._flush()
            if folders is not None:
                raise self._write_failed(folders)
            self._note_recovery()
        return self._snapshots(self._store, self._pid_of)

    async def read_output(
        self,
        job: str,
        task_id: str,
        stream: OutputStream,
        offset: int = 0,
        length: int | None = None,
    ) -> OutputChunk:
        """Part of a simulator's stdout or stderr.

        Args:
            job: the simulation's job.
            task_id: the task.
            stream: stdout or stderr.
            offset: first byte of the stream (rotated parts included); negative counts
                from its end.
            length: at most this many bytes; None reads to the end.

        Returns:
            The bytes, their offset in the stream and the stream's size so far; bytes
            already rotated away are skipped (the offset says where the data starts).

        Raises:
            PermanentBackendError: ``code="TaskNotFound"``.
        """
        self._require_open()
        if self._read_only:
            self._store.reload_if_changed()
        ref = (job, task_id)
        if ref not in self._store.tasks:
            raise PermanentBackendError(f"no task {task_id} in job {job}", code="TaskNotFound")
        name = STDOUT_FILE if stream is OutputStream.STDOUT else STDERR_FILE
        task_dir = self._store.task_dir(ref)
        return await asyncio.to_thread(_output.read_stream, task_dir, name, offset, length)

    # --------------------------------------------------------------------- execute

    async def execute(self, action: Action) -> None:
        """Carry out one planner action, as Batch would; returns without waiting for
        processes to end (stops finish in the background and are reported later).

        Raises:
            PermanentBackendError: ``JobNotFound`` / ``PoolNotFound``, ``InvalidId``,
                ``ReadOnly``, ``StateDirLost``.
            TransientBackendError: ``JobBeingDeleted`` / ``PoolBeingDeleted``, or
                ``StateWriteFailed`` while the state directory cannot be written.
        """
        self._require_usable()
        if self._read_only:
            raise PermanentBackendError("this local backend is read-only", code="ReadOnly")
        if time.monotonic() - self._last_yield > YIELD_EVERY:  # a long pass: let others run
            await asyncio.sleep(0)
            self._last_yield = time.monotonic()
            self._require_usable()
        if self._store.write_error is not None:  # act only on what can be recorded
            try:
                await self._flush()
            except OSError as error:
                raise self._write_failed(error) from error
            self._note_recovery()
        try:
            self._apply(action)
        except OSError as error:  # the state directory itself failed (disk full, …)
            raise self._write_failed(error) from error
        self._store.mark()

    def _apply(self, action: Action) -> None:
        match action:
            case CreatePool():
                self._create_pool(action)
            case ResizePool():
                self._resize_pool(action)
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
            action.name, PoolConfig.of(action.spec), action.dedicated, action.spot, self._clock()
        )
        self._life.schedule()

    def _resize_pool(self, action: ResizePool) -> None:
        pool = self._store.pools.get(action.name)
        if pool is None:
            raise PermanentBackendError(f"no pool {action.name}", code="PoolNotFound")
        if pool.deleting:
            raise Transient(f"pool {action.name} is being deleted", code="PoolBeingDeleted")
        self._store.pools[pool.name] = replace(
            pool, target_dedicated=action.dedicated, target_spot=action.spot
        )
        self._life.schedule()

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
        self._store.jobs[action.name] = JobRecord(action.name, action.pool, self._clock())

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

    # -------------------------------------------------------------------- helpers

    def _abandon(self) -> None:
        """A failed open: let go of everything; this instance is done."""
        self._life.close()
        self._store.unlock()
        self._state = "closed"

    async def _flush(self) -> None:
        """Write the state now if it changed (checking first that the directory is still
        ours: a lost directory is never written)."""
        self._require_owner()
        try:
            await self._store.flush()
        except OSError as error:
            if not self._write_failing:  # once per fault; execute reports it each time
                log.warning("state_write_failed", path=str(self._store.root), error=str(error))
            self._write_failing = True
            raise

    def _flush_later(self) -> None:
        """Called on every change: one write shortly after a burst of them."""
        if self._flush_timer is not None or self._lost or self._state != "open":
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # changed outside the event loop: the next flush writes it
            return
        # A write of a big state holds the interpreter (JSON is built under the GIL) for
        # a while: spacing writes by twice that keeps it to a third of the time at most.
        delay = max(FLUSH_DELAY, 2 * self._store.write_seconds)
        self._flush_timer = loop.call_later(delay, self._flush_in_background)

    def _flush_in_background(self) -> None:
        self._flush_timer = None
        if self._flushing is None and self._state == "open" and not self._lost:
            self._flushing = asyncio.get_running_loop().create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await self._flush()
        except OSError:
            pass  # observe raises StateWriteFailed with the error; the timer tries again
        except PermanentBackendError:
            pass  # StateDirLost: logged once by _require_usable
        finally:
            self._flushing = None
        if self._store.dirty and self._store.write_error is None:
            self._flush_later()  # changes made while writing

    def _cancel_flush_timer(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None

    def _note_recovery(self) -> None:
        if self._write_failing and self._store.write_error is None:
            self._write_failing = False
            log.info("state_write_recovered", path=str(self._store.root))

    def _write_failed(self, error: Exception) -> Transient:
        """The ``StateWriteFailed`` error for a failed write of the state directory."""
        detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        message = (
            f"cannot write the local state in {self._store.root}: {detail}; "
            "running simulators are unaffected, retrying"
        )
        return Transient(message, code="StateWriteFailed")

    def _require_usable(self) -> None:
        """Open, and still the owner of the state directory (checked on every call)."""
        self._require_open()
        self._require_owner()

    def _still_owner(self, *, fresh: bool = False) -> bool:
        """Whether the state directory is still ours (one ``stat`` of the lock file; the
        signals and starts of a burst share one look within :data:`OWNER_RECHECK`, unless
        ``fresh``: every observe and execute looks).

        The first time it is not, this backend stops acting for good and tells the
        daemon, whose next pass then reports ``StateDirLost``.
        """
        if self._lost:
            return False
        if self._read_only:
            return True
        now = time.monotonic()
        if not fresh and now - self._owner_checked < OWNER_RECHECK:
            return True
        self._owner_checked = now
        if self._store.lock_intact():
            return True
        self._lost = True
        self._cancel_flush_timer()
        if self._owner_timer is not None:
            self._owner_timer.cancel()
        log.error(
            "state_dir_lost",
            path=str(self._store.root),
            action="this controller no longer starts, stops or records anything",
        )
        self._life.abandon()
        with contextlib.suppress(RuntimeError):  # outside the event loop: nobody to wake
            self._changed()
        return False

    def _check_owner_later(self) -> None:
        """Look at the lock now and then, so that even an idle controller stops acting
        (and says so) soon after its state directory is taken away."""
        self._owner_timer = None
        if self._state == "open" and self._still_owner(fresh=True):
            loop = asyncio.get_running_loop()
            self._owner_timer = loop.call_later(OWNER_CHECK_EVERY, self._check_owner_later)

    def _require_owner(self, *, fresh: bool = True) -> None:
        """Still the owner of the state directory: its lock file is the one we hold."""
        if not self._still_owner(fresh=fresh):
            raise PermanentBackendError(
                f"state directory lost: {self._store.root} was removed or replaced (its "
                "lock file is not the one this controller holds); this controller stopped "
                "acting and must be restarted",
                code="StateDirLost",
            )

    def _pid_of(self, task: TaskRecord) -> int | None:
        """The simulator's pid, read from its task folder once per started process."""
        key = (task.ref, task.pid)
        pid = self._pids.get(key)
        if pid is None:
            pid = self._runtime.simulator_pid(self._store.task_dir(task.ref))
            if pid is not None:
                if len(self._pids) > 2 * len(self._store.tasks) + 100:
                    self._pids.clear()  # forget ended ones now and then
                self._pids[key] = pid
        return pid

    def _changed(self) -> None:
        """Tell the on_change callbacks, once per burst, from the event loop."""
        if self._notify_pending or not self._callbacks:
            return
        self._notify_pending = True
        asyncio.get_running_loop().call_soon(self._notify)

    def _notify(self) -> None:
        self._notify_pending = False
        for callback in list(self._callbacks):
            callback()

    def _require_open(self) -> None:
        if self._state != "open":
            raise PermanentBackendError(
                f"the local backend is {self._state}, not open", code="NotOpen"
            )


def _raise_descriptor_limit() -> None:
    """Each watched simulator holds a pidfd: raise the soft limit on open descriptors
    towards the hard one (1,024 by default would cap a fleet at about a thousand)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, WANTED_DESCRIPTORS)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
