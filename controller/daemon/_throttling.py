"""Rate limits for what the daemon says: log lines, accept errors, crash-loop warnings.

A daemon that repeats itself drowns what matters and fills the disk that holds its state:
a simulator crash-looping with no back-off once produced 180 log lines a second, and
accept errors at the file-descriptor limit 144 MB of log in a minute. :class:`RateLimit`
lets the first ``burst`` events of a key through in each ``window`` and counts the rest;
the next event let through carries that count, so nothing is dropped silently.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable, MutableMapping
from dataclasses import dataclass
from typing import Any

import structlog


@dataclass
class _Bucket:
    opened: float
    passed: int = 0
    suppressed: int = 0


class RateLimit:
    """At most ``burst`` events per key per ``window`` seconds.

    Args:
        burst: events of one key let through in each window.
        window: seconds.
        clock: monotonic seconds (injected by tests).
        keys: at most this many keys are remembered; the oldest are forgotten first, so
            an endless variety of keys (say, client addresses) cannot grow memory.
    """

    def __init__(
        self,
        burst: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        keys: int = 1024,
    ) -> None:
        self.burst = burst
        self.window = window
        self._clock = clock
        self._keys = keys
        self._buckets: dict[Hashable, _Bucket] = {}

    def allow(self, key: Hashable) -> int | None:
        """None to drop this event; otherwise how many of the key's events were dropped
        since the last one let through (0 usually)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None or now - bucket.opened >= self.window:
            suppressed = bucket.suppressed if bucket is not None else 0
            self._buckets.pop(key, None)
            self._buckets[key] = _Bucket(opened=now, passed=1)
            while len(self._buckets) > self._keys:
                del self._buckets[next(iter(self._buckets))]
            return suppressed
        if bucket.passed < self.burst:
            bucket.passed += 1
            suppressed, bucket.suppressed = bucket.suppressed, 0
            return suppressed
        bucket.suppressed += 1
        return None


_NUMBERS = re.compile(r"\d+")
_IGNORED = frozenset({"timestamp", "suppressed"})


def log_key(method: str, event: MutableMapping[str, Any]) -> Hashable:
    """What makes two log events "the same line" for the throttle: level, event name and
    string fields with their numbers folded, so "restart slot 3 (attempt 7)" repeated is
    one key however the counters move. Numeric fields (durations, counts) are ignored."""
    fields = tuple(
        sorted(
            (k, _NUMBERS.sub("#", v))
            for k, v in event.items()
            if isinstance(v, str) and k not in _IGNORED
        )
    )
    return method, fields


class LogThrottle:
    """A structlog processor: repeated lines are let through ``burst`` times per
    ``window``; the next one let through carries ``suppressed=N``.

    Ordinary operation never repeats a line that often; a crash loop, an action failing
    on every pass or a client hammering the port does.
    """

    def __init__(self, burst: int = 5, window: float = 10.0) -> None:
        self.limit = RateLimit(burst, window)

    def __call__(
        self, _logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        suppressed = self.limit.allow(log_key(method, event))
        if suppressed is None:
            raise structlog.DropEvent
        if suppressed:
            event["suppressed"] = suppressed
        return event
