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


POOL = "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\nspec: {vmSize: d2}\n"


def test_a_pool_named_in_another_case_is_an_error_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "pool.yaml").write_text(POOL)
    (tmp_path / "specs" / "a.yaml").write_text(GOOD.replace("pool: sims", "pool: SIMS"))
    result = validate("specs", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        'specs/a.yaml:4:14: spec.pool: Pool "SIMS" is not defined; did you mean "sims"?'
        " (write the name as the Pool spells it)\n"
    )


def test_a_dangling_pool_is_an_error_in_the_default_directory(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "pool.yaml").write_text(POOL)
    (tmp_path / "specs" / "a.yaml").write_text(GOOD.replace("pool: sims", "pool: simz"))
    result = validate(cwd=tmp_path)
    assert result.returncode == 1
    assert 'spec.pool: Pool "simz" is not defined; did you mean "sims"?' in result.stderr


def test_an_overflowing_duration_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD.replace("2}", "2, maxLifetime: .inf}"))
    result = validate("a.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("a.yaml:4:69: spec.maxLifetime: must be between 1s and 170d")


def test_a_file_without_documents_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("# cartpole, commented out for now\n")
    result = validate("a.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        1,
        "a.yaml:1:1: the file holds no documents; delete the file to remove what it defined\n",
    )


def test_a_link_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "outside.yaml").write_text(GOOD)
    (tmp_path / "specs" / "a.yaml").symlink_to("../outside.yaml")
    result = validate("specs", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (
        1,
        "specs/a.yaml:1:1: a link to ../outside.yaml outside the specs directory is not read\n",
    )


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
