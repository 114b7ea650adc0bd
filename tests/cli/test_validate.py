"""``simfleet validate`` as people and pre-commit run it: files in, exit code and errors out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GOOD = """\
apiVersion: simfleet/v1
kind: Simulation
metadata: {name: cartpole}
spec: {pool: sims, image: "cartpole:1", simulators: 2}
"""


def validate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_files_exit_0(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    result = validate("a.yaml", cwd=tmp_path)
    assert result.returncode == 0
    assert "1 simulation(s)" in result.stdout


def test_errors_exit_1_with_file_line_column(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD.replace("simulators: 2", "simulators: -2"))
    result = validate("a.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("a.yaml:4:")
    assert "spec.simulators: must be >= 0" in result.stderr


def test_the_same_name_in_two_files_is_an_error_naming_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    result = validate("a.yaml", "b.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "also defined at b.yaml" in result.stderr
    assert "also defined at a.yaml" in result.stderr


def test_the_pre_commit_hook_runs_validate_on_spec_files() -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "simfleet-validate"
    assert hook["entry"] == "simfleet validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    import re

    assert re.search(hook["files"], "specs/cartpole/fleet.yaml")
    assert not re.search(hook["files"], ".github/workflows/ci.yaml")


def test_the_example_specs_are_valid() -> None:
    assert validate("specs", cwd=REPO).returncode == 0
