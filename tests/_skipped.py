"""``make test`` ends by saying which real-component suites were skipped, and why.

Tests that need a real component (the Docker Engine, git, a browser) skip on a machine
without it (and fail on CI, where ``.ci/run`` installs everything). A skip must not pass
unnoticed among hundreds of dots, so the run ends with one line per reason, counted and
named after its component, with what to do about it:

    8 Docker tests skipped: no Docker Engine answers — start dockerd to run them

Other skips are listed the same way, without a component. The hook is registered by
``tests/conftest.py``; as a module of its own it can be tried on a small run of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import pytest

#: (component, words in a skip reason that name it, what makes its tests run).
COMPONENTS = (
    ("Docker", ("docker", "busybox"), "start dockerd to run them"),
    ("git", ("git",), "install git to run them"),
    ("browser", ("chromium", "browser"), "install chromium to run them"),
)


def reason(report: pytest.TestReport) -> str:
    """The reason a report was skipped for, without pytest's ``Skipped: `` prefix."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def lines(reasons: Sequence[str]) -> list[str]:
    """One line per distinct reason, most skipped first."""
    said = []
    for why, count in Counter(reasons).most_common():
        tests = "test" if count == 1 else "tests"
        lowered = why.lower()
        for component, words, hint in COMPONENTS:
            if any(re.search(rf"\b{re.escape(word)}", lowered) for word in words):
                said.append(f"{count} {component} {tests} skipped: {why} — {hint}")
                break
        else:
            said.append(f"{count} {tests} skipped: {why}")
    return said


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The skipped tests, grouped by reason, as the run's last section."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if r.skipped]
    if not skipped:
        return
    terminalreporter.section("skipped", sep="-", yellow=True)
    for line in lines([reason(r) for r in skipped]):
        terminalreporter.write_line(line, yellow=True)
