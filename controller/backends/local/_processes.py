"""The ``process`` runtime: each simulator is a child process in its own process group.

Each simulator runs under the wrapper of :mod:`._wrapper`, which records its exit code
and rotates its output, so a controller that is not its parent (after ``kill -9``) still
learns how it ended and never has to read its pipes.

Why pidfds: ``os.pidfd_open`` works for children and for adopted processes alike and
becomes readable the moment the process ends, so exits are noticed at once through
``loop.add_reader`` without any polling loop.

Identity: a recorded pid is trusted only if its start time (:mod:`._proctable`) still
matches what was recorded at spawn; Linux reuses pids.

Ending a task ends all of it: the process group gets the signal, and once the wrapper is
gone, every process still carrying the task's :data:`~._wrapper.TASK_VARIABLE` (children
that called ``setsid`` to leave the group) is killed in one sweep of the process table per
burst of exits, off the event loop. A process that both left the session and cleared its
environment escapes; only a cgroup could hold it, and cgroups are not ours to create when
the controller is not run by systemd.

This module must not decide what an exit means, nor touch the backend's records: it
returns :class:`~controller.backends.local._runtime.Ending` facts. Nothing outside
``controller/backends/local`` may start processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from controller.backends.local import _proctable, _wrapper
from controller.backends.local._runtime import (
    PASSED_FD,
    STDERR_FILE,
    STDOUT_FILE,
    Ending,
    Found,
    Handle,
    Launch,
    LaunchError,
    TaskDirError,
)

NO_COMMAND = (
    "the process runtime needs a command "
    "(the image's own entrypoint is only known to the docker runtime)"
)
NO_HEAD = "the process runtime needs the head utility (GNU coreutils) to keep output"
SHELL = _wrapper.SHELL
#: How long a sweep waits for SIGKILLed process groups to be gone from the process table.
GROUPS_GONE_WITHIN = 5.0

# Signals the controller may ignore (Python ignores SIGPIPE and SIGXFSZ; a controller
# started with nohup ignores SIGHUP) would be inherited as ignored; reset them all.
_DEFAULT_SIGNALS = tuple(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)
_OUT_READ_FD = _wrapper.OUT_READ_FD
_ERR_READ_FD = _wrapper.ERR_READ_FD
#: Pipes are made at or above this descriptor, so that no dup2 onto the wrapper's
#: descriptors has the same number on both sides (which would keep close-on-exec).
_FIRST_FREE_FD = 10


class ProcessRuntime:
    """Runs simulators as process groups under the wrapper (see the module docstring)."""

    name = "process"

    def __init__(self) -> None:
        self._leftovers: set[bytes] = set()
        self._dying: set[int] = set()  # process groups SIGKILLed by collect
        self._leftovers_lock = threading.Lock()  # collect may run in a worker thread
        self._sweeping = asyncio.Lock()
        self._tools = _wrapper.Tools.find()
        self._inherited: list[int] | None = None  # see _inheritable

    def _inheritable(self, own: Iterable[int]) -> list[int]:
        """The descriptors a simulator must not inherit, listed once per turn of the event
        loop rather than once per start.

        Listing ``/proc/self/fd`` costs one step per open descriptor, and a controller
        holds one pidfd per simulator, so listing per start made starting N simulators
        cost N² steps. Within one turn of the loop the starts of a launcher slice run
        back to back and open no inheritable descriptor (pipes and pidfds are
        close-on-exec). Outside an event loop nothing is cached. ``own`` are this start's
        pipe ends: a listing that names one of them is stale (that number was closed and
        reused since), so it is made again.
        """
        listed = self._inherited
        if listed is not None and not any(fd in listed for fd in own):
            return listed
        listed = _inheritable_fds()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return listed
        if self._inherited is None:
            loop.call_soon(self._forget_inherited)
        self._inherited = listed
        return listed

    def _forget_inherited(self) -> None:
        self._inherited = None

    def spawn(self, launch: Launch) -> Handle:
        """Start the wrapper and, through it, the simulator.

        Args:
            launch: what to run, where, with which environment.

        Returns:
            The wrapper's handle; its pid is also the process group id.

        Raises:
            LaunchError: no command, a missing working directory, a value the OS cannot
                pass (a NUL byte), or the exec failed.
            TaskDirError: the task folder could not be prepared.
        """
        command = argv_of(launch.command)
        if self._tools is None:
            raise LaunchError(NO_HEAD)
        _prepare(launch.task_dir)
        if not launch.cwd.is_dir():
            raise LaunchError(f"the working directory {launch.cwd} does not exist")
        env = {**launch.env, _wrapper.TASK_VARIABLE: str(launch.task_dir)}
        args = _wrapper.argv(
            launch.task_dir, launch.pool, launch.cwd, launch.output, self._tools, command
        )
        out_r, out_w = _pipe()
        err_r, err_w = _pipe()
        own = (out_r, out_w, err_r, err_w) + (() if launch.pass_fd is None else (launch.pass_fd,))
        try:
            pid = os.posix_spawn(
                SHELL,
                args,
                env,
                file_actions=[
                    *((os.POSIX_SPAWN_CLOSE, fd) for fd in self._inheritable(own)),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                    (os.POSIX_SPAWN_DUP2, out_r, _OUT_READ_FD),
                    (os.POSIX_SPAWN_DUP2, err_r, _ERR_READ_FD),
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
        except ValueError as error:  # "embedded null byte": nothing can carry it
            raise LaunchError(
                f"the command or its environment cannot be passed: {error}"
            ) from error
        finally:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
        ticks = _proctable.start_ticks(pid)
        # Our child cannot be reaped by anyone else, so its /proc entry is still there.
        assert ticks is not None
        return Handle(pid, ticks)

    def scan(self, root: Path) -> dict[Path, Found]:
        """Every live wrapper whose task folder is under ``root`` (one pass over ``/proc``).

        Zombies have no command line, and a wrapper's subshells do not lead its group, so
        only live wrappers match. A wrapper whose task folder was removed gets it back,
        with the simulator's pid file (its one child that is not a subshell of its own),
        so that its exit code, its output and its pid have somewhere to go again.
        """
        found: dict[Path, Found] = {}
        children: dict[int, list[int]] = {}
        argvs: dict[int, list[bytes]] = {}
        for pid in _proctable.pids():
            stat = _proctable.stat(pid)
            if stat is None or stat.zombie:
                continue
            children.setdefault(stat.ppid, []).append(pid)
            argv = argvs[pid] = _proctable.cmdline(pid)
            parsed = _wrapper.parse(argv)
            if parsed is not None and parsed[0].is_relative_to(root) and stat.pgid == pid:
                task_dir, pool = parsed
                found[task_dir] = Found(Handle(pid, stat.start_ticks), task_dir, pool)
        for live in found.values():
            wrapper = live.handle.pid
            simulators = [c for c in children.get(wrapper, []) if argvs[c] != argvs[wrapper]]
            if len(simulators) == 1 and self.simulator_pid(live.task_dir) is None:
                _restore_pid_file(live.task_dir, simulators[0])
        return found

    def alive(self, handle: Handle) -> bool:
        """True if the wrapper runs (not a zombie) and is the very process we started."""
        stat = _proctable.stat(handle.pid)
        return stat is not None and not stat.zombie and stat.start_ticks == handle.start_ticks

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
        if _proctable.start_ticks(handle.pid) != handle.start_ticks:
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

        Kills whatever the simulator left behind: its process group at once, descendants
        that left the group with the next :meth:`settle` (see the module docstring). Reaps
        the wrapper if it is our child and reads the exit file. Safe to call from a worker
        thread.

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
            if _proctable.start_ticks(handle.pid) == handle.start_ticks:
                wrapper_signal = _reap(handle.pid)
            with self._leftovers_lock:
                self._dying.add(handle.pid)
        with self._leftovers_lock:
            self._leftovers.add(os.fsencode(f"{_wrapper.TASK_VARIABLE}={task_dir}"))
        code, at = _wrapper.read_exit_file(task_dir)
        started = (task_dir / _wrapper.PID_FILE).exists()
        return Ending(code=code, signal=wrapper_signal, at=at, started=started)

    async def settle(self, *, until_gone: bool = False) -> None:
        """End the descendants of every simulator collected so far that left its group
        (one sweep of the process table, off the event loop; see :meth:`collect`).

        ``until_gone``: also wait until the groups collect SIGKILLed have no live member
        left. A signal is sent at once but ended by a busy kernel a moment later; a
        controller that says its simulators are stopped (a shutdown) must not leave one
        running meanwhile. Ordinary exits do not wait: that would cost a second sweep of
        the process table per burst of exits (30,000 processes at 10,000 simulators).
        """
        async with self._sweeping:
            with self._leftovers_lock:
                markers, self._leftovers = self._leftovers, set()
                groups, self._dying = self._dying, set()
            if markers:
                await asyncio.to_thread(kill_marked, markers)
            if groups and until_gone:  # SIGKILL is sent, not done: the kernel takes a moment
                await asyncio.to_thread(wait_groups_gone, groups, GROUPS_GONE_WITHIN)

    def environment(self, handle: Handle, names: frozenset[str]) -> dict[str, str]:
        """The values of ``names`` the wrapper was started with (kept in memory only)."""
        if not names or not self.alive(handle):
            return {}
        values = {}
        for entry in _proctable.environ(handle.pid):
            name, _, value = entry.decode(errors="surrogateescape").partition("=")
            if name in names:
                values[name] = value
        return values

    def simulator_pid(self, task_dir: Path) -> int | None:
        """The pid the inner ``sh`` wrote just before it became the simulator."""
        return _wrapper.read_pid_file(task_dir)


def wait_groups_gone(groups: Iterable[int], within: float) -> set[int]:
    """Wait until no process of ``groups`` is left but zombies, for ``within`` seconds at
    most; the groups still alive then (their members stuck in the kernel)."""
    left = set(groups)
    deadline = time.monotonic() + within
    while left:
        left = {
            found.pgid
            for pid in _proctable.pids()
            if (found := _proctable.stat(pid)) is not None
            and found.pgid in left
            and not found.zombie
        }
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return left


def kill_marked(markers: Iterable[bytes], *, rounds: int = 5) -> None:
    """SIGKILL every process whose environment holds one of ``markers``.

    Repeated until a round finds none (a process may fork while the table is read).
    """
    wanted = frozenset(markers)
    me = os.getpid()
    for _ in range(rounds):
        hits = [
            pid
            for pid in _proctable.pids()
            if pid != me and not wanted.isdisjoint(_proctable.environ(pid))
        ]
        if not hits:
            return
        for pid in hits:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


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


def _prepare(task_dir: Path) -> None:
    """Create the task folder, or clear what an earlier start left in it.

    Raises:
        TaskDirError: the state directory cannot be written.
    """
    try:
        try:
            task_dir.mkdir(parents=True, mode=0o700)
        except FileExistsError:  # started before, by a controller that died meanwhile
            for name in (_wrapper.EXIT_FILE, _wrapper.PID_FILE, STDOUT_FILE, STDERR_FILE):
                (task_dir / name).unlink(missing_ok=True)
            for stale in task_dir.glob("std*.txt.*"):
                stale.unlink(missing_ok=True)
    except OSError as error:
        raise TaskDirError(f"cannot prepare {task_dir}: {error.strerror}") from error


def _restore_pid_file(task_dir: Path, pid: int) -> None:
    with contextlib.suppress(OSError):  # only status shows the pid: never fail for it
        task_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = task_dir / f"{_wrapper.PID_FILE}.tmp"
        tmp.write_text(str(pid))
        tmp.replace(task_dir / _wrapper.PID_FILE)


def _pipe() -> tuple[int, int]:
    """A close-on-exec pipe whose ends do not collide with the wrapper's descriptors."""
    ends = []
    for fd in os.pipe():
        if fd < _FIRST_FREE_FD:
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _FIRST_FREE_FD)
            os.close(fd)
            fd = moved  # noqa: PLW2901 - the moved descriptor replaces the original
        ends.append(fd)
    return ends[0], ends[1]


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
    ticks = _proctable.start_ticks(handle.pid)
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
