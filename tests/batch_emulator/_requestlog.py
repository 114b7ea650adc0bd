"""A timed log of requests, for benchmarks that ask *when* a request arrived.

Counters say how many requests of each kind were sent; a latency figure needs more: "the
edit was written at t, the first ``addtaskcollection`` for that job arrived at t + 83 ms",
or "the write phase lasted from the first write's arrival to the last write's answer".
Times are ``time.monotonic()`` (CLOCK_MONOTONIC, shared by every process on the host), so
a benchmark in another process can compare them with its own clock.

Each entry also names the HTTP method and the request's ``User-Agent``, so a test can tell
which client sent what: "no modifying request from anyone but the lease holder" is a
count over `writes()` by user agent (a controller puts ``simfleet-holder/<identity>`` in
its User-Agent).

Off unless asked for (``EmulatorConfig.request_log`` / ``--request-log``): a soak runs
millions of requests and must not keep one record each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from ._counters import Outcome


class LoggedRequest(NamedTuple):
    arrived: float  # monotonic seconds, before any injected latency
    answered: float  # monotonic seconds, when the answer was ready to be written
    operation: str
    path: str  # the raw path, ids included, without the query
    outcome: Outcome
    method: str  # GET, HEAD, POST, PUT, PATCH or DELETE, as sent
    user_agent: str  # the request's User-Agent header, "" without one

    @property
    def write(self) -> bool:
        """Every method but GET and HEAD asks Batch to change something."""
        return self.method not in READ_METHODS


READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class RequestLog:
    enabled: bool = False
    entries: list[LoggedRequest] = field(default_factory=list)

    def record(self, entry: LoggedRequest) -> None:
        if self.enabled:
            self.entries.append(entry)

    def __len__(self) -> int:
        return len(self.entries)

    def since(self, index: int) -> list[LoggedRequest]:
        """Entries from ``index`` on (a reader keeps the count it has seen)."""
        return self.entries[index:]

    def writes(
        self, *, agent: str | None = None, path_prefix: str | None = None
    ) -> list[LoggedRequest]:
        """Modifying requests, whatever their answer (a refused write was still sent).

        ``agent`` keeps those whose User-Agent contains it; ``path_prefix`` those whose path
        starts with it (``"/jobs/sim-a/"`` for one job's tasks, ``"/pools/"`` for pools).
        """
        return [
            e
            for e in self.entries
            if e.write
            and (agent is None or agent in e.user_agent)
            and (path_prefix is None or e.path.startswith(path_prefix))
        ]

    def write_counts(self) -> Counter[tuple[str, str]]:
        """How many modifying requests each (User-Agent, path) pair sent."""
        return Counter((e.user_agent, e.path) for e in self.writes())

    def clear(self) -> None:
        self.entries.clear()
