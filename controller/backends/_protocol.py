"""The one interface every backend adapter implements.

A backend observes (a snapshot of everything, or of every pool and some jobs) and executes
the planner's actions; it never decides anything. The reconciler calls ``execute``
concurrently (up to its in-flight limit) and splits new simulators into requests of
``tasks_per_request``, so one ``execute`` is one request wherever the service allows. It
is a ``Protocol`` rather than a base class, so a test fake satisfies it without
inheriting (structlog's style). Errors leave it only as
:mod:`controller.backends._errors` classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from controller.planner import Action, Observed


class OutputStream(StrEnum):
    """A simulator's two output files."""

    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True)
class OutputChunk:
    """Bytes ``[offset, offset + len(data))`` of an output file whose size is ``size``."""

    data: bytes
    offset: int
    size: int


def byte_range(offset: int, length: int | None, size: int) -> tuple[int, int]:
    """``[start, end)`` of a read in a file of ``size`` bytes, as ``read_output`` means it.

    A negative ``offset`` counts from the end (-100: the last 100 bytes); ``length`` None
    reads to the end. Both ends are clamped to the file: 10 bytes, offset -100 → (0, 10).
    """
    start = max(0, size + offset) if offset < 0 else min(offset, size)
    end = size if length is None else min(size, start + max(0, length))
    return start, end


#: A stderr tail in status: at most this many lines from at most this many bytes.
TAIL_LINES = 10
TAIL_BYTES = 2048


@runtime_checkable
class Backend(Protocol):
    """Where simulators run: this machine (``local``) or Azure Batch (``azure``)."""

    name: str

    #: The most new simulators one ``AddTasks`` may carry (Batch takes 100 per request).
    tasks_per_request: int

    async def observe(self, jobs: frozenset[str] | None = None) -> Observed:
        """A snapshot of pools, jobs and tasks.

        Args:
            jobs: None: everything. A set: every pool but only the named jobs (those that
                exist); ``frozenset()``: the pools alone.
        """
        ...

    async def execute(self, action: Action) -> None:
        """Carry out one action; raise a ``BackendError`` subclass if it did not happen.
        Safe to call concurrently for different actions."""
        ...

    async def read_output(
        self,
        job: str,
        task_id: str,
        stream: OutputStream,
        offset: int = 0,
        length: int | None = None,
    ) -> OutputChunk:
        """Read part of a simulator's stdout or stderr; a negative offset counts from the end."""
        ...

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the event loop) whenever something changed by itself,
        such as a simulator exiting. Backends that cannot notice changes never call it."""
        ...

    def forget(self) -> None:
        """Drop whatever earlier observations left cached (a controller that becomes the
        fleet's leader again: another one may have changed anything meanwhile)."""
        ...

    def request_counts(self) -> Mapping[tuple[str, str], int]:
        """Requests sent so far by (operation, outcome), for ``/metrics``; backends that
        send none (the local one) answer an empty mapping."""
        ...

    async def close(self, *, stop_simulators: bool = False) -> None:
        """Release resources; with ``stop_simulators`` also end every simulator (local)."""
        ...
