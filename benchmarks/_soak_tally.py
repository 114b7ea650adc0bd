"""What one soak run counted, and the table it prints at the end.

Counters are plain data filled in by the runner; :meth:`Tally.failures` names every
invariant that broke, which decides the exit code. Problems are kept as short
descriptions (first occurrence of each), so a failure can be reproduced from the seed
and the description without the whole log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

#: How many examples of one problem the table shows.
EXAMPLES = 3


@dataclass
class Tally:
    backend: str
    seed: int
    simulators: int
    bound: float
    duration: float = 0.0
    steps: int = 0
    rounds: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    first_convergence: float | None = None
    convergence: list[float] = field(default_factory=list)
    doubled: dict[str, str] = field(default_factory=dict)  # key → description
    surge_excess: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    unconverged: list[str] = field(default_factory=list)
    disrupted: int = 0  # simulators
    disruptions: list[str] = field(default_factory=list)  # one per window
    bystanders: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)  # "source: value"
    daemon_exits: list[str] = field(default_factory=list)
    start_failures: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    early_arrivals: int = 0
    aborted: str = ""

    def failures(self) -> list[str]:
        """The invariants that broke; empty when the run passed."""
        checks = {
            "doubled slots": self.doubled,
            "simulators over maxSurge": self.surge_excess,
            "lost slots": self.lost,
            "no convergence within the bound": self.unconverged,
            "simulators stopped by a bad or moving file": self.disrupted,
            "unowned objects touched": self.bystanders,
            "secret values in output": self.secrets,
            "daemon exited by itself": self.daemon_exits,
            "daemon failed to start": self.start_failures,
            "Batch REST spec violations": self.violations,
            "run aborted": self.aborted,
        }
        return [name for name, found in checks.items() if found]

    def table(self) -> str:
        worst = max(self.convergence, default=None)
        rows: list[tuple[str, str, list[str]]] = [
            ("backend", f"{self.backend}, seed {self.seed}, {self.simulators} simulators", []),
            ("duration", f"{self.duration:.1f} s", []),
            ("steps", f"{self.steps} in {self.rounds} fault rounds", []),
            ("faults injected", str(sum(self.faults.values())), []),
            *((f"  {kind}", str(n), []) for kind, n in sorted(self.faults.items())),
            ("controller kill -9", str(self.kills), []),
            ("first convergence", _seconds(self.first_convergence), []),
            (
                "worst convergence",
                f"{_seconds(worst)} over {len(self.convergence)} quiet phases "
                f"(bound {self.bound:.0f} s)",
                [],
            ),
            _must_be_zero("doubled slots (duplicates)", self.doubled.values()),
            _must_be_zero("over maxSurge", self.surge_excess.values()),
            _must_be_zero("lost slots", self.lost),
            _must_be_zero("not converged in bound", self.unconverged),
            (
                "stopped by bad/moving file",
                f"{self.disrupted}{'  (must be 0)' if self.disrupted else ''}",
                self.disruptions,
            ),
            _must_be_zero("unowned objects touched", self.bystanders.values()),
            _must_be_zero("secret values in output", sorted(self.secrets)),
            _must_be_zero("daemon exits by itself", self.daemon_exits),
            _must_be_zero("daemon start failures", self.start_failures),
        ]
        if self.backend == "azure":
            rows.append(_must_be_zero("REST spec violations", self.violations))
            early = f"{self.early_arrivals} (informational: a restarted daemon knows no window)"
            rows.append(("requests inside Retry-After", early, []))
        if self.aborted:
            rows.append(("ABORTED", self.aborted, []))
        failures = self.failures()
        rows.append(("result", "PASS" if not failures else "FAIL: " + "; ".join(failures), []))
        width = max(len(name) for name, _, _ in rows)
        lines = []
        for name, value, examples in rows:
            lines.append(f"  {name:<{width}}  {value}")
            lines += [f"  {'':<{width}}    {example}" for example in examples[:EXAMPLES]]
            if len(examples) > EXAMPLES:
                lines.append(f"  {'':<{width}}    … {len(examples) - EXAMPLES} more")
        return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _must_be_zero(name: str, found: Iterable[str]) -> tuple[str, str, list[str]]:
    items = list(found)
    return name, f"{len(items)}{'  (must be 0)' if items else ''}", items
