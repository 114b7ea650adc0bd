"""A first deployment and a rollout under Batch's own timing, scaled 60:1.

The emulator runs its realistic profile (`tests/batch_emulator/_profiles.py`): a pool
allocates for "4 minutes" and boots its nodes for "3" more, each node pulls an image for
"a minute", task counts lag "seconds" — each divided by 60, so one wall second stands for
a minute. The spec's own durations are scaled the same way (`progressDeadline: 10s` is
the default ten minutes). The daemon leads; `simfleet apply --wait` follows it until it
reports the specs converged, while the test samples the emulator's tasks: never two live
simulators in a slot outside a rollout step, never more pairs than `maxSurge`, never
fewer running than desired once the first deployment is up; and the allocation, longer
than the progress deadline, is progress (WaitingForNodes), never Stalled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import EmulatorDriver, Fleet, wait_until

SCALE = "60"
ROLLOUT = "  rollout: {maxSurge: 1, maxUnavailable: 0, progressDeadline: 10s}\n"
SIMULATORS = 4


@pytest.fixture
def realistic_fleet(tmp_path: Path) -> Iterator[Fleet]:
    driver = EmulatorDriver(tmp_path, "--profile", "realistic", "--time-scale", SCALE)
    fleet = Fleet(root=tmp_path, driver=driver)
    fleet.specs.mkdir()
    yield fleet
    fleet.cleanup()


def spec(fleet: Fleet, image: str) -> str:
    return fleet.simulation("alpha", SIMULATORS, image=image, extra=ROLLOUT)


def apply_wait(fleet: Fleet) -> subprocess.Popen[str]:
    """``simfleet apply --wait`` beside the daemon: it follows the leader until converged."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "apply",
            "--wait",
            "--timeout",
            "120",
            "--specs",
            "specs",
            "--backend",
            "azure",
        ],
        cwd=fleet.root,
        env={**os.environ, **fleet.driver.env(), **fleet.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sample_until_done(
    fleet: Fleet, applying: subprocess.Popen[str], sample: Callable[[], None]
) -> str:
    """Call ``sample`` until ``apply --wait`` ends; return its output (it must succeed)."""
    deadline = time.monotonic() + 150
    while applying.poll() is None:
        assert time.monotonic() < deadline, "apply --wait did not end"
        sample()
        time.sleep(0.05)
    output = applying.stdout.read() if applying.stdout else ""
    assert applying.returncode == 0, output + fleet.log()[-4000:]
    return output


def test_first_deployment_and_rollout_under_realistic_timing(realistic_fleet: Fleet) -> None:
    fleet = realistic_fleet
    driver = fleet.driver
    assert isinstance(driver, EmulatorDriver)
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", spec(fleet, "scenario/sim:1"))
    fleet.start()

    # The first deployment: the pool allocates for "minutes" while alpha waits.
    allocation: set[str] = set()
    doubled: list[int] = []
    conditions: set[tuple[str, str, str]] = set()

    def first() -> None:
        state: dict[str, Any] = driver.state()
        if "sims" in state["pools"]:
            allocation.add(state["pools"]["sims"][1])
        doubled.extend(fleet.doubled_slots("alpha"))
        sim = fleet.sim("alpha")
        for c in sim["conditions"] if sim is not None else ():
            conditions.add((c["type"], c["status"], c.get("reason") or ""))

    output = sample_until_done(fleet, apply_wait(fleet), first)
    assert "converged" in output
    assert "resizing" in allocation  # it really waited for the pool to allocate
    assert doubled == []
    sim = fleet.wait_sim("alpha", lambda s: s["ready"] == SIMULATORS, timeout=30)
    assert all(r["state"] == "running" for r in sim["simulators"])
    # Minutes of allocation and boot exceed the (scaled) progress deadline: waiting for
    # nodes is progress, not a stall (issue 10, item 11).
    assert ("Progressing", "True", "WaitingForNodes") in conditions
    assert not any(kind == "Stalled" and status == "True" for kind, status, _ in conditions)

    # A rollout to a new image: each node pulls it for "a minute" first.
    fleet.write("alpha.yaml", spec(fleet, "scenario/sim:2"))
    ready: list[int] = []
    violations: list[str] = []

    def rollout() -> None:
        violations.extend(fleet.slot_violations("alpha", max_pairs=1))
        running = driver.simulators(fleet.marker)
        ready.append(len(running))

    output = sample_until_done(fleet, apply_wait(fleet), rollout)
    assert "converged" in output
    assert violations == []
    assert min(ready) >= SIMULATORS, f"running dropped to {min(ready)} during the rollout"
    sim = fleet.wait_sim("alpha", lambda s: s["upToDate"] == SIMULATORS == s["ready"])
    assert sim["image"] == "scenario/sim:2"
    wait_until(lambda: len(fleet.simulators()) == SIMULATORS, what="exactly 4 simulators")
    assert fleet.doubled_slots("alpha") == []
