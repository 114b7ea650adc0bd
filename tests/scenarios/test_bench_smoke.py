"""``make bench --quick`` end to end: every figure of issue 8's table (and issue 11's
start-up times) gets a row that was measured (not one that failed), in the plain table
and in the markdown file. The quick mode's numbers mean nothing and are not checked
(figures belong to benchmarks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "benchmarks/bench.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def table_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


@pytest.mark.slow
def test_the_quick_bench_prints_every_figure_of_issue_8(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    done = bench("--quick", "--markdown", str(results))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    rows = table_rows(results.read_text())
    names = [row[0] for row in rows]
    figures = bench("--list-figures").stdout.splitlines()
    # issue 8's table (ten rows and the emulator's cost), then issue 11's three start-ups
    assert len(figures) == 14, figures
    assert len(rows) == len(figures), names
    for name, prefix in zip(names, figures, strict=True):
        assert prefix in name, (prefix, names)
    failed = [row for row in rows if row[1] == "failed"]
    assert not failed, output
    assert all(name in done.stdout for name in names), done.stdout
    assert "CPU:" in results.read_text()  # the machine it ran on
