"""The ``process`` runtime: each simulator is a child process in its own process group.

Why a wrapper: a controller killed with ``kill -9`` leaves its simulators running, and the
next controller is not their parent, so it can never ``wait()`` for their exit code. Each
simulator therefore runs under a tiny ``/bin/sh`` wrapper (:data:`WRAPPER`) that leads a
new session, waits for the simulator and writes its exit code to ``exit`` in the task
directory atomically (temporary file + rename); a signal N shows as ``128 + N``. The
wrapper traps HUP/INT/TERM so a SIGTERM sent to the whole group stops the simulator but
not the bookkeeping; only SIGKILL ends the wrapper before it writes. The simulator itself
is started by a second, short-lived ``sh`` that writes its own pid to ``pid`` and then
``exec``\\ s the command, so users see (and may ``kill``) the simulator's real pid.

Why pidfds: ``os.pidfd_open`` works for children and for adopted processes alike and
becomes readable the moment the process ends, so exits are noticed at once through
``loop.add_reader`` without any polling loop.

Identity: a recorded pid is trusted only if ``/proc/<pid>/stat`` field 22 (start time in
clock ticks) still matches what was recorded at spawn; Linux reuses pids.

This module must not decide what an exit means, nor touch the backend's records: it
returns :class:`~controller.backends.local._runtime.Ending` facts. Nothing outside
``controller/backends/local`` may start processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from controller.backends.local._runtime import (
    PASSED_FD,
    STDERR_FILE,
    STDOUT_FILE,
    Ending,
    Handle,
    Launch,
    LaunchError,
)

NO_COMMAND = (
    "the process runtime needs a command "
    "(the image's own entrypoint is only known to the docker runtime)"
)

SHELL = "/bin/sh"
#: ``$0`` of every wrapper: marks our wrappers in ``ps`` and in ``/proc/<pid>/cmdline``.
MARKER = "simfleet-task"
#: Arguments: task directory, working directory, then the simulator's argv.
WRAPPER = """\
d=$1 w=$2; shift 2
trap : HUP INT TERM
cd -- "$w" && /bin/sh -c 'printf %s "$$" >"$0/pid.tmp" && command -p mv -f "$0/pid.tmp" "$0/pid"
exec "$@"' "$d" "$@"
c=$?
printf %s "$c" >"$d/exit.tmp" && command -p mv -f "$d/exit.tmp" "$d/exit"
"""

EXIT_FILE = "exit"
PID_FILE = "pid"

# Signals the controller may ignore (Python ignores SIGPIPE and SIGXFSZ; a controller
# started with nohup ignores SIGHUP) would be inherited as ignored; reset them all.
_DEFAULT_SIGNALS = tuple(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)


class ProcessRuntime:
    """Runs simulators as process groups under :data:`WRAPPER` (see the module docstring)."""

    name = "process"

    def spawn(self, launch: Launch) -> Handle:
        """Start the wrapper and, through it, the simulator.

        Args:
            launch: what to run, where, with which environment.

        Returns:
            The wrapper's handle; its pid is also the process group id.

        Raises:
            LaunchError: no command, a missing working directory, or the exec failed.
        """
        argv = argv_of(launch.command)
        launch.task_dir.mkdir(parents=True, exist_ok=True)
        if not launch.cwd.is_dir():
            raise LaunchError(f"the working directory {launch.cwd} does not exist")
        for stale in (EXIT_FILE, PID_FILE):
            (launch.task_dir / stale).unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        out = os.open(launch.task_dir / STDOUT_FILE, flags, 0o600)
        err = os.open(launch.task_dir / STDERR_FILE, flags, 0o600)
        try:
            pid = os.posix_spawn(
                SHELL,
                [SHELL, "-c", WRAPPER, MARKER, str(launch.task_dir), str(launch.cwd), *argv],
                dict(launch.env),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out, 1),
                    (os.POSIX_SPAWN_DUP2, err, 2),
                    *((os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds()),
                    *(
                        [(os.POSIX_SPAWN_DUP2, launch.pass_fd, PASSED_FD)]
                        if launch.pass_fd is not None
                        else []
                    ),
                ],
                setsid=True,
                setsigdef=_DEFAULT_SIGNALS,
                setsigmask=(),
            )
        except OSError as error:
            raise LaunchError(f"could not start {SHELL}: {error.strerror}") from error
        finally:
            os.close(out)
            os.close(err)
        ticks = start_ticks(pid)
        # Our child cannot be reaped by anyone else, so its /proc entry is still there.
        assert ticks is not None
        return Handle(pid, ticks)

    def find(self, task_dir: Path) -> Handle | None:
        """Scan ``/proc`` for the wrapper of ``task_dir``.

        Used for a task whose spawn was recorded as started but whose pid never reached
        the state file (the controller died in between). Zombies have no command line, so
        only live wrappers match.
        """
        wanted = [os.fsencode(a) for a in (SHELL, "-c", WRAPPER, MARKER, str(task_dir))]
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[: len(wanted)] == wanted:
                pid = int(entry.name)
                ticks = start_ticks(pid)
                if ticks is not None:
                    return Handle(pid, ticks)
        return None

    def alive(self, handle: Handle) -> bool:
        """True if the wrapper runs (not a zombie) and is the very process we started."""
        stat = _stat(handle.pid)
        return stat is not None and stat[0] != "Z" and stat[1] == handle.start_ticks

    def watch(self, handle: Handle, on_gone: Callable[[], None]) -> Callable[[], None]:
        """Watch the wrapper through a pidfd (see the module docstring).

        Args:
            handle: the wrapper to watch.
            on_gone: called once from the event loop when the wrapper has ended.

        Returns:
            A function that stops watching without calling ``on_gone``.
        """
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(handle.pid)
        except ProcessLookupError:
            call = loop.call_soon(on_gone)
            return call.cancel
        # The pidfd pins the process; checking identity *after* opening closes the race
        # with a pid reused between the caller's check and pidfd_open.
        if start_ticks(handle.pid) != handle.start_ticks:
            os.close(fd)
            call = loop.call_soon(on_gone)
            return call.cancel

        open_fds = [fd]

        def unwatch() -> None:
            while open_fds:
                watched = open_fds.pop()
                loop.remove_reader(watched)
                os.close(watched)

        def fired() -> None:
            unwatch()
            on_gone()

        loop.add_reader(fd, fired)
        return unwatch

    def signal(self, handle: Handle, signum: int) -> None:
        """Send ``signum`` to the task's whole process group, if it is still ours."""
        if _group_is_ours(handle):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, signum)

    def collect(self, task_dir: Path, handle: Handle | None) -> Ending:
        """Finish off a task whose wrapper has ended and read what it recorded.

        Kills whatever the simulator left behind in its process group (background
        children would otherwise be orphans), reaps the wrapper if it is our child and
        reads the exit file.

        Args:
            task_dir: the task's directory, holding the exit file.
            handle: the wrapper, if one was ever started.

        Returns:
            The raw facts; ``code`` is None when no exit code was recorded.
        """
        wrapper_signal = None
        if handle is not None and _group_is_ours(handle):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, signal.SIGKILL)
            if start_ticks(handle.pid) == handle.start_ticks:
                wrapper_signal = _reap(handle.pid)
        code, at = read_exit_file(task_dir)
        return Ending(code=code, signal=wrapper_signal, at=at)

    def simulator_pid(self, task_dir: Path) -> int | None:
        """The pid the inner ``sh`` wrote just before it became the simulator."""
        try:
            return int((task_dir / PID_FILE).read_text())
        except (OSError, ValueError):
            return None


