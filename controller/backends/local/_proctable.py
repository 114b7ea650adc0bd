"""Reading Linux's process table (``/proc``): identity, group, command line, environment.

The local backend must find its simulators without trusting anything but the kernel: a
pid is checked against its start time (pids are reused), the wrapper of a task is found
by its command line after the state file was lost, and descendants that left the task's
process group are found by an environment variable they inherited. Everything here only
reads ``/proc``; a process that vanishes or belongs to another user while it is being
read is simply skipped.

Field numbers follow ``proc(5)``: in ``/proc/<pid>/stat``, 3 is the state letter, 5 the
parent, 5 the process group and 22 the start time in clock ticks since boot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class Stat:
    """What ``/proc/<pid>/stat`` says about a process."""

    state: str  # "R", "S", "Z" (zombie), …
    ppid: int
    pgid: int
    start_ticks: int

    @property
    def zombie(self) -> bool:
        """Ended, not yet reaped by its parent: nothing of it runs any more."""
        return self.state in ("Z", "X")


def stat(pid: int) -> Stat | None:
    """The process's state, group and start time, or None if there is no such process."""
    try:
        data = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return Stat(fields[0].decode(), int(fields[4 - 3]), int(fields[5 - 3]), int(fields[22 - 3]))


def start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``: the process's start time in clock ticks."""
    found = stat(pid)
    return None if found is None else found.start_ticks


def pids() -> Iterator[int]:
    """Every process id at the time of listing."""
    for entry in os.scandir(_PROC):
        if entry.name.isdigit():
            yield int(entry.name)


def cmdline(pid: int) -> list[bytes]:
    """The process's argv (empty for zombies, kernel threads and vanished processes)."""
    try:
        data = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return data.split(b"\0")[:-1] if data else []


def environ(pid: int) -> list[bytes]:
    """The process's initial environment as ``NAME=value`` entries (empty if unreadable).

    It holds secrets of simulators: callers look for one entry and keep nothing else.
    """
    try:
        data = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return []
    return data.split(b"\0")


def started_at(ticks: int) -> datetime:
    """The wall-clock time of a start time in clock ticks since boot."""
    return _boot_time() + timedelta(seconds=ticks / os.sysconf("SC_CLK_TCK"))


def _boot_time() -> datetime:
    for line in (_PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return datetime.fromtimestamp(int(line.split()[1]), UTC)
    return datetime.now(UTC)  # pragma: no cover - every Linux kernel writes btime
