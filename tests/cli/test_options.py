"""product.md: every option also reads ``SIMFLEET_<OPTION>`` from the environment."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from controller.cli import main


def commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command, subcommands of groups (``image build``) included."""
    found: dict[str, click.Command] = {}
    context = click.Context(group)
    for name in group.list_commands(context):  # the top level imports its commands lazily
        command = group.get_command(context, name)
        assert command is not None
        found[prefix + name] = command
        if isinstance(command, click.Group):
            found.update(commands(command, f"{prefix}{name} "))
    return found


COMMANDS = commands(main)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_reads_its_simfleet_variable(name: str) -> None:
    command = COMMANDS[name]
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden and param.name != "help":
            long = max(param.opts, key=len).lstrip("-").upper().replace("-", "_")
            assert param.envvar == f"SIMFLEET_{long}", f"{name} {param.opts}"


def test_variables_alone_configure_a_command(tmp_path: Path) -> None:
    specs = tmp_path / "elsewhere"
    specs.mkdir()
    (specs / "a.yaml").write_text(
        "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\nspec: {vmSize: d2}\n"
    )
    env = {
        "SIMFLEET_SPECS": str(specs),
        "SIMFLEET_STATE_DIR": str(tmp_path / "state"),
        "SIMFLEET_OUTPUT": "json",
    }
    result = CliRunner().invoke(main, ["plan"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["changes"][0]["name"] == "p"


@pytest.mark.parametrize(
    ("args", "env", "delay"),
    [
        pytest.param([], {}, 600, id="default-10-minutes"),
        pytest.param(["--scale-down-delay", "3600"], {}, 3600, id="option"),
        pytest.param([], {"SIMFLEET_SCALE_DOWN_DELAY": "7200"}, 7200, id="variable"),
    ],
)
def test_the_scale_down_delay_holds_a_shrink_that_long(
    tmp_path: Path, args: list[str], env: dict[str, str], delay: int
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    pool = "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: p}\nspec: {vmSize: d2, nodes: "
    (specs / "p.yaml").write_text(pool + "{dedicated: 3}}\n")
    base = {"SIMFLEET_SPECS": str(specs), "SIMFLEET_STATE_DIR": str(tmp_path / "state")}
    applied = CliRunner().invoke(main, ["apply"], env=base)
    assert applied.exit_code == 0, applied.output
    (specs / "p.yaml").write_text(pool + "{dedicated: auto}}\n")  # no simulation: 0 nodes
    started = datetime.now(UTC)
    result = CliRunner().invoke(main, ["plan", *args], env={**base, **env})
    assert result.exit_code == 0, result.output
    found = re.search(r"shrinks to 0\+0 nodes after (\S+) if demand stays lower", result.output)
    assert found, result.output
    held = datetime.fromisoformat(found[1]) - started
    assert timedelta(seconds=delay - 1) <= held <= timedelta(seconds=delay + 300)
    assert "the fleet matches the specs" not in result.output
