"""``--fleet`` / ``SIMFLEET_FLEET``: on every command that opens a backend, checked before
anything is opened, and handed to the backend; ``/status`` says which fleet it shows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.daemon import Controller, DaemonConfig
from controller.testing import FakeBackend
from tests.daemon.conftest import POOL, running

OPENING = [["run"], ["plan"], ["apply"], ["logs", "alpha"]]


@pytest.mark.parametrize("command", OPENING, ids=lambda c: c[0])
@pytest.mark.parametrize("name", ["Blue", "-blue", "blue_green", "x" * 41, ""])
def test_a_bad_fleet_name_ends_the_command_with_one_line(
    command: list[str], name: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main, [*command, "--fleet", name, "--state-dir", str(tmp_path / "state")]
    )
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--fleet'" in result.output
    assert "cannot name a fleet" in result.output
    assert not (tmp_path / "state").exists()


def test_the_variable_names_the_fleet(tmp_path: Path) -> None:
    """A state directory of fleet blue: plan for SIMFLEET_FLEET=green is refused, and the
    error says how to get it right; blue plans."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    state = tmp_path / "state"
    (state / "local").mkdir(parents=True)
    (state / "local" / "fleet").write_text("blue\n")
    env = {"SIMFLEET_SPECS": str(specs), "SIMFLEET_STATE_DIR": str(state)}
    refused = CliRunner().invoke(main, ["plan"], env={**env, "SIMFLEET_FLEET": "green"})
    assert refused.exit_code == 1
    assert "belongs to fleet 'blue', not 'green': use --fleet blue" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    planned = CliRunner().invoke(main, ["plan"], env={**env, "SIMFLEET_FLEET": "blue"})
    assert planned.exit_code == 0, planned.output
    assert "+ create pool sims" in planned.output


def test_without_the_option_the_fleet_is_default(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "pool.yaml").write_text(POOL)
    state = tmp_path / "state"
    result = CliRunner().invoke(main, ["apply", "--specs", str(specs), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    assert (state / "local" / "fleet").read_text() == "default\n"


async def test_status_names_the_fleet(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    config = DaemonConfig(specs=specs, port=0, fleet="blue")
    controller = Controller(config, FakeBackend())
    assert controller.status()["fleet"] == "blue"  # before the first pass, too
    async with running(controller):
        await asyncio.sleep(0)
        assert controller.status()["fleet"] == "blue"


@pytest.mark.parametrize("command", [["run", "--listen", "127.0.0.1:0"], ["apply"], ["plan"]])
def test_a_command_for_another_fleet_ends_at_once_saying_what_to_do(
    command: list[str], tmp_path: Path
) -> None:
    """The daemon too: it must not start and stand by for a directory it can never use."""
    specs = tmp_path / "specs"
    specs.mkdir()
    state = tmp_path / "state"
    (state / "local").mkdir(parents=True)
    (state / "local" / "fleet").write_text("blue\n")
    options = ["--specs", str(specs), "--state-dir", str(state), "--fleet", "green"]
    result = CliRunner().invoke(main, [*command, *options])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {state.absolute()} belongs to fleet 'blue', not 'green': use --fleet blue, "
        "or another --state-dir for fleet 'green'"
    ]
