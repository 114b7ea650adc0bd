"""Issue 10, item 6 on every backend: a changed vmSize replaces the pool as a rollout.

A new pool appears beside the old one, the simulators move to it within the rollout
limits (sampled all along: never fewer serving than ``maxUnavailable`` allows, never more
than ``maxSurge`` slots doubled), the old job and pool are deleted, and the end state has
exactly one simulator per slot. A ``kill -9`` of the daemon in mid-move resumes without
a duplicate; ``replacement: Hold`` keeps today's "needs replacement".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from controller.planner import PoolConfig
from controller.planner._replacement import job_id, pool_id
from controller.spec import PoolSpec

from .conftest import STATE, EmulatorDriver, Fleet, wait_until

ROLLOUT = "  rollout: {maxSurge: 1, maxUnavailable: 1, progressDeadline: 5m}\n"
#: Says which task it is, then serves: ``simfleet logs`` must find it in its new job.
COMMAND = '["sh", "-c", "echo task=$SIMFLEET_TASK_ID; exec sleep 600"]'
SIMULATORS = 4


def pool_yaml(vm_size: str, extra: str = "") -> str:
    return (
        "apiVersion: simfleet/v1\nkind: Pool\nmetadata: {name: sims}\n"
        f"spec: {{vmSize: {vm_size}, taskSlotsPerNode: 4, nodes: {{dedicated: 2}}{extra}}}\n"
    )


NEW_POOL = pool_id(
    "sims",
    PoolConfig.of(
        PoolSpec.model_validate(
            {"vmSize": "standard_d4s_v5", "taskSlotsPerNode": 4, "nodes": {"dedicated": 2}}
        )
    ),
)
NEW_JOB = job_id("alpha", NEW_POOL, "sims")


def live(fleet: Fleet) -> list[tuple[int, str]]:
    """(slot, task id) of every live simulator of ``alpha``, in either of its jobs."""
    found = fleet.driver.live_by_simulation(fleet.marker)
    if isinstance(fleet.driver, EmulatorDriver):  # keyed by job there
        return found.get("alpha", []) + found.get(NEW_JOB, [])
    return found.get("alpha", [])


def violations(fleet: Fleet, max_pairs: int) -> list[str]:
    per_slot = Counter(slot for slot, _ in live(fleet))
    problems = [f"slot {s}: {n} live" for s, n in per_slot.items() if n > 2]
    pairs = sum(1 for n in per_slot.values() if n == 2)
    if pairs > max_pairs:
        problems.append(f"{pairs} pairs > maxSurge {max_pairs}")
    return problems


def converged(sim: dict[str, Any]) -> bool:
    rows = sim["simulators"]
    return (
        sim["ready"] == SIMULATORS == sim["upToDate"]
        and len(rows) == SIMULATORS
        and all(r["state"] == "running" for r in rows)
        and "moving" not in sim["message"]
    )


def pools(fleet: Fleet) -> list[str]:
    return sorted(p["name"] for p in fleet.status()["pools"])


def replaced(fleet: Fleet) -> bool:
    sim = fleet.sim("alpha")
    return sim is not None and converged(sim) and pools(fleet) == [NEW_POOL]


def start_converged(fleet: Fleet, extra: str = "") -> None:
    fleet.write("pool.yaml", pool_yaml("standard_d2s_v5", extra))
    fleet.write("alpha.yaml", fleet.simulation("alpha", SIMULATORS, command=COMMAND, extra=ROLLOUT))
    fleet.start()
    fleet.wait_sim("alpha", converged, timeout=60)


def assert_nothing_doubled(fleet: Fleet) -> None:
    wait_until(lambda: len(live(fleet)) == SIMULATORS, timeout=60, what="4 live simulators")
    assert sorted(slot for slot, _ in live(fleet)) == list(range(SIMULATORS))
    if isinstance(fleet.driver, EmulatorDriver):  # the old job is gone from Batch too
        wait_until(lambda: "alpha" not in fleet.driver.tasks(), timeout=60, what="old job gone")
        assert {j for j in fleet.driver.tasks() if "lease" not in j} == {NEW_JOB}


def test_a_changed_vm_size_moves_the_simulators_to_a_new_pool(fleet: Fleet) -> None:
    start_converged(fleet)
    fleet.write("pool.yaml", pool_yaml("standard_d4s_v5"))
    ready, problems, seen_pools = [], [], set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        sim = fleet.sim("alpha")
        assert sim is not None
        ready.append(sim["ready"])
        problems += violations(fleet, max_pairs=1)
        seen_pools.update(pools(fleet))
        if replaced(fleet):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"not replaced: {fleet.status()}")
    assert min(ready) >= SIMULATORS - 1, f"READY fell to {min(ready)} (maxUnavailable 1)"
    assert len(ready) > 5  # sampled throughout
    assert problems == []
    assert {"sims", NEW_POOL} <= seen_pools  # both pools existed side by side
    assert_nothing_doubled(fleet)
    logs = subprocess.run(
        [
            *(sys.executable, "-m", "controller", "logs", "alpha", "0"),
            *("--backend", fleet.driver.name, "--state-dir", STATE),
        ],
        cwd=fleet.root,
        env={**os.environ, **fleet.driver.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert logs.returncode == 0, logs.stderr  # found in the simulation's new job
    if not isinstance(fleet.driver, EmulatorDriver):  # the emulator runs no command
        assert f"task={NEW_JOB}-s0-" in logs.stdout


def test_a_daemon_killed_in_mid_move_resumes_without_duplicates(fleet: Fleet) -> None:
    start_converged(fleet)
    fleet.write("pool.yaml", pool_yaml("standard_d4s_v5"))

    def mid_move() -> bool:
        sim = fleet.sim("alpha")
        return sim is not None and "moving" in sim["message"] and NEW_POOL in pools(fleet)

    wait_until(mid_move, timeout=120, what="the move under way")
    fleet.kill9()
    problems = violations(fleet, max_pairs=1)
    fleet.start()
    deadline = time.monotonic() + 180
    while not replaced(fleet):
        problems += violations(fleet, max_pairs=1)
        assert time.monotonic() < deadline, f"not replaced: {fleet.status()}"
        time.sleep(0.05)
    assert problems == []
    assert_nothing_doubled(fleet)


def test_replacement_hold_keeps_the_pool_and_says_so(fleet: Fleet) -> None:
    start_converged(fleet, ", replacement: Hold")
    before = fleet.running("alpha")
    fleet.write("pool.yaml", pool_yaml("standard_d4s_v5", ", replacement: Hold"))

    def held() -> bool:
        rows = fleet.status()["pools"]
        return any("needs replacement: vmSize" in p["message"] for p in rows)

    # the pass that shows it planned the new spec: had it replaced, its pool would show
    wait_until(held, timeout=30, what="needs replacement in status")
    assert pools(fleet) == ["sims"]
    assert fleet.running("alpha") == before
