"""``simfleet run`` starts in an order that cannot hurt the fleet and ends with one line.

Options are checked and the port is bound before the backend is opened; only a stop
signal stops simulators, a failure leaves them running for the next daemon to adopt.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from controller.cli import main
from controller.daemon import Controller
from tests.scenarios.conftest import REPO, free_port, kill_groups, processes_with, wait_until

POOL = "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\nspec: {vmSize: d2}\n"


def simfleet(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process."""
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))}
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "pool.yaml").write_text(POOL)
    return tmp_path


class TestStartUp:
    def test_a_port_in_use_is_one_line_and_the_backend_is_never_opened(self, workdir: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = simfleet("run", "--listen", f"127.0.0.1:{port}", cwd=workdir)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            f"Error: cannot listen on 127.0.0.1:{port}: address already in use"
        ]
        assert not (workdir / ".simfleet").exists()  # no lock taken, nothing adopted

    @pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "192.168.1.10:0", "myhost:0"])
    def test_a_non_loopback_address_needs_consent(self, workdir: Path, address: str) -> None:
        done = simfleet("run", "--listen", address, cwd=workdir, timeout=20)
        assert done.returncode == 2
        assert "--listen-public" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (workdir / ".simfleet").exists()

    def test_consent_lets_a_non_loopback_address_through(self, workdir: Path) -> None:
        # 192.0.2.1 (TEST-NET-1) is not this machine's: the bind fails, nothing is exposed
        done = simfleet("run", "--listen", "192.0.2.1:0", "--listen-public", cwd=workdir)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "Error: cannot listen on 192.0.2.1:0: cannot assign requested address"
        ]

    def test_consent_also_comes_from_the_environment(self, workdir: Path) -> None:
        result = CliRunner().invoke(
            main,
            ["run", "--listen", "192.0.2.1:0"],
            env={"SIMFLEET_LISTEN_PUBLIC": "1", "SIMFLEET_SPECS": str(workdir / "specs")},
        )
        assert result.exit_code == 1
        assert "cannot assign requested address" in result.output

    @pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "127.0.0.1:http"])
    def test_a_malformed_listen_is_a_usage_error(self, workdir: Path, address: str) -> None:
        result = CliRunner().invoke(main, ["run", "--listen", address])
        assert result.exit_code == 2
        assert "HOST:PORT" in result.output


@pytest.fixture
def marker() -> Iterator[str]:
    """A value in every simulator's environment; its processes are killed afterwards."""
    value = f"run-test-{os.getpid()}-{id(object())}"
    yield value
    kill_groups(processes_with(value))


class Exploding(Controller):
    """A daemon that breaks after its first pass, as a bug in the loop would."""

    async def run(self, *args: Any, **kwargs: Any) -> None:
        task = asyncio.create_task(super().run(*args, **kwargs))
        await asyncio.wait_for(self.ready.wait(), 20)
        self.stop()
        await task
        raise RuntimeError("the loop broke")


@pytest.mark.slow
def test_a_failing_daemon_leaves_its_simulators_running(
    workdir: Path, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "specs" / "sim.yaml").write_text(
        "apiVersion: simfleet/v1\nkind: Simulation\nmetadata: {name: alpha}\n"
        "spec: {pool: sims, simulators: 2, image: x, command: sleep 600, "
        f"env: {{SCENARIO_MARKER: {marker}}}}}\n"
    )
    monkeypatch.chdir(workdir)
    runner = CliRunner()
    applied = runner.invoke(main, ["apply"])
    assert applied.exit_code == 0, applied.output
    wait_until(lambda: len(processes_with(marker, comm="sleep")) == 2, what="both simulators")
    before = set(processes_with(marker, comm="sleep"))
    monkeypatch.setattr("controller.cli.run.Controller", Exploding)
    result = runner.invoke(main, ["run", "--listen", f"127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "the daemon failed (RuntimeError: the loop broke)" in result.output
    assert set(processes_with(marker, comm="sleep")) == before  # left running, not stopped
