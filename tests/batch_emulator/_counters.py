"""Request counts per spec operationId and outcome.

"Adds 250 tasks in 3 requests", "never polls GetTask per task", "retried exactly once":
such claims are about request counts, so the emulator counts every request it receives
under its operationId (`Tasks_CreateTaskCollection`, …; `unknown` for paths outside the
spec) and outcome: the HTTP status sent, or `"dropped"` when the connection was closed
without an answer. The most recent requests are also kept with their path and query
(`targets`), for claims about *which* job was listed and with what `$filter`.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from urllib.parse import unquote

Outcome = int | str


@dataclass
class RequestCounters:
    _counts: Counter[tuple[str, Outcome]] = field(default_factory=Counter)
    _recent: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=10_000))

    def record(self, operation: str, outcome: Outcome, target: str = "") -> None:
        """Count one request; ``target`` is its raw path and query, kept among the recent."""
        self._counts[(operation, outcome)] += 1
        self._recent.append((operation, target))

    def targets(self, operation: str) -> list[str]:
        """Path and query (decoded) of the recent requests of one operation, oldest first."""
        return [unquote(t) for op, t in self._recent if op == operation]

    def count(self, operation: str | None = None, outcome: Outcome | None = None) -> int:
        return sum(
            n
            for (op, out), n in self._counts.items()
            if (operation is None or op == operation) and (outcome is None or out == outcome)
        )

    def by_operation(self) -> dict[str, dict[Outcome, int]]:
        table: dict[str, dict[Outcome, int]] = {}
        for (op, out), n in sorted(self._counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            table.setdefault(op, {})[out] = n
        return table

    def reset(self) -> None:
        self._counts.clear()
        self._recent.clear()

    def __repr__(self) -> str:
        return f"RequestCounters({self.by_operation()})"
