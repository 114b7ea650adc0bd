"""Scenarios only the local backend has: processes, process groups, the example fleet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO, Fleet, processes_with, wait_until


def test_each_simulator_runs_in_a_process_group_of_its_own(local_fleet: Fleet) -> None:
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
    fleet.start()
    sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
    groups = {os.getpgid(row["pid"]) for row in sim["simulators"]}
    assert len(groups) == 2
    assert os.getpgid(os.getpid()) not in groups
    assert set(processes_with(fleet.marker, comm="sleep")) == {r["pid"] for r in sim["simulators"]}


def test_the_example_specs_run_cartpole_and_logs_show_it(local_fleet: Fleet) -> None:
    fleet = local_fleet
    shutil.copytree(REPO / "specs", fleet.specs, dirs_exist_ok=True)
    fleet.start()
    sim = fleet.wait_sim("cartpole", lambda s: s["ready"] == s["desired"] > 0, timeout=30)
    assert sim["restarts"] == 0

    def logs() -> str:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                "logs",
                "cartpole",
                "1",
                "--state-dir",
                str(fleet.state_dir),
                "--tail",
                "5",
            ],
            cwd=fleet.root,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    output = wait_until(lambda: (text := logs()) and "episode=" in text and text, timeout=30)
    assert "steps=" in output


def test_apply_wait_ends_when_simulators_finish_for_good(local_fleet: Fleet) -> None:
    """OnFailure simulators that exit 0 are done: the fleet has converged, not stalled."""
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    spec = fleet.simulation(
        "batch", 2, command='["sh", "-c", "exit 0"]', extra="  restartPolicy: OnFailure\n"
    )
    fleet.write("batch.yaml", spec)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "apply",
            "--wait",
            "--timeout",
            "60",
            "--specs",
            "specs",
            "--settle",
            "0",
        ],
        cwd=fleet.root,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "converged" in result.stdout


def test_the_docker_runtime_runs_a_fleet_of_containers(local_fleet: Fleet) -> None:
    """The daemon with --runtime docker: containers come up, a killed one comes back."""
    from controller.backends.local._docker import TASK_LABEL, labels
    from tests.backends.local.test_docker import IMAGE, _engine_ready

    why = _engine_ready()
    if why is not None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"the docker runtime needs a Docker Engine on CI: {why}")
        pytest.skip(why)
    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2, image=IMAGE))
    fleet.start("--runtime", "docker")
    sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 2, timeout=60)
    ids = {r["id"] for r in sim["simulators"]}

    mine = labels(fleet.state_dir / "local" / "jobs" / "alpha" / "x")[0]

    def containers(*options: str) -> list[str]:
        """The task ids of this state directory's containers, by their labels."""
        return subprocess.run(
            ["docker", "ps", *options, "--filter", f"label={mine}", "--format",
             f'{{{{.Label "{TASK_LABEL}"}}}}'],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()  # fmt: skip

    wait_until(lambda: set(containers()) == ids, timeout=30, what="both containers")
    fleet.crash("alpha", 1)  # kill -9 of its `docker run`: the container must not linger
    fleet.wait_sim(
        "alpha", lambda s: s["ready"] == 2 and s["simulators"][1]["restarts"] == 1, timeout=60
    )
    assert fleet.terminate(timeout=60) == 0
    # every container of this state directory, the replacement of slot 1 included
    wait_until(lambda: containers("-a") == [], timeout=30, what="no container left behind")
