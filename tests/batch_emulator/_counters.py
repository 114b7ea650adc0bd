"""Request counts per spec operationId and outcome.

"Adds 250 tasks in 3 requests", "never polls GetTask per task", "retried exactly once":
such claims are about request counts, so the emulator counts every request it receives
under its operationId (`Tasks_CreateTaskCollection`, …; `unknown` for paths outside the
spec) and outcome: the HTTP status sent, or `"dropped"` when the connection was closed
without an answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

Outcome = int | str


@dataclass
class RequestCounters:
    _counts: Counter[tuple[str, Outcome]] = field(default_factory=Counter)

    def record(self, operation: str, outcome: Outcome) -> None:
        self._counts[(operation, outcome)] += 1

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

    def __repr__(self) -> str:
        return f"RequestCounters({self.by_operation()})"
