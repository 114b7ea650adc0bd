"""The suite's own reporting: a run ends by listing its skipped suites, grouped by reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._skipped import lines

ROOT = Path(__file__).resolve().parent.parent

SKIPPING = """
import pytest

@pytest.fixture(scope="module")
def engine():
    pytest.skip("no Docker Engine answers")

@pytest.mark.parametrize("n", range(3))
def test_needs_docker(engine, n):
    pass

@pytest.mark.skipif(True, reason="root can list any directory")
def test_other():
    pass

def test_runs():
    pass
"""


def test_a_run_ends_with_its_skips_grouped_by_reason(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(SKIPPING)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests._skipped", "-c", os.devnull],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    start = next(i for i, line in enumerate(out) if "skipped" in line and line.startswith("-"))
    assert out[start + 1 : start + 3] == [
        "3 Docker tests skipped: no Docker Engine answers — start dockerd to run them",
        "1 test skipped: root can list any directory",
    ]


@pytest.mark.parametrize(
    ("reasons", "said"),
    [
        pytest.param([], [], id="nothing skipped, nothing said"),
        pytest.param(
            ["needs git to make repos"],
            ["1 git test skipped: needs git to make repos — install git to run them"],
            id="git",
        ),
        pytest.param(
            ["no docker CLI", "no docker-registry to push to", "no docker CLI"],
            [
                "2 Docker tests skipped: no docker CLI — start dockerd to run them",
                "1 Docker test skipped: no docker-registry to push to — start dockerd to run them",
            ],
            id="most skipped first",
        ),
    ],
)
def test_lines_count_each_reason_and_name_its_component(
    reasons: list[str], said: list[str]
) -> None:
    assert lines(reasons) == said
