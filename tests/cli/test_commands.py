"""The command table: ``--help`` lists every command without importing it, and each
command imports only what it needs (heavy SDKs arrive with the commands that use them).

These check *what* is imported, in a fresh interpreter; how fast that is belongs to
``benchmarks/startup.py``.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from controller import __version__
from controller.cli import main
from controller.cli._main import COMMANDS, LazyGroup

HEAVY = ("azure", "aiohttp", "docker", "controller.daemon", "controller.backends")

#: The ``simfleet`` program in a fresh interpreter, reporting at exit what it had imported
#: and what its start-up did to the garbage collector.
PROBE = """
import atexit, gc, json, sys
atexit.register(lambda: print(json.dumps({
    "modules": sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules)),
    "collecting": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
}), file=sys.stderr))
sys.argv[0] = "simfleet"
from controller.cli import program
program()
"""


def run_program(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """A fresh ``simfleet ARGS`` process, and its exit report (see :data:`PROBE`)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stderr.strip().splitlines()[-1])
    return done, report


def imported(*args: str) -> set[str]:
    """The modules a fresh ``simfleet ARGS`` process had imported when it ended."""
    return set(run_program(*args)[1]["modules"])


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["status", "--listen", "127.0.0.1:1"], id="status"),
        pytest.param(["validate", "specs"], id="validate"),
        pytest.param(["version"], id="version"),
    ],
)
def test_fast_commands_import_no_sdk_nor_the_daemon(args: list[str]) -> None:
    modules = imported(*args)
    assert "click" in modules  # the probe did run the command line
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_help_imports_no_command_module() -> None:
    modules = imported("--help")
    assert not {f"controller.cli.{name}" for name in COMMANDS} & modules


def test_help_lists_every_command_with_its_short_help() -> None:
    result = CliRunner().invoke(main, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    for name, short in COMMANDS.items():
        assert f"{name} " in listed
        assert short in listed


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_in_the_table_resolves_to_its_click_command(name: str) -> None:
    group = main
    assert isinstance(group, LazyGroup)
    command = group.get_command(click.Context(group), name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["nonsense"])
    assert result.exit_code == 2
    assert "No such command 'nonsense'" in result.output


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version_prints_the_version(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0
    assert result.output == f"simfleet {__version__}\n"


@pytest.mark.parametrize("flag", ["-o", "--output"])
def test_plan_takes_dash_o_for_its_output(tmp_path: Path, flag: str) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(
        "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\nspec: {vmSize: d2}\n"
    )
    argv = ["plan", "--specs", str(specs), "--state-dir", str(tmp_path / "state"), flag, "json"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert [c["name"] for c in json.loads(result.stdout)["changes"]] == ["p"]


def test_the_program_validates_without_a_plugin_search_and_collects_while_it_runs() -> None:
    done, report = run_program("validate", "specs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: ")
    assert "importlib.metadata" not in report["modules"]  # pydantic's plugin search never ran
    assert report["collecting"] is True  # turned back on once the command was imported
    assert report["frozen"] > 10_000  # what the imports made


def test_the_program_still_reports_spec_errors_with_their_place(tmp_path: Path) -> None:
    spec = tmp_path / "pool.yaml"
    spec.write_text("apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\nspec: {vmSize: 3}\n")
    done, _ = run_program("validate", str(spec))
    assert done.returncode == 1
    assert f"{spec}:4:" in done.stderr


def test_help_exits_with_everything_frozen_and_the_collector_off() -> None:
    done, report = run_program("--help")
    assert done.returncode == 0
    assert "Commands:" in done.stdout
    assert report["collecting"] is False
    assert report["frozen"] > 0


def test_the_command_group_called_in_a_process_leaves_its_collector_alone() -> None:
    """Only :func:`program` holds the collector off; tests (and anyone embedding the
    group) keep theirs, and nothing of theirs is frozen."""
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["validate", "specs"])
    assert result.exit_code == 0, result.output
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
