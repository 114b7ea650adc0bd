"""``simfleet validate`` refuses every bad spec of :data:`BAD_SPECS`, cleanly.

Each bad file sits in a specs directory beside a good Pool file (the Pool ``sims`` it
names) and the directory is validated: exit code 1, at least one ``file:line:col:`` line
about the bad file, and no traceback. The per-input checks call the command in-process
(a subprocess each would cost half a second, a hundred times over) and assert that no
exception but the command's own ``SystemExit(1)`` escaped; one more test runs the real
``python -m controller validate`` over all of them at once.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from tests.adversarial.bad_specs import BAD_SPECS

POOL = """\
apiVersion: simfleet/v1
kind: Pool
metadata:
  name: sims
spec:
  vmSize: standard_d2s_v5
"""


def write_file(path: Path, text: str) -> None:
    """Write the exact text (raw control bytes included) as UTF-8."""
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))


@pytest.fixture
def specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = Path("specs")
    root.mkdir()
    write_file(root / "pool.yaml", POOL)
    return root


def test_the_list_is_long_and_its_ids_unique() -> None:
    ids = [name for name, _ in BAD_SPECS]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)


def test_the_pool_file_alone_is_valid(specs: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(specs)])
    assert (result.exit_code, result.exception) == (0, None), result.output


@pytest.mark.parametrize("text", [text for _, text in BAD_SPECS], ids=[n for n, _ in BAD_SPECS])
def test_validate_refuses_it_with_file_line_column(specs: Path, text: str) -> None:
    write_file(specs / "bad.yaml", text)
    result = CliRunner().invoke(main, ["validate", str(specs)])
    # Only the command's own exit may end it: anything else is a crash CliRunner caught.
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert re.search(r"^specs/bad\.yaml:\d+:\d+: \S", result.stderr, re.MULTILINE), result.stderr
    assert "Traceback" not in result.output
    assert "specs/pool.yaml" not in result.stderr  # the good file stays good


def test_the_real_command_refuses_them_all_without_a_traceback(specs: Path) -> None:
    for index, (_, text) in enumerate(BAD_SPECS):
        write_file(specs / f"bad{index:03}.yaml", text)
    result = subprocess.run(
        [sys.executable, "-m", "controller", "validate", str(specs)],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    reported = set(re.findall(r"^specs/(bad\d{3})\.yaml:\d+:\d+: ", result.stderr, re.MULTILINE))
    assert reported == {f"bad{index:03}" for index in range(len(BAD_SPECS))}
