"""The memory of each job's task listing, and the rule for when to list again.

Per job it keeps the tasks of the last listing as planner records (never SDK models) and
the task counts taken just before it. Each observation takes fresh counts first, and
:meth:`ListingCache.step` compares them with the remembered ones:

* ``LIST`` (the whole job again) when there is no listing, it is older than ``max_age``,
  simfleet stopped or deleted one of the job's tasks since, or any of the counts that
  describe started tasks (running, completed, succeeded, failed) moved. Correctness
  never rests on the memory: every change Batch counts outside the queue forces this.
* ``REFRESH`` (only the pending tasks, one ``$filter`` on state) when simfleet added
  tasks since, only the ``active`` count moved, or the listing holds a ``preparing``
  task: Batch counts those as running already, so one that starts after its image pull
  changes no count and is looked at again, cheaply. (A task merely queued cannot leave
  the queue without moving a count.) The refresh is kept only if every remembered
  pending task is still pending (else the caller lists the job); a task that left the
  queue unseen would otherwise keep a stale state.
* ``REUSE`` otherwise: nothing happened that Batch would count, in a listing younger
  than ``max_age``. Batch's counts may lag by seconds ("a hint, not the truth");
  ``max_age`` bounds how long a lagging count can hide a change.

Changes simfleet makes (:meth:`ListingCache.changed`) are numbered from one counter. A
listing remembers the number current when it *started*, so a change made while it was in
flight — :meth:`AzureBackend.execute` may run concurrently with an observation — is not
covered by it and still forces its step on the next observation. Everything here runs on
the event loop without awaiting, so no two coroutines interleave inside one method.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from controller.planner import (
    Action,
    AddTasks,
    CreateJob,
    DeleteJob,
    DeleteTask,
    ObservedTask,
    SimulatorState,
    StopTask,
)


class TaskCounts(NamedTuple):
    """One ``GET /jobs/{id}/taskcounts`` answer (``preparing`` is under ``running``)."""

    active: int
    running: int
    completed: int
    succeeded: int
    failed: int

    @property
    def started(self) -> tuple[int, int, int, int]:
        """The counts of tasks that left the queue: any move here means a full listing."""
        return (self.running, self.completed, self.succeeded, self.failed)


class Step(enum.Enum):
    """What an observation of one job has to send after its task counts."""

    REUSE = "reuse"
    REFRESH = "refresh"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class Listing:
    """A job's tasks as last seen, with the counts taken just before they were."""

    counts: TaskCounts
    tasks: tuple[ObservedTask, ...]
    pending: frozenset[str]  # ids of the tasks queued or preparing when listed
    preparing: frozenset[str]  # ids of those preparing (pulling their image)
    listed_at: float  # monotonic time of the last full listing (a refresh keeps it)
    covers: int  # simfleet's changes numbered up to this one happened before it started


@dataclass(frozen=True, slots=True)
class Listed:
    """What one listing request brought: planner records, and which were preparing."""

    tasks: tuple[ObservedTask, ...]
    preparing: frozenset[str] = frozenset()


class ListingCache:
    """Per-job listings and the changes simfleet made since each was taken."""

    def __init__(self, *, max_age: float, clock: Callable[[], float]) -> None:
        self._max_age = max_age
        self._clock = clock
        self._listings: dict[str, Listing] = {}
        self._changes = 0  # numbers simfleet's changes, across all jobs
        self._relist_after: dict[str, int] = {}  # job → its last stop, delete or creation
        self._refresh_after: dict[str, int] = {}  # job → its last task addition

    def changed(self, action: Action) -> None:
        """simfleet is about to change a job's tasks: make the next observation see it."""
        match action:
            case AddTasks(job):
                self._changes += 1
                self._refresh_after[job] = self._changes  # new tasks are queued: a refresh
            case CreateJob(job) | DeleteJob(job) | StopTask(job) | DeleteTask(job):
                self._changes += 1
                self._relist_after[job] = self._changes
            case _:
                pass

    def ticket(self) -> int:
        """The number a listing that starts now covers (see :attr:`Listing.covers`)."""
        return self._changes

    def remembered(self, job: str) -> tuple[ObservedTask, ...]:
        """The tasks of ``job``'s listing (after :meth:`step` answered ``REUSE``)."""
        return self._listings[job].tasks

    def step(self, job: str, counts: TaskCounts) -> Step:
        """What to send for ``job``, given the counts just taken."""
        known = self._listings.get(job)
        if (
            known is None
            or self._clock() - known.listed_at >= self._max_age
            or known.covers < self._relist_after.get(job, 0)
            or known.counts.started != counts.started
        ):
            return Step.LIST
        if (
            known.covers < self._refresh_after.get(job, 0)
            or known.counts.active != counts.active
            or known.preparing
        ):
            return Step.REFRESH
        return Step.REUSE

    def listed(
        self, job: str, counts: TaskCounts, listed: Listed, ticket: int
    ) -> tuple[ObservedTask, ...]:
        """Remember a full listing that started at ``ticket``; return its tasks."""
        self._keep(job, counts, listed.tasks, listed.preparing, self._clock(), ticket)
        return listed.tasks

    def refreshed(
        self, job: str, counts: TaskCounts, pending: Listed, ticket: int
    ) -> tuple[ObservedTask, ...] | None:
        """Fold a listing of the pending tasks into the remembered one.

        None when a remembered pending task is missing from it: it started, ended or went
        away without the counts showing how, so the caller must list the whole job.
        """
        known = self._listings[job]
        fresh = {t.id: t for t in pending.tasks}
        if not known.pending <= fresh.keys():
            return None
        tasks = [fresh.pop(t.id, t) for t in known.tasks]
        tasks.extend(fresh.values())  # queued since the listing (by simfleet or anyone)
        kept = tuple(tasks)
        self._keep(job, counts, kept, pending.preparing, known.listed_at, ticket)
        return kept

    def _keep(
        self,
        job: str,
        counts: TaskCounts,
        tasks: tuple[ObservedTask, ...],
        preparing: frozenset[str],
        listed_at: float,
        ticket: int,
    ) -> None:
        pending = frozenset(t.id for t in tasks if t.state is SimulatorState.PENDING)
        self._listings[job] = Listing(counts, tasks, pending, preparing, listed_at, ticket)

    def forget_except(self, jobs: Iterable[str]) -> None:
        """Drop what is remembered about jobs that no longer exist."""
        alive = set(jobs)
        for memory in (self._listings, self._relist_after, self._refresh_after):
            for job in memory.keys() - alive:
                del memory[job]