def argv_of(command: str | tuple[str, ...] | None) -> tuple[str, ...]:
    """The simulator's argv: a string runs under ``/bin/sh -c``, a tuple as it is.

    Raises:
        LaunchError: for None, which only a container runtime can run.
    """
    if command is None:
        raise LaunchError(NO_COMMAND)
    if isinstance(command, str):
        return (SHELL, "-c", command)
    if not command:
        raise LaunchError("the command is an empty list")
    return command


def read_exit_file(task_dir: Path) -> tuple[int | None, datetime | None]:
    """The exit code the wrapper recorded and when, or ``(None, None)``."""
    path = task_dir / EXIT_FILE
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
    except OSError:
        return None, None
    try:
        return int(text.strip()), datetime.fromtimestamp(mtime, UTC)
    except ValueError:
        return None, None


def start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``: the process's start time in clock ticks."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start ticks) of a process, or None if there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[22 - 3])


def _inheritable_fds() -> list[int]:
    """Descriptors above 2 a simulator would inherit (Python's own are close-on-exec,
    but a controller may have been started with others open, such as a parent's pipe)."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:  # stdin, stdout and stderr are set up by the file actions
            with contextlib.suppress(OSError):  # the listing's own, now closed, descriptor
                if os.get_inheritable(fd):
                    fds.append(fd)
    return fds


def _group_is_ours(handle: Handle) -> bool:
    """Whether signalling the process group ``handle.pid`` reaches only our processes.

    If the wrapper (alive or a zombie) is still there, the group is ours. If no process
    has that pid, the group may still hold our leftovers, and Linux does not hand out a
    pid that is still some group's id, so it is ours too. Only a different process with
    the same pid means the group id was recycled after all our processes were gone.
    """
    ticks = start_ticks(handle.pid)
    return ticks is None or ticks == handle.start_ticks


def _reap(pid: int) -> int | None:
    """Reap the wrapper if it is our child; the signal that killed it, if any."""
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if reaped == 0 or not os.WIFSIGNALED(status):
        return None
    return os.WTERMSIG(status)
