"""Observe a job's tasks cheaply: task counts first, the full listing only on change.

One ``GET /jobs/{id}/taskcounts`` answers "did anything happen?" in a few bytes. When the
counts equal those taken just before the last listing, nothing simfleet did touched the
job since (see :meth:`TaskObserver.invalidate`) and that listing is younger than
``max_age``, the listing is reused; otherwise the tasks are listed again with ``$select``
(one request per 1,000 tasks). In a steady fleet of thousands of simulators a pass then
costs one small request per job instead of several pages.

Counts are taken *before* listing, so a change racing the listing shows as different
counts next pass. Batch's counts may lag by a few seconds ("a hint, not the truth"):
``max_age`` bounds how long a lagging count can hide a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.backends.azure import _mapping
from controller.planner import ObservedTask, SimulatorState


@dataclass(frozen=True)
class _Listing:
    counts: tuple[int, ...]
    tasks: tuple[ObservedTask, ...]
    taken_at: float


class TaskObserver:
    """Per-job memory of the last task listing and the counts it was taken at."""

    def __init__(
        self, client: Any, *, max_age: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._max_age = max_age
        self._clock = clock
        self._listings: dict[str, _Listing] = {}

    def invalidate(self, job: str) -> None:
        """simfleet changed ``job``'s tasks: the next observation lists them afresh."""
        self._listings.pop(job, None)

    def forget_except(self, jobs: set[str]) -> None:
        """Drop memories of jobs that no longer exist."""
        for job in set(self._listings) - jobs:
            del self._listings[job]

    async def tasks(self, job: str) -> tuple[ObservedTask, ...]:
        """The job's simfleet tasks, from memory when the counts say nothing changed."""
        result = await self._client.get_job_task_counts(job)
        c = result.task_counts
        counts = (c.active, c.running, c.completed, c.succeeded, c.failed)
        known = self._listings.get(job)
        fresh = known is not None and self._clock() - known.taken_at < self._max_age
        # Counts put "preparing" under "running", so a task starting after its image pull
        # would not move them: a listing holding a pending task is never reused.
        settled = known is not None and not any(
            t.state is SimulatorState.PENDING for t in known.tasks
        )
        if known is not None and fresh and settled and known.counts == counts:
            return known.tasks
        listed = [
            t
            async for t in self._client.list_tasks(
                job, select=_mapping.TASK_SELECT, max_results=1000
            )
        ]
        tasks = tuple(_mapping.observed_tasks(job, listed))
        self._listings[job] = _Listing(counts, tasks, self._clock())
        return tasks
