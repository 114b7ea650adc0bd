"""Faults, restarts and second controllers never stop, stall or double the fleet.

Each test drives the real daemon (``python -m controller run``) and checks the census of
what really runs — processes found by the test's marker, or the emulator's live tasks —
not only what ``/status`` claims.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.scenarios.conftest import STATE, Fleet, free_port, wait_until

pytestmark = pytest.mark.slow


def assert_never_doubled(fleet: Fleet, name: str, seconds: float) -> None:
    """Sample the census for ``seconds``: no slot ever has two live simulators."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert fleet.doubled_slots(name) == [], fleet.driver.live_per_slot(fleet.marker, name)
        time.sleep(0.05)


def assert_within_rollout_bounds(fleet: Fleet, name: str, seconds: float, pairs: int) -> None:
    """Mid-rollout a slot may hold an old simulator and its replacement, up to ``pairs``
    such slots (maxSurge); never three in a slot, never more pairs."""
    deadline = time.monotonic() + seconds
    while True:
        assert fleet.slot_violations(name, pairs) == []
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def converged(fleet: Fleet, name: str, count: int) -> None:
    fleet.wait_sim(
        name,
        lambda s: (
            s["desired"] == s["ready"] == s["upToDate"] == count and len(s["simulators"]) == count
        ),
        timeout=60,
    )
    census = wait_until(
        lambda: (
            (c := fleet.driver.live_per_slot(fleet.marker, name)) == dict.fromkeys(range(count), 1)
            and c
        ),
        timeout=30,
        what=f"{count} simulators, one per slot",
    )
    assert sum(census.values()) == count


def running_alpha(fleet: Fleet, count: int) -> None:
    """A daemon serving one simulation, ``alpha``, of ``count`` simulators."""
    fleet.write("pool.yaml", fleet.pool())
    fleet.write("alpha.yaml", fleet.simulation("alpha", count))
    fleet.start()
    converged(fleet, "alpha", count)


def test_sigkill_at_random_points_of_scale_ups_and_rollouts_never_doubles(fleet: Fleet) -> None:
    seed = int(os.environ.get("SIMFLEET_TEST_SEED", "7"))
    rng = random.Random(seed)
    fleet.write("pool.yaml", fleet.pool(nodes=3, slots=4))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
    fleet.start()
    converged(fleet, "alpha", 3)
    count, version = 3, 0
    for _ in range(4):
        if rng.random() < 0.5:
            count = rng.choice([c for c in (2, 4, 6, 8) if c != count])
        else:
            version += 1
        fleet.write("alpha.yaml", fleet.simulation("alpha", count, image=f"scenario/sim:{version}"))
        time.sleep(rng.uniform(0.0, 1.5))
        fleet.kill9()
        assert_within_rollout_bounds(fleet, "alpha", 0.0, pairs=2)  # maxSurge 25% of 8
        fleet.start()
        assert_within_rollout_bounds(fleet, "alpha", 0.5, pairs=2)
    converged(fleet, "alpha", count)
    assert_never_doubled(fleet, "alpha", 1.0)


def test_a_lost_state_directory_neither_orphans_nor_doubles(local_fleet: Fleet) -> None:
    fleet = local_fleet
    running_alpha(fleet, 5)
    before = fleet.simulators()
    fleet.kill9()
    shutil.rmtree(fleet.state_dir)
    fleet.start()
    converged(fleet, "alpha", 5)
    assert_never_doubled(fleet, "alpha", 2.0)
    assert fleet.simulators() == before  # the old five were adopted, not restarted


def test_a_second_daemon_on_the_same_state_dir_stands_by_and_touches_nothing(
    local_fleet: Fleet,
) -> None:
    fleet = local_fleet
    running_alpha(fleet, 3)
    port = free_port()
    second = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller",
            "run",
            "--specs",
            str(fleet.specs),
            "--state-dir",
            STATE,
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=fleet.root,
        env={**os.environ, **fleet.driver.env(), **fleet.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def standing_by() -> str | None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
            except urllib.error.HTTPError as error:
                text = str(error.read().decode())
                return text if " led by " in text else None
            except OSError:
                return None
            return None

        text = wait_until(standing_by, timeout=30, what="the second daemon to stand by")
        assert text.startswith("standby: fleet 'default' is led by ")
        assert_never_doubled(fleet, "alpha", 1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=30)
    assert second.returncode == 0
    assert "Traceback" not in output
    assert '"standing_by"' in output or "standing_by" in output
    assert len(fleet.simulators()) == 3  # a standby's stop stops nothing


def test_removing_the_state_dir_under_a_running_daemon_does_not_let_two_act(
    local_fleet: Fleet,
) -> None:
    fleet = local_fleet
    running_alpha(fleet, 3)
    first = fleet.process
    try:  # the first daemon is not the fixture's to stop once a second one runs
        shutil.rmtree(fleet.state_dir)
        # The first daemon notices its lock is gone and stops acting (it says so in status).
        wait_until(
            lambda: (
                "state" in str(fleet.status()).lower() and "lost" in str(fleet.status()).lower()
            ),
            timeout=30,
            what="the first daemon to report its lost state directory",
        )
        fleet.port = free_port()  # the first still holds its own; a neighbour may be taken
        fleet.start()  # a second daemon on the same, now empty, state directory
        fleet.write("alpha.yaml", fleet.simulation("alpha", 4))
        converged(fleet, "alpha", 4)
        assert_never_doubled(fleet, "alpha", 3.0)
    finally:
        if first is not None and first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait(10)


def test_a_read_only_state_directory_for_a_while_heals_by_itself(local_fleet: Fleet) -> None:
    """Root ignores permission bits, so the directory is made immutable (chattr +i)."""
    fleet = local_fleet
    if shutil.which("chattr") is None:
        pytest.fail("chattr (e2fsprogs) is needed to make the state dir unwritable as root")
    running_alpha(fleet, 2)
    local = fleet.state_dir / "local"
    frozen = subprocess.run(["chattr", "+i", str(local)], capture_output=True, check=False)
    if frozen.returncode != 0:
        pytest.skip(f"this filesystem cannot freeze a directory: {frozen.stderr!r}")
    try:
        fleet.write("alpha.yaml", fleet.simulation("alpha", 4))
        wait_until(
            lambda: "state" in (fleet.sim("alpha") or {}).get("message", "").lower(),
            timeout=30,
            what="the storage error in status",
        )
    finally:
        subprocess.run(["chattr", "-i", str(local)], check=True)
    converged(fleet, "alpha", 4)
    assert_never_doubled(fleet, "alpha", 1.0)


def test_sighup_never_leaves_simulators_unsupervised(local_fleet: Fleet) -> None:
    fleet = local_fleet
    running_alpha(fleet, 2)
    assert fleet.process is not None
    fleet.process.send_signal(signal.SIGHUP)
    time.sleep(2.0)
    if fleet.process.poll() is None:  # reloaded: still supervising
        crashed = fleet.crash("alpha", 0)
        fleet.wait_sim("alpha", lambda s: s["restarts"] >= 1, timeout=30)
        assert crashed
    else:  # a clean, logged stop: nothing left running unsupervised
        assert fleet.process.returncode == 0
        assert "sighup" in fleet.log().lower()
        wait_until(lambda: fleet.simulators() == set(), timeout=20, what="simulators to stop")
