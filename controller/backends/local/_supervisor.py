"""Keeps watch over running simulators: exit notice, stop escalation, lifetime timer.

For each running task it holds the runtime's exit watch and two optional timers on the
event loop: the SIGKILL that follows a SIGTERM after the grace period, and the
``maxLifetime`` deadline. Nothing here blocks or polls: a stop sends SIGTERM and returns;
``loop.call_later`` does the rest.

When a watched simulator is gone, the supervisor hands it to the lifecycle's callback
together with whether it had to SIGKILL; collecting what it left (exit code, output) is
the lifecycle's, in batches off the event loop. The supervisor does not decide exit
reasons, change records or start anything.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.backends.local._records import TaskRef
from controller.backends.local._runtime import Handle, Runtime

#: Called with the task, its folder, its handle, and whether simfleet sent SIGKILL.
OnGone = Callable[[TaskRef, Path, Handle, bool], None]


@dataclass
class _Watch:
    """The supervisor's private bookkeeping for one running task."""

    task_dir: Path
    handle: Handle
    unwatch: Callable[[], None]
    kill_timer: asyncio.TimerHandle | None = None
    deadline: asyncio.TimerHandle | None = None
    killed: bool = False

    def cancel(self) -> None:
        for timer in (self.kill_timer, self.deadline):
            if timer is not None:
                timer.cancel()


class Supervisor:
    """The running tasks' watches and timers (see the module docstring)."""

    def __init__(
        self, runtime: Runtime, on_gone: OnGone, may_act: Callable[[], bool] = lambda: True
    ) -> None:
        """Args:
        runtime: signals, watches and collects the processes.
        on_gone: called from the event loop when a watched task has ended.
        may_act: asked before every signal; False once the state directory was lost.
        """
        self._runtime = runtime
        self._on_gone = on_gone
        self._may_act = may_act
        self._watches: dict[TaskRef, _Watch] = {}

    def __contains__(self, ref: object) -> bool:
        return ref in self._watches

    def watch(self, ref: TaskRef, task_dir: Path, handle: Handle) -> None:
        """Start watching a running task (just spawned, or adopted)."""
        self.release(ref)
        unwatch = self._runtime.watch(handle, lambda: self._gone(ref))
        self._watches[ref] = _Watch(task_dir, handle, unwatch)

    def terminate(self, ref: TaskRef, grace: float) -> None:
        """SIGTERM the task's process group now, SIGKILL it after ``grace`` seconds.

        Args:
            ref: the task.
            grace: seconds the simulator gets to exit by itself.
        """
        watch = self._watches.get(ref)
        if watch is None or not self._may_act():
            return
        self._runtime.signal(watch.handle, signal.SIGTERM)
        if watch.kill_timer is None:
            loop = asyncio.get_running_loop()
            watch.kill_timer = loop.call_later(grace, self._kill, ref)

    def set_deadline(self, ref: TaskRef, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` after ``delay`` seconds unless the task has ended by then."""
        watch = self._watches.get(ref)
        if watch is None:
            return
        if watch.deadline is not None:
            watch.deadline.cancel()
        watch.deadline = asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    def release(self, ref: TaskRef) -> None:
        """Stop watching a task and cancel its timers; its process is left alone."""
        watch = self._watches.pop(ref, None)
        if watch is not None:
            watch.cancel()
            watch.unwatch()

    def close(self) -> None:
        """Release every task (the controller goes away, the simulators may stay)."""
        for ref in list(self._watches):
            self.release(ref)

    def _kill(self, ref: TaskRef) -> None:
        watch = self._watches.get(ref)
        if watch is not None and self._may_act():
            watch.killed = True
            watch.kill_timer = None
            self._runtime.signal(watch.handle, signal.SIGKILL)

    def _gone(self, ref: TaskRef) -> None:
        watch = self._watches.pop(ref, None)
        if watch is None:
            return
        watch.cancel()
        self._on_gone(ref, watch.task_dir, watch.handle, watch.killed)
