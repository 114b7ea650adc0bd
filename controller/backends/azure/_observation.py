"""Observe a job's tasks cheaply: task counts first, then only what they say changed.

One ``GET /jobs/{id}/taskcounts`` answers "did anything happen?" in a few bytes; the
:mod:`controller.backends.azure._listings` cache decides from it whether the remembered
listing stands, whether only the pending tasks need a look (``$filter`` on state), or
whether the whole job is listed again (``$select``, one request per 1,000 tasks). In a
steady fleet of thousands of simulators a pass then costs one small request per job.

Listed tasks become planner records as they arrive, page by page: no SDK model outlives
the page it came in, and none is ever kept.

Counts are taken *before* listing, so a change racing the listing shows as different
counts next pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controller.backends.azure import _mapping
from controller.backends.azure._listings import Listed, ListingCache, Step, TaskCounts
from controller.planner import Action, ObservedTask

#: Batch's task states a pending simulator can be in (``preparing``: pulling its image).
PENDING_FILTER = "state eq 'active' or state eq 'preparing'"
_PAGE = 1000  # Batch's largest page of tasks


class TaskObserver:
    """Lists each job's tasks only as far as its counts and simfleet's changes require."""

    def __init__(
        self, client: Any, *, max_age: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._cache = ListingCache(max_age=max_age, clock=clock)

    def changed(self, action: Action) -> None:
        """simfleet is about to send ``action``: the next observation must see its effect."""
        self._cache.changed(action)

    def forget_except(self, jobs: set[str]) -> None:
        """Drop memories of jobs that no longer exist."""
        self._cache.forget_except(jobs)

    async def tasks(self, job: str) -> tuple[ObservedTask, ...]:
        """The job's simfleet tasks, listed no further than needed."""
        ticket = self._cache.ticket()
        result = await self._client.get_job_task_counts(job)
        c = result.task_counts
        counts = TaskCounts(c.active, c.running, c.completed, c.succeeded, c.failed)
        step = self._cache.step(job, counts)
        if step is Step.REUSE:
            return self._cache.remembered(job)
        if step is Step.REFRESH:
            pending = await self._listed(job, PENDING_FILTER)
            refreshed = self._cache.refreshed(job, counts, pending, ticket)
            if refreshed is not None:
                return refreshed
        return self._cache.listed(job, counts, await self._listed(job, None), ticket)

    async def _listed(self, job: str, state_filter: str | None) -> Listed:
        """The job's simfleet tasks matching ``state_filter``, converted as they arrive."""
        tasks: list[ObservedTask] = []
        preparing: set[str] = set()
        async for item in self._client.list_tasks(
            job, filter=state_filter, select=_mapping.TASK_SELECT, max_results=_PAGE
        ):
            task = _mapping.observed_task(job, item)
            if task is not None:
                tasks.append(task)
                if task.starting:
                    preparing.add(task.id)
        return Listed(tuple(tasks), frozenset(preparing))
