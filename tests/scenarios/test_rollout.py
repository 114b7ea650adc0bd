"""Scenarios of issue 4 on every backend: rolling updates, stalls, plan/apply, restarts.

The new template differs in its image (the local process runtime records the image, so a
new image is a new template there too). A "broken" new template crashes at once on the
local backend and fails its image pull on the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from .conftest import EmulatorDriver, Fleet, wait_until

ROLLOUT = "  rollout: {maxSurge: 1, maxUnavailable: 0, progressDeadline: 4s}\n"


def rollout_spec(fleet: Fleet, image: str, command: str = '["sleep", "600"]') -> str:
    return fleet.simulation("alpha", 4, image=image, command=command, extra=ROLLOUT)


def done(sim: dict[str, Any]) -> bool:
    rows = sim["simulators"]
    return (
        sim["upToDate"] == 4 == sim["ready"]
        and len(rows) == 4
        and all(r["upToDate"] and r["state"] == "running" for r in rows)
    )


def test_a_rollout_never_drops_ready_below_desired(fleet: Fleet) -> None:
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", rollout_spec(fleet, "scenario/sim:1"))
    fleet.start()
    before = fleet.wait_sim("alpha", done)
    fleet.write("alpha.yaml", rollout_spec(fleet, "scenario/sim:2"))
    samples, violations = [], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sim = fleet.sim("alpha")
        assert sim is not None
        samples.append(sim["ready"])
        violations += fleet.slot_violations("alpha", max_pairs=1)
        if sim["image"] == "scenario/sim:2" and done(sim):
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"rollout did not finish: {fleet.sim('alpha')}")
    assert min(samples) >= 4, f"READY dropped to {min(samples)} during the rollout"
    assert len(samples) > 5  # it was really sampled throughout
    assert violations == []
    old_ids = {r["id"] for r in before["simulators"]}
    assert not old_ids & {r["id"] for r in fleet.sim("alpha")["simulators"]}  # type: ignore[index]
    wait_until(lambda: len(fleet.simulators()) == 4, what="exactly 4 simulators at the end")


def test_a_broken_new_template_stalls_with_the_old_simulators_serving(fleet: Fleet) -> None:
    if isinstance(fleet.driver, EmulatorDriver):
        fleet.driver.control("POST", "broken-images", {"imageContains": "broken"})
        broken, failure = rollout_spec(fleet, "scenario/sim:broken"), "ContainerInvalidImage"
    else:
        broken = rollout_spec(fleet, "scenario/sim:broken", '["sh", "-c", "exit 3"]')
        failure = "exited with code 3"
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", rollout_spec(fleet, "scenario/sim:1"))
    fleet.start()
    fleet.wait_sim("alpha", done)
    serving = fleet.running("alpha")
    fleet.write("alpha.yaml", broken)

    def stalled(sim: dict[str, Any]) -> bool:
        return any(c["type"] == "Stalled" and c["status"] == "True" for c in sim["conditions"])

    sim = fleet.wait_sim("alpha", stalled, timeout=40)
    condition = next(c for c in sim["conditions"] if c["type"] == "Stalled")
    assert condition["reason"] == "ProgressDeadlineExceeded"
    assert failure in condition["message"]
    assert sim["ready"] == 4
    assert sim["upToDate"] == 0
    assert serving <= fleet.running("alpha")  # the old simulators still serve
    assert "stalled" in sim["message"]


def test_plan_exits_2_before_apply_and_0_after(fleet: Fleet) -> None:
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    env = {**os.environ, **fleet.driver.env(), **fleet.env}

    def simfleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                *args,
                "--specs",
                "specs",
                "--backend",
                fleet.driver.name,
                "--settle",
                "0.5",
            ],
            cwd=fleet.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    before = simfleet("plan", "--detailed-exitcode")
    assert before.returncode == 2, before.stdout + before.stderr
    assert "+ create simulation alpha: 3 simulators of scenario/sim:1" in before.stdout
    applied = simfleet("apply", "--wait", "--timeout", "60")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "converged" in applied.stdout
    after = simfleet("plan", "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "No changes" in after.stdout
    wait_until(lambda: len(fleet.simulators()) == 3, what="the 3 simulators apply started")


def test_a_rollout_interrupted_by_kill9_completes_after_restart(fleet: Fleet) -> None:
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", rollout_spec(fleet, "scenario/sim:1"))
    fleet.start()
    fleet.wait_sim("alpha", done)
    fleet.write("alpha.yaml", rollout_spec(fleet, "scenario/sim:2"))
    fleet.wait_sim("alpha", lambda s: 1 <= s["upToDate"] < 4, timeout=30)
    fleet.kill9()
    assert fleet.slot_violations("alpha", max_pairs=1) == []
    fleet.start()

    def finished() -> bool:
        assert fleet.slot_violations("alpha", max_pairs=1) == []  # sampled throughout
        sim = fleet.sim("alpha")
        return sim is not None and sim["image"] == "scenario/sim:2" and done(sim)

    wait_until(finished, timeout=60, what="the rollout to finish after the restart")
    wait_until(lambda: len(fleet.simulators()) == 4, what="exactly 4 simulators")
    assert fleet.doubled_slots("alpha") == []


def test_simulators_past_max_lifetime_are_recycled_one_step_at_a_time(fleet: Fleet) -> None:
    extra = "  maxLifetime: 4s\n  rollout: {maxSurge: 1, maxUnavailable: 0}\n"
    fleet.write("pool.yaml", fleet.pool(nodes=2, slots=4))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3, extra=extra))
    fleet.start()
    first = {r["id"] for r in fleet.wait_sim("alpha", lambda s: s["ready"] == 3)["simulators"]}
    samples, violations = [], []

    def all_recycled() -> bool:
        sim = fleet.sim("alpha")
        assert sim is not None
        samples.append(sim["ready"])
        violations.extend(fleet.slot_violations("alpha", max_pairs=1))
        ids = {r["id"] for r in sim["simulators"] if r["state"] == "running"}
        return len(ids) == 3 and not ids & first

    wait_until(all_recycled, timeout=40, what="every simulator replaced after maxLifetime")
    assert min(samples) >= 3
    assert violations == []
