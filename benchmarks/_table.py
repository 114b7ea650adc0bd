"""The one table ``make bench`` prints: each figure beside its lower bound and target.

A row carries its figure as text (units differ from row to row), the lower bound measured
in the same run, the ratio when the target is one, the target, and whether it is met.
Printed plainly for a terminal, or as markdown with the machine it ran on.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Row:
    key: str  # which figure of the table (``bench.FIGURES``), whatever the sizes
    figure: str
    measured: str
    lower_bound: str
    ratio: float | None  # measured ÷ lower bound, when the target is a ratio
    target: str
    met: bool | None  # None: could not be measured
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "n/a"}[self.met]

    def cells(self) -> tuple[str, ...]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}×"
        return (self.figure, self.measured, self.lower_bound, ratio, self.target, self.verdict)


HEADER = ("figure", "measured", "lower bound", "ratio", "target", "met")


def plain(rows: Sequence[Row]) -> str:
    cells = [HEADER, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {r.figure}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def markdown(rows: Sequence[Row], title: str) -> str:
    lines = [f"# {title}", "", *machine(), "", "| " + " | ".join(HEADER) + " |"]
    lines.append("|" + " --- |" * len(HEADER))
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |" for r in rows]
    notes = [f"- **{r.figure}**: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["", "Notes:", "", *notes] if notes else [])) + "\n"


def machine() -> list[str]:
    """CPU model, cores, RAM, Python, kernel, load and date: what a figure depends on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {commit or 'unknown'}",
        f"- CPU: {model}, {os.cpu_count()} cores; RAM {mem_kb / 2**20:.1f} GiB",
        f"- Python {platform.python_version()}, {platform.system()} {platform.release()}",
        f"- load average at the end (1, 5, 15 min): {load}",
    ]
