"""Lifetime: replace simulators that ran for ``maxLifetime``, one rollout step at a time.

Batch ends any task 180 days after it was added. A simulator that reached its
``maxLifetime`` is treated like one on an old template: the rolling update pairs a fresh
simulator (same template, next attempt) beside it and retires it once the fresh one is
available, within ``maxSurge`` / ``maxUnavailable`` — never the whole fleet at once.

The task's own wall-clock limit on Batch (and in the local backend) is a backstop set a
margin *above* ``maxLifetime``, so recycling gets there first: 150d recycles at 150 days
and is ended by Batch at 165 days at the latest; nothing is ever allowed past 180 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from controller.spec import BATCH_TASK_LIMIT

MIN_MARGIN = timedelta(minutes=1)


def recycle_from(max_lifetime: timedelta, now: datetime) -> datetime:
    """A running simulator added at or before this moment ran ``maxLifetime`` and is due.

    Measured from when the task was added, as Batch's 180-day limit is: a simulator that
    waited a week for a node still ends 180 days after it was added. One moment per
    simulation rather than a sum per task: :func:`._slots.group` compares each running
    task's ``created_at`` with it (``created_at + maxLifetime <= now``).
    """
    return now - max_lifetime


def wall_clock_limit(max_lifetime: timedelta) -> timedelta:
    """The hard limit a backend enforces: ``maxLifetime`` plus a margin, at most 180 days.

    The margin is a tenth of ``maxLifetime``, at least a minute: enough for a rollout step.
    """
    return min(BATCH_TASK_LIMIT, max_lifetime + max(MIN_MARGIN, max_lifetime / 10))
