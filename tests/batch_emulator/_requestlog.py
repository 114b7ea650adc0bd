"""A timed log of requests, for benchmarks that ask *when* a request arrived.

Counters say how many requests of each kind were sent; a latency figure needs more: "the
edit was written at t, the first ``addtaskcollection`` for that job arrived at t + 83 ms",
or "the write phase lasted from the first write's arrival to the last write's answer".
Times are ``time.monotonic()`` (CLOCK_MONOTONIC, shared by every process on the host), so
a benchmark in another process can compare them with its own clock.

Off unless asked for (``EmulatorConfig.request_log`` / ``--request-log``): a soak runs
millions of requests and must not keep one record each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ._counters import Outcome


class LoggedRequest(NamedTuple):
    arrived: float  # monotonic seconds, before any injected latency
    answered: float  # monotonic seconds, when the answer was ready to be written
    operation: str
    path: str  # the raw path, ids included, without the query
    outcome: Outcome


@dataclass
class RequestLog:
    enabled: bool = False
    entries: list[LoggedRequest] = field(default_factory=list)

    def record(
        self, arrived: float, answered: float, operation: str, path: str, outcome: Outcome
    ) -> None:
        if self.enabled:
            self.entries.append(LoggedRequest(arrived, answered, operation, path, outcome))

    def __len__(self) -> int:
        return len(self.entries)

    def since(self, index: int) -> list[LoggedRequest]:
        """Entries from ``index`` on (a reader keeps the count it has seen)."""
        return self.entries[index:]

    def clear(self) -> None:
        self.entries.clear()
