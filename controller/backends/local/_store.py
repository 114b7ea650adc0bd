"""The local backend's state directory: one JSON file, the task folders and the lock.

Layout under ``<state_dir>/local/``::

    state.json                    pools, jobs and tasks (rewritten atomically on change)
    lock                          flock'ed by the one controlling instance
    jobs/<job>/<task>/            stdout.txt, stderr.txt, exit, pid (see _processes)

``state.json`` is written to a temporary file and renamed over the old one, so a
controller killed at any moment leaves either the old or the new state, never half of
one. It is not fsync'ed: the state must survive the *controller* dying, and a machine
crash takes the simulators with it anyway.

The lock makes a second controller on the same directory fail fast instead of both
adopting and restarting the same simulators. A read-only store (``simfleet logs``)
takes no lock and re-reads the file when it changed.

This module keeps records and files; it must not start, signal or judge processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from controller.backends import PermanentBackendError
from controller.backends.local import _records
from controller.backends.local._records import JobRecord, PoolRecord, TaskRecord, TaskRef

STATE_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_id(kind: str, value: str) -> None:
    """Refuse ids Batch would refuse; they also become directory names here.

    Raises:
        PermanentBackendError: ``code="InvalidId"``.
    """
    if not _ID.match(value):
        raise PermanentBackendError(
            f"{kind} id {value!r} is not 1-64 letters, digits, '-' or '_'", code="InvalidId"
        )


class Store:
    """Pools, jobs and tasks in memory, mirrored to ``state.json`` by :meth:`save`.

    The maps are the backend's own; it replaces records in them and calls :meth:`save`.
    Tasks are kept in creation order.
    """

    def __init__(self, state_dir: Path, *, read_only: bool = False) -> None:
        """Args:
        state_dir: the controller's state directory; this store uses ``local/`` in it.
        read_only: never lock, never write.
        """
        # Absolute, because simulators start in their spec's folder and their wrapper
        # writes pid and exit files into the task folder from there.
        self.root = state_dir.absolute() / "local"
        self.read_only = read_only
        self.pools: dict[str, PoolRecord] = {}
        self.jobs: dict[str, JobRecord] = {}
        self.tasks: dict[TaskRef, TaskRecord] = {}
        self._seq = 0
        self._lock_file: IO[str] | None = None
        self._loaded_version: tuple[int, int] | None = None

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
        self._lock_file = handle

    def unlock(self) -> None:
        """Let the next controller in (closing the file releases the flock)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------------ load / save

    def load(self) -> None:
        """Read ``state.json`` (an absent file is an empty state).

        Raises:
            PermanentBackendError: ``code="StateCorrupt"`` if the file cannot be read back.
        """
        try:
            stat = self.state_file.stat()
            text = self.state_file.read_text()
        except FileNotFoundError:
            self.pools, self.jobs, self.tasks, self._seq = {}, {}, {}, 0
            return
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            pools = [_records.pool_from_json(p) for p in data["pools"]]
            jobs = [_records.job_from_json(j) for j in data["jobs"]]
            tasks = sorted((_records.task_from_json(t) for t in data["tasks"]), key=_by_seq)
            seq = int(data["seq"])
        except (ValueError, KeyError, TypeError) as error:
            raise PermanentBackendError(
                f"cannot read {self.state_file}: {error}", code="StateCorrupt"
            ) from error
        self.pools = {p.name: p for p in pools}
        self.jobs = {j.name: j for j in jobs}
        self.tasks = {t.ref: t for t in tasks}
        self._seq = seq
        self._loaded_version = (stat.st_mtime_ns, stat.st_size)

    def reload_if_changed(self) -> None:
        """For read-only stores: pick up what the controlling instance wrote since."""
        try:
            stat = self.state_file.stat()
        except FileNotFoundError:
            return
        if (stat.st_mtime_ns, stat.st_size) != self._loaded_version:
            self.load()

    def save(self) -> None:
        """Write the whole state atomically (temporary file, then rename)."""
        assert not self.read_only, "a read-only store never writes"
        data = {
            "version": STATE_VERSION,
            "seq": self._seq,
            "pools": [_records.pool_to_json(p) for p in self.pools.values()],
            "jobs": [_records.job_to_json(j) for j in self.jobs.values()],
            "tasks": [_records.task_to_json(t) for t in self.tasks.values()],
        }
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.state_file)

    # ---------------------------------------------------------------------- removal

    def remove_task(self, ref: TaskRef) -> None:
        """Forget a task and delete its folder."""
        self.tasks.pop(ref, None)
        shutil.rmtree(self.task_dir(ref), ignore_errors=True)

    def remove_job(self, name: str) -> None:
        """Forget a job with all its tasks and delete their folders."""
        for ref in [t.ref for t in self.tasks_of_job(name)]:
            del self.tasks[ref]
        self.jobs.pop(name, None)
        shutil.rmtree(self.job_dir(name), ignore_errors=True)


def _by_seq(task: TaskRecord) -> int:
    return task.seq
