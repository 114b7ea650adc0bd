"""Task counts as Batch serves them: a hint that may lag behind the tasks' states.

Batch documents `GET /jobs/{id}/taskcounts` as "may not always be up to date; if you need
exact task counts, use a list query". The emulator models that as a per-job snapshot
recomputed at most every `task_counts_lag` emulator seconds: within that window a task
can start, end or be requeued and the counts still show the state before. A client that
trusts the counts to notice every change must bound how long it believes them.
"""

from __future__ import annotations

from typing import Any

from ._config import EmulatorConfig
from ._jobs import Jobs
from ._model import Job, key


class LaggingCounts:
    """The counts each job last answered with, and when they were taken."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._taken: dict[str, tuple[float, Job, dict[str, Any]]] = {}

    def of(self, job: Job, now: float) -> dict[str, Any]:
        """The job's counts as served at ``now``: exact, or at most the lag old."""
        lag = self.config.task_counts_lag
        if lag <= 0:
            return Jobs.task_counts(job)
        held = self._taken.get(key(job.id))
        # A job deleted and created again under its id starts with counts of its own.
        if held is None or held[1] is not job or now - held[0] >= lag:
            held = (now, job, Jobs.task_counts(job))
            self._taken[key(job.id)] = held
        return held[2]
