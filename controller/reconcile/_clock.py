"""The reconciler's one clock: wall time for the planner, monotonic time for waiting.

Both halves are injected together so that nothing in the loop reads ``time`` behind the
clock a test gave it: deadlines and ``Retry-After`` windows are measured on ``monotonic``
(immune to the wall clock being set), timestamps handed to the planner come from ``wall``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    """Wall and monotonic time from one source.

    Attributes:
        wall: the current time, timezone-aware (what the planner is given as "now").
        monotonic: seconds on a clock that never goes back (for windows and deadlines).
    """

    wall: Callable[[], datetime] = field(default=utc_now)
    monotonic: Callable[[], float] = field(default=time.monotonic)
