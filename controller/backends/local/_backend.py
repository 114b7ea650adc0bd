"""``LocalBackend``: Azure Batch's pools, jobs and tasks, emulated on this machine.

It carries out the planner's actions the way Batch would: creating what exists succeeds
(Batch's ``JobExists``/``TaskExists`` taken as done), deleting what is gone succeeds, a
pool's slots cap how many simulators run and the rest wait, a deleted job or pool shows
``deleting`` until its simulators are gone. It reports everything in one
:class:`Observed` snapshot per call.

The pieces: :mod:`._store` remembers (``state.json`` plus task folders, under a lock),
:mod:`._actions` turns each action into record changes, :mod:`._lifecycle` moves tasks
from pending to exited (with :mod:`._scheduler`, :mod:`._launching`, the runtime and
:mod:`._supervisor`), :mod:`._recovery` takes over what a previous controller left,
:mod:`._snapshot` builds the observed state, :mod:`._writes` decides when the state file
is written, :mod:`._ownership` notices a state directory taken away and :mod:`._fleet`
keeps the directory to the one fleet it belongs to. This class is the
:class:`~controller.backends.Backend` surface that ties them together.

The state file is written once per burst of changes, shortly after them, at the start of
every ``observe`` and at close, never once per action. When it cannot be written, nothing
in memory waits for it: ``execute`` refuses to act (``StateWriteFailed``, transient, so
each simulation's status says why) until a write succeeds again, and ``observe`` fails
the same way while waiting tasks cannot get their folders. When the state directory is
taken away, this backend stops acting for good: it neither starts nor signals a
simulator again, writes nothing, and every call raises ``StateDirLost``.

``execute`` may be called by many callers at once (the reconciler runs up to its
in-flight limit of actions concurrently): each action changes the records without an
``await`` in between, so concurrent actions never see each other half done.

It must not decide anything the planner decides, must not block the event loop waiting
for processes, and must not write secret values.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import structlog

from controller.backends import (
    DEFAULT_FLEET,
    OutputChunk,
    OutputStream,
    PermanentBackendError,
    check_fleet_name,
)
from controller.backends.local import _fleet, _output, _snapshot
from controller.backends.local._actions import Actions
from controller.backends.local._lifecycle import Lifecycle
from controller.backends.local._ownership import Ownership
from controller.backends.local._processes import ProcessRuntime
from controller.backends.local._records import TaskRecord, TaskRef
from controller.backends.local._recovery import Recovery
from controller.backends.local._runtime import STDERR_FILE, STDOUT_FILE, OutputLimits, Runtime
from controller.backends.local._store import Store
from controller.backends.local._writes import StateWriter
from controller.planner import Action, Observed

#: ``execute`` lets the event loop run after this many seconds of back-to-back actions.
YIELD_EVERY = 0.02
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
    #: One ``AddTasks`` may carry any number of tasks: no request size to respect here.
    tasks_per_request = 10_000

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
        fleet: str = DEFAULT_FLEET,
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
            fleet: the fleet this controller acts for; the state directory belongs to
                one fleet (see :mod:`._fleet`).

        Raises:
            ValueError: output limits out of range, or not a fleet name.
        """
        self.fleet = check_fleet_name(fleet)
        self._store = Store(state_dir, read_only=read_only, clock=clock)
        self._read_only = read_only
        self._runtime: Runtime = runtime or ProcessRuntime()
        self._owner = Ownership(self._store, read_only=read_only, on_lost=self._on_lost)
        self._life = Lifecycle(
            self._store,
            self._runtime,
            clock=clock,
            grace=stop_grace,
            changed=self._changed,
            output=OutputLimits(log_max_bytes, log_max_files),
            may_act=self._owner.check,
        )
        self._actions = Actions(self._store, self._life, clock)
        self._writer = StateWriter(self._store, self._owner, lambda: self._state == "open")
        self._clock = clock
        self._callbacks: list[Callable[[], None]] = []
        self._notify_pending = False
        self._last_yield = time.monotonic()
        self._snapshots = _snapshot.Snapshots()
        self._pids: dict[tuple[TaskRef, int | None], int] = {}
        self._state = "new"  # new → open → closing → closed

    async def open(self) -> None:
        """Lock the state directory, load it and take over what the last controller left.

        Simulators are taken over from the records and from the process table together
        (see :mod:`._recovery`): no record, damaged or missing, stops the backend from
        opening. Pending tasks that fit are started.

        Raises:
            PermanentBackendError: another controller holds the state directory
                (``StateDirLocked``), it belongs to another fleet (``FleetMismatch``), or
                it cannot be used at all (``StateDirUnusable``).
        """
        if self._state != "new":
            return
        try:
            if not self._read_only:
                self._store.lock()  # refused: nothing is held, and open() may be tried again
        except OSError as error:
            raise PermanentBackendError(
                f"cannot use {self._store.root}: {error}", code="StateDirUnusable"
            ) from error
        try:
            _fleet.claim(self._store.root, self.fleet, record=not self._read_only)
            self._store.load()
            self._state = "open"
            if not self._read_only:
                _raise_descriptor_limit()
                self._store.on_mark = self._writer.later
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
            self._owner.watch(lambda: self._state == "open")
            with contextlib.suppress(OSError, PermanentBackendError):  # observe reports it
                await self._writer.flush()

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
        if not self._read_only and not self._owner.lost:
            if stop_simulators:
                await self._life.stop_everything()
            else:
                await self._life.drain()
            self._life.close()
            await self._runtime.settle()
            self._writer.cancel()
            try:
                await self._writer.flush()
            except (OSError, PermanentBackendError) as error:
                log.error("state_not_saved", path=str(self._store.state_file), error=str(error))
        self._writer.cancel()
        self._owner.stop_watching()
        self._store.unlock()
        self._state = "closed"

    def forget(self) -> None:
        """Nothing to drop: every observation reads this controller's own records, and only
        the state directory's lock holder writes them."""

    def request_counts(self) -> Mapping[tuple[str, str], int]:
        """No HTTP requests: nothing to count."""
        return {}

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` from the event loop after a simulator started or ended by itself.

        Args:
            callback: takes no arguments; called once per burst of changes.
        """
        self._callbacks.append(callback)

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        """One immutable snapshot of every pool and of the jobs asked for, with their
        tasks (exited ones included).

        Writes the state first if it changed, and starts again what waits for a task
        folder that could not be made; a state file that cannot be written does not fail
        the snapshot (``execute`` refuses to act until it can be written).

        Args:
            jobs: the jobs to report (those of them that exist); None reports every job,
                an empty set none (pools only).

        Returns:
            The snapshot; running tasks carry the simulator's pid.

        Raises:
            TransientBackendError: ``StateWriteFailed``: waiting tasks still cannot get
                their folders (nothing asked for can start; tried again each call).
            PermanentBackendError: ``StateDirLost``: the state directory was taken away.
        """
        self._require_usable()
        if self._read_only:
            self._store.reload_if_changed()
        else:
            folders = self._life.retry_storage()
            with contextlib.suppress(OSError):  # kept in write_error: execute reports it
                await self._writer.flush()
            if folders is not None:
                raise self._writer.failed(folders)
            self._writer.note_recovery()
        return self._snapshots(self._store, self._pid_of, jobs)

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

    async def execute(self, action: Action) -> None:
        """Carry out one planner action, as Batch would (see :mod:`._actions`); returns
        without waiting for processes to end (stops finish in the background and are
        reported later). Safe to call concurrently.

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
            self._last_yield = time.monotonic()
            await asyncio.sleep(0)
            self._require_usable()
        if self._store.write_error is not None:  # act only on what can be recorded
            try:
                await self._writer.flush()
            except OSError as error:
                raise self._writer.failed(error) from error
            self._writer.note_recovery()
        try:
            self._actions.apply(action)
        except OSError as error:  # the state directory itself failed (disk full, …)
            raise self._writer.failed(error) from error
        self._store.mark()

    # -------------------------------------------------------------------- helpers

    def _abandon(self) -> None:
        """A failed open: let go of everything; this instance is done."""
        self._life.close()
        self._store.unlock()
        self._state = "closed"

    def _on_lost(self) -> None:
        """The state directory was taken away: stop acting and tell the daemon, whose
        next pass then reports ``StateDirLost``."""
        self._writer.cancel()
        self._life.abandon()
        with contextlib.suppress(RuntimeError):  # outside the event loop: nobody to wake
            self._changed()

    def _require_usable(self) -> None:
        """Open, and still the owner of the state directory (checked on every call)."""
        self._require_open()
        self._owner.require()

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
