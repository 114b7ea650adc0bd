"""The seam between the local backend and the thing that actually runs a simulator.

The backend decides *when* a simulator starts, stops or counts as gone; a runtime only
knows *how*: start one from a :class:`Launch`, find it again after a controller restart,
signal it, tell when it is gone and collect its exit code. The ``process`` runtime
(:mod:`controller.backends.local._processes`) runs a command; the ``docker`` runtime
(:mod:`controller.backends.local._docker`) runs the image, and satisfies the same
:class:`Runtime` protocol.

A runtime never touches the backend's records, never reads the clock and never decides
an exit reason: it reports raw facts (:class:`Ending`) and
:mod:`controller.backends.local._exits` interprets them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

#: Every runtime writes a simulator's output to these files in its task directory (the
#: newest part; older parts are rotated to ``stdout.txt.<offset>``, see :mod:`._output`).
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
MIB = 1024 * 1024


@dataclass(frozen=True)
class OutputLimits:
    """How much of each output stream a simulator keeps on disk (the kubelet's defaults).

    Attributes:
        max_bytes: the size of one file; a full file is rotated.
        max_files: files kept per stream, the one being written included (at least 2, as
            for the kubelet: the newest rotated file tells where the current one starts).
    """

    max_bytes: int = 10 * MIB
    max_files: int = 5

    def __post_init__(self) -> None:
        if self.max_bytes < 2:
            raise ValueError(f"log_max_bytes must be at least 2, not {self.max_bytes}")
        if self.max_files < 2:
            raise ValueError(f"log_max_files must be at least 2, not {self.max_files}")


#: The descriptor number :attr:`Launch.pass_fd` gets in the started process.
PASSED_FD = 3


class LaunchError(Exception):
    """A simulator could not be started; the message is shown to users as the exit message.

    It never contains a secret value: at most the name of a variable.
    """


class TaskDirError(Exception):
    """The task's folder could not be prepared (disk full, read-only state directory).

    Not the simulator's fault: the task waits and is started again once the state
    directory can be written, instead of failing and counting towards its back-off.
    """


@dataclass(frozen=True)
class Launch:
    """Everything a runtime needs to start one simulator.

    Attributes:
        task_dir: the task's own directory (output files, exit code, pid file).
        image: the container image (used by a container runtime, ignored by ``process``).
        command: a shell command string, an argv tuple, or None for the image's entrypoint.
        env: the complete environment of the simulator, secrets included (never stored).
        cwd: the working directory of the simulator.
        run_options: ``containerRunOptions`` (a container runtime's; ``process`` ignores it).
        container_env: the names of ``env`` a container gets (all but the host's own
            ``PATH``, ``HOME``, locale…, unless the spec sets them too).
        secret_names: which of them hold secrets (never written out as values).
        pool: the task's pool, recorded with the process so that a controller that lost
            its state file can adopt the simulator into the right pool.
        output: how much output is kept.
        pass_fd: a descriptor the started process inherits as :data:`PASSED_FD` (the
            docker runtime's env file, a pipe), or None.
    """

    task_dir: Path
    image: str
    command: str | tuple[str, ...] | None
    env: Mapping[str, str]
    cwd: Path
    run_options: str = ""
    container_env: tuple[str, ...] = ()
    secret_names: frozenset[str] = frozenset()
    pool: str = ""
    output: OutputLimits = OutputLimits()
    pass_fd: int | None = None


@dataclass(frozen=True)
class Handle:
    """How to find a started simulator again, even from another controller process.

    Attributes:
        pid: the pid of the supervising wrapper, which leads the task's process group.
        start_ticks: the wrapper's start time (``/proc/<pid>/stat`` field 22), which tells
            the wrapper apart from an unrelated process that got the same pid later.
    """

    pid: int
    start_ticks: int


@dataclass(frozen=True)
class Ending:
    """Raw facts about a simulator that is gone, before anyone interprets them.

    Attributes:
        code: the exit code the wrapper recorded (128 + N for signal N), or None when the
            wrapper itself died before it could record one.
        signal: the signal that killed the wrapper, when it was our child and we reaped it.
        at: when the exit code was recorded (the exit file's time), if known.
        started: the simulator is known to have started (its wrapper left the pid file
            it writes just before ``exec``), so a missing code means it was lost, not
            that it never ran. A controller killed before it saved the pid relies on it.
        runtime_failed: the runtime itself failed before the simulator ran (``docker
            run`` exits 125 when it cannot reach the engine or create the container); the
            stderr tail says why.
    """

    code: int | None
    signal: int | None = None
    at: datetime | None = None
    started: bool = False
    runtime_failed: bool = False


@dataclass(frozen=True)
class Found:
    """A live simulator found in the process table, with what its wrapper records.

    Attributes:
        handle: its wrapper.
        task_dir: the task folder the wrapper writes to.
        pool: the pool it was started on ("" if the runtime did not say).
    """

    handle: Handle
    task_dir: Path
    pool: str


class Runtime(Protocol):
    """Starts, finds, signals and watches simulators of one kind (process, container)."""

    name: str

    def spawn(self, launch: Launch) -> Handle:
        """Start a simulator; raise :class:`LaunchError` when it cannot start at all."""
        ...

    def scan(self, root: Path) -> dict[Path, Found]:
        """Every live simulator whose task folder is under ``root``, by task folder: the
        process table is the truth when the state file is behind, damaged or gone."""
        ...

    def alive(self, handle: Handle) -> bool:
        """Whether the simulator behind ``handle`` (and not a reused pid) still runs."""
        ...

    def watch(self, handle: Handle, on_gone: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_gone`` from the event loop once the simulator is gone; returns a
        function that stops watching. ``on_gone`` is called soon if it is already gone."""
        ...

    def signal(self, handle: Handle, signum: int) -> None:
        """Send ``signum`` to the simulator and everything it started; quiet if gone."""
        ...

    def collect(self, task_dir: Path, handle: Handle | None) -> Ending:
        """After the simulator is gone: reap it, kill what it left behind, read its code.

        Descendants that left the process group are ended in the background, in one sweep
        of the process table per burst of exits; :meth:`settle` waits for it.
        """
        ...

    async def settle(self, *, until_gone: bool = False) -> None:
        """End every descendant the simulators collected so far left behind; with
        ``until_gone``, return only once none of them is alive any more."""
        ...

    def environment(self, handle: Handle, names: frozenset[str]) -> dict[str, str]:
        """The values of ``names`` in the simulator's environment (memory only: they are
        secrets, read back to mask them in its output after a controller restart)."""
        ...

    def simulator_pid(self, task_dir: Path) -> int | None:
        """The pid users see for a running simulator (None if not known yet)."""
        ...
