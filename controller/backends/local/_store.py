"""The local backend's state directory: one JSON file, the task folders and the lock.

Layout under ``<state_dir>/local/``::

    state.json                    pools, jobs and tasks (rewritten atomically on change)
    lock                          flock'ed by the one controlling instance
    jobs/<job>/<task>/            stdout.txt (+ rotated parts), stderr.txt, exit, pid
    trash/                        folders of forgotten tasks and jobs, being deleted

``state.json`` is written to a temporary file and renamed over the old one, so a
controller killed at any moment leaves either the old or the new state, never half of
one. It is not fsync'ed: the state must survive the *controller* dying, and a machine
crash takes the simulators with it anyway.

Writes are coalesced: changes mark the store dirty and :meth:`Store.flush` writes it at
most once per call, off the event loop (the backend flushes at the start of each pass,
shortly after changes and at close). A write that fails (disk full, read-only) keeps the
store dirty and is tried again on the next flush; nothing in memory depends on it having
succeeded. What a crash loses between a change and the next write is recovered from the
process table (see :mod:`._recovery`), so no simulator is started twice.

Loading never stops a controller: an unreadable file (not JSON, not UTF-8, not the
expected shape) is moved aside to ``state.json.corrupt`` with one logged error, and a
single unreadable record is dropped (a task's, if its id can still be read, is kept as
lost); the process table then tells what still runs.

The lock makes a second controller on the same directory fail fast instead of both
adopting and restarting the same simulators. The lock file's identity (device and inode)
is remembered: if the file is removed or replaced, the directory was taken away from this
controller (``rm -rf``, or another controller now holds a new lock), and the backend stops
acting (:meth:`Store.lock_intact`). A read-only store (``simfleet logs``) takes no lock and
re-reads the file when it changed.

This module keeps records and files; it must not start, signal or judge processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import structlog

from controller.backends import PermanentBackendError
from controller.backends.local import _records
from controller.backends.local._records import JobRecord, PoolRecord, TaskRecord, TaskRef

STATE_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
log = structlog.get_logger("simfleet.local")
_T = TypeVar("_T")


def check_id(kind: str, value: str) -> None:
    """Refuse ids Batch would refuse; they also become directory names here.

    Raises:
        PermanentBackendError: ``code="InvalidId"``.
    """
    if not _ID.match(value):
        raise PermanentBackendError(
            f"{kind} id {value!r} is not 1-64 letters, digits, '-' or '_'", code="InvalidId"
        )


def valid_id(value: str) -> bool:
    """Whether ``value`` is an id :func:`check_id` accepts."""
    return bool(_ID.match(value))


@dataclass(frozen=True)
class _Snapshot:
    """The records at one moment; records are frozen, so it can be written from a thread."""

    seq: int
    pools: list[PoolRecord]
    jobs: list[JobRecord]
    tasks: list[TaskRecord]


class Store:
    """Pools, jobs and tasks in memory, mirrored to ``state.json`` by :meth:`flush`.

    The maps are the backend's own; it replaces records in them and calls :meth:`mark`.
    Tasks are kept in creation order.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        read_only: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Args:
        state_dir: the controller's state directory; this store uses ``local/`` in it.
        read_only: never lock, never write.
        clock: the current time, UTC (when a damaged task record was found).
        """
        self._clock = clock
        # Absolute once and for all: simulators start in their spec's folder and their
        # wrapper writes pid and exit files into the task folder from there, and a later
        # change of the controller's working directory must not move the state.
        self.root = state_dir.absolute() / "local"
        self.read_only = read_only
        self.pools: dict[str, PoolRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[TaskRef, TaskRecord] = {}
        #: Tasks whose records could not be read, with why: recovery adopts them if their
        #: simulator still runs, otherwise they stay lost.
        self.damaged: dict[TaskRef, str] = {}
        #: The last failed write, until a write succeeds again.
        self.write_error: OSError | None = None
        #: How long the last write took (a big state is written less often).
        self.write_seconds = 0.0
        self._seq = 0
        self._lock_file: IO[str] | None = None
        self._lock_path = str(self.root / "lock")
        self._lock_identity: tuple[int, int] | None = None
        self._loaded_version: tuple[int, int] | None = None
        self._changes = 0  # bumped by mark()
        self._written = 0  # the value of _changes the file reflects
        self._trash: list[Path] = []
        self._trash_count = 0
        self._writing = asyncio.Lock()
        #: Called on every :meth:`mark` (the backend schedules a write).
        self.on_mark: Callable[[], None] | None = None

    @property
    def state_file(self) -> Path:
        """Where the JSON state lives."""
        return self.root / "state.json"

    def job_dir(self, job: str) -> Path:
        """The folder holding a job's task folders."""
        return self.root / "jobs" / job

    def task_dir(self, ref: TaskRef) -> Path:
        """The folder holding one task's output, exit code and pid files."""
        return self.job_dir(ref[0]) / ref[1]

    def ref_of(self, task_dir: Path) -> TaskRef | None:
        """The (job, task) a task folder under this store belongs to, if its names are
        valid ids."""
        try:
            relative = task_dir.relative_to(self.root / "jobs")
        except ValueError:
            return None
        parts = relative.parts
        if len(parts) != 2 or not all(valid_id(p) for p in parts):
            return None
        return parts[0], parts[1]

    def next_seq(self) -> int:
        """A number larger than every task's so far: creation order survives restarts."""
        self._seq += 1
        return self._seq

    def tasks_of_job(self, job: str) -> Iterator[TaskRecord]:
        """The tasks of ``job`` in creation order."""
        return (t for t in self.tasks.values() if t.job == job)

    # ---------------------------------------------------------------------- locking

    def lock(self) -> None:
        """Become the one controlling instance of this state directory.

        Raises:
            PermanentBackendError: ``code="StateDirLocked"`` if another process holds it.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.root / "lock"
        handle = path.open("a+")  # not inherited by simulators (O_CLOEXEC by default)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise PermanentBackendError(
                f"{self.root} is in use by another simfleet controller (pid {holder}); "
                "stop it first, or use another --state-dir",
                code="StateDirLocked",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        info = os.fstat(handle.fileno())
        self._lock_file = handle
        self._lock_identity = (info.st_dev, info.st_ino)

    def lock_intact(self) -> bool:
        """Whether the lock file this store holds is still the one at its path (cheap: one
        ``stat``). False once it was removed or replaced."""
        if self._lock_identity is None:
            return True
        try:
            info = os.stat(self._lock_path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._lock_identity

    def unlock(self) -> None:
        """Let the next controller in (closing the file releases the flock)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ---------------------------------------------------------------------- loading

    def load(self) -> None:
        """Read ``state.json`` (an absent file is an empty state); never raises for its
        content (see the module docstring)."""
        self.pools, self.jobs, self.tasks, self.damaged, self._seq = {}, {}, {}, {}, 0
        try:
            stat = self.state_file.stat()
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return
        self._loaded_version = (stat.st_mtime_ns, stat.st_size)
        try:
            data = _top_level(raw)
        except (ValueError, TypeError) as error:
            self._set_aside(str(error))
            return
        for item in data["pools"]:
            pool = _decoded(_records.pool_from_json, item, "pool")
            if pool is not None:
                self.pools[pool.name] = pool
        for item in data["jobs"]:
            job = _decoded(_records.job_from_json, item, "job")
            if job is not None:
                self.jobs[job.name] = job
        tasks = []
        for item in data["tasks"]:
            try:
                tasks.append(_records.task_from_json(item))
            except Exception as error:
                salvaged = _records.salvage_task(item, _reason(error), self._clock())
                log.error("state_record_unreadable", kind="task", error=_reason(error))
                if salvaged is not None and valid_id(salvaged.job) and valid_id(salvaged.id):
                    tasks.append(salvaged)
                    self.damaged[salvaged.ref] = _reason(error)
        tasks.sort(key=lambda t: t.seq)
        self.tasks = {t.ref: t for t in tasks}
        seq = data.get("seq")
        self._seq = max([seq if isinstance(seq, int) else 0, *(t.seq for t in tasks)])

    def _set_aside(self, reason: str) -> None:
        """An unreadable state file: keep it for inspection, start from the process table."""
        if self.read_only:
            log.error("state_file_unreadable", path=str(self.state_file), error=reason)
            return
        aside = self.state_file.with_name("state.json.corrupt")
        try:
            self.state_file.replace(aside)
        except OSError as error:
            aside_text = f"not moved aside ({error.strerror})"
        else:
            aside_text = f"moved to {aside}"
        log.error(
            "state_file_unreadable",
            path=str(self.state_file),
            error=reason,
            kept=aside_text,
            recovery="simulators still running are adopted from the process table",
        )

    def reload_if_changed(self) -> None:
        """For read-only stores: pick up what the controlling instance wrote since."""
        try:
            stat = self.state_file.stat()
        except FileNotFoundError:
            return
        if (stat.st_mtime_ns, stat.st_size) != self._loaded_version:
            self.load()

    # ---------------------------------------------------------------------- writing

    def mark(self) -> None:
        """Something changed: the next :meth:`flush` writes the file."""
        self._changes += 1
        if self.on_mark is not None:
            self.on_mark()

    @property
    def dirty(self) -> bool:
        """Whether memory holds changes the file does not (or trash to delete)."""
        return self._changes != self._written or bool(self._trash)

    async def flush(self) -> None:
        """Write the state if it changed since the last successful write, off the loop, and
        delete the trash; with nothing to write, check that it could be written.

        Raises:
            OSError: the file could not be written; the store stays dirty.
        """
        assert not self.read_only, "a read-only store never writes"
        async with self._writing:
            if not self.dirty:
                self._probe()
                return
            changes, trash = self._changes, self._trash
            self._trash = []
            snapshot = self._snapshot()
            started = time.monotonic()
            try:
                await asyncio.to_thread(self._write, snapshot, trash)
            except OSError as error:
                self.write_error = error
                raise
            finally:
                self.write_seconds = time.monotonic() - started
            self._written = changes
            self.write_error = None

    def _probe(self) -> None:
        """With nothing to write, still learn whether the directory could be written (a
        read-only or immutable directory must be noticed before anything is done that it
        would have to record)."""
        probe = self.root / ".write-probe"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            probe.unlink()
        except OSError as error:
            self.write_error = error
            raise
        self.write_error = None

    def save(self) -> None:
        """Write the state now, on the calling thread (tests, and the last write at close).

        Raises:
            OSError: the file could not be written.
        """
        changes, trash = self._changes, self._trash
        self._trash = []
        self._write(self._snapshot(), trash)
        self._written = changes
        self.write_error = None

    def _snapshot(self) -> _Snapshot:
        return _Snapshot(
            self._seq,
            list(self.pools.values()),
            list(self.jobs.values()),
            list(self.tasks.values()),
        )

    def _write(self, snapshot: _Snapshot, trash: list[Path]) -> None:
        """Write ``snapshot`` atomically (temporary file, then rename); delete ``trash``."""
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)
        data = {
            "version": STATE_VERSION,
            "seq": snapshot.seq,
            "pools": [_records.pool_to_json(p) for p in snapshot.pools],
            "jobs": [_records.job_to_json(j) for j in snapshot.jobs],
            "tasks": [_records.task_to_json(t) for t in snapshot.tasks],
        }
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.state_file.with_suffix(".json.tmp")
        try:
            tmp.write_text(json.dumps(data, separators=(",", ":")))
            tmp.replace(self.state_file)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    # ---------------------------------------------------------------------- removal

    def remove_task(self, ref: TaskRef) -> None:
        """Forget a task; its folder is deleted with the next write."""
        self.tasks.pop(ref, None)
        self._throw_away(self.task_dir(ref))
        self.mark()

    def remove_job(self, name: str) -> None:
        """Forget a job with all its tasks; their folders are deleted with the next write."""
        for ref in [t.ref for t in self.tasks_of_job(name)]:
            del self.tasks[ref]
        self.jobs.pop(name, None)
        self._throw_away(self.job_dir(name))
        self.mark()

    def take_out_trash(self) -> None:
        """Queue what a previous controller left in ``trash/`` for deletion."""
        with contextlib.suppress(OSError):
            self._trash.extend(p for p in (self.root / "trash").iterdir())

    def _throw_away(self, path: Path) -> None:
        """Move ``path`` into ``trash/`` at once (a new task or job of the same name must
        never lose its folder to a late deletion) and delete it later."""
        self._trash_count += 1
        target = self.root / "trash" / f"{os.getpid()}-{self._trash_count}-{path.name}"
        try:
            target.parent.mkdir(exist_ok=True, mode=0o700)
            path.rename(target)
        except FileNotFoundError:
            return
        except OSError:
            shutil.rmtree(path, ignore_errors=True)  # cannot move: delete it right away
            return
        self._trash.append(target)


def _top_level(raw: bytes) -> dict[str, Any]:
    """The state file's outer object, checked for shape.

    Raises:
        ValueError: not UTF-8, not JSON, or not a state of this version.
        TypeError: parts of the wrong type.
    """
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"expected an object, found {type(data).__name__}")
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unknown version {data.get('version')!r}")
    for key in ("pools", "jobs", "tasks"):
        if not isinstance(data.get(key), list):
            raise TypeError(f"{key!r} is not a list")
    return data


def _decoded(decode: Callable[[Any], _T], item: Any, kind: str) -> _T | None:
    try:
        return decode(item)
    except Exception as error:
        log.error("state_record_unreadable", kind=kind, error=_reason(error))
        return None


def _reason(error: Exception) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
