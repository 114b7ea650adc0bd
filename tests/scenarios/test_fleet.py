"""Scenarios of issues 2 and 3, run against the real daemon on every backend.

``fleet`` is parametrized over ``local`` (real processes) and ``azure`` (the real SDK over
HTTP to a standalone Batch emulator). Each test reads like the behaviour it proves.
Timeouts are generous; speed figures come from ``make bench``, not from these tests.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .conftest import Fleet, wait_until


class TestConverging:
    def test_a_fleet_comes_up_with_one_simulator_per_slot(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        assert [s["slot"] for s in sim["simulators"]] == [0, 1, 2]
        wait_until(lambda: fleet.simulators() == fleet.running("alpha"), what="3 simulators")
        assert len(fleet.simulators()) == 3

    def test_pool_capacity_holds_the_rest_pending(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool(nodes=1, slots=2))
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        assert sorted(s["state"] for s in sim["simulators"]) == ["pending", "running", "running"]
        assert "1 waiting for a free slot" in sim["message"]
        assert len(fleet.simulators()) == 2


class TestEditing:
    def test_scaling_up_and_down_follows_the_file(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        fleet.write("alpha.yaml", fleet.simulation("alpha", 5))
        fleet.wait_sim("alpha", lambda s: s["ready"] == 5, timeout=15)
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        sim = fleet.wait_sim(
            "alpha", lambda s: s["ready"] == 2 and len(s["simulators"]) == 2, timeout=15
        )
        assert [s["slot"] for s in sim["simulators"]] == [0, 1]  # highest slots went first
        wait_until(lambda: len(fleet.simulators()) == 2, what="2 simulators after scale-down")

    def test_a_syntax_error_leaves_other_simulations_untouched(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        fleet.write("beta.yaml", fleet.simulation("beta", 1))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        fleet.wait_sim("beta", lambda s: s["ready"] == 1)
        beta = fleet.running("beta")

        fleet.write("beta.yaml", fleet.simulation("beta", 3) + "  env: {broken: [\n")
        errors = wait_until(lambda: fleet.status()["errors"], what="the spec error")
        assert errors[0]["file"].endswith("beta.yaml")
        assert errors[0]["line"] >= 8
        # other files go on being reconciled; the broken one keeps its last good version
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3, timeout=15)
        assert fleet.running("beta") == beta
        location = f"beta.yaml:{errors[0]['line']}:{errors[0]['column']}"
        assert location in fleet.log()

        fleet.write("beta.yaml", fleet.simulation("beta", 1))
        wait_until(lambda: fleet.status()["errors"] == [], what="the error to clear")

    def test_deleting_a_file_removes_its_simulators(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        fleet.write("beta.yaml", fleet.simulation("beta", 2))
        fleet.start()
        fleet.wait_sim("beta", lambda s: s["ready"] == 2)
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        (fleet.specs / "beta.yaml").unlink()
        wait_until(lambda: fleet.sim("beta") is None, what="beta to be pruned")
        wait_until(lambda: len(fleet.simulators()) == 2, what="only alpha's 2 simulators")

    def test_an_empty_directory_prunes_nothing(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        (fleet.specs / "alpha.yaml").unlink()
        (fleet.specs / "pool.yaml").unlink()
        sim = fleet.wait_sim("alpha", lambda s: "not pruned" in s["message"])
        assert "empty" in sim["message"]
        assert len(fleet.simulators()) == 2


class TestRestarting:
    def test_a_killed_simulator_comes_back_after_its_backoff(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        killed_at = time.monotonic()
        victim = fleet.crash("alpha", 1)

        def slot1(s: dict[str, object]) -> dict[str, object]:
            return s["simulators"][1]  # type: ignore[index,no-any-return]

        if fleet.driver.name == "local":  # exits are pushed: the back-off is visible
            waiting = fleet.wait_sim("alpha", lambda s: slot1(s)["state"] == "waiting")
            assert waiting["simulators"][1]["lastExit"]["exitCode"] == 137
        back = fleet.wait_sim(
            "alpha",
            lambda s: slot1(s)["state"] == "running" and slot1(s)["restarts"] == 1,
            timeout=15,
        )
        assert back["simulators"][1]["lastExit"]["exitCode"] == 137
        assert time.monotonic() - killed_at >= 1.0  # initial back-off in the spec: 1s
        assert back["restarts"] == 1
        assert back["simulators"][1]["id"] != victim["id"]  # a new attempt, a new task id


class TestControllerLifecycle:
    def test_kill9_mid_change_then_restart_ends_with_exactly_the_desired_simulators(
        self, fleet: Fleet
    ) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        before = fleet.running("alpha")
        fleet.write("alpha.yaml", fleet.simulation("alpha", 6))
        time.sleep(0.05)  # let the change start; the point is to die in the middle of it
        fleet.kill9()
        assert fleet.doubled_slots("alpha") == []
        fleet.start()

        def recovered() -> dict[str, Any] | None:
            assert fleet.doubled_slots("alpha") == []  # sampled throughout the recovery
            sim = fleet.sim("alpha")
            return sim if sim is not None and sim["ready"] == 6 else None

        after = wait_until(recovered, timeout=20, what="6 ready, never a slot doubled")
        running = fleet.running("alpha")
        assert before <= running  # adopted, not restarted
        assert sorted(s["slot"] for s in after["simulators"]) == list(range(6))
        wait_until(lambda: fleet.simulators() == running, what="exactly 6 simulators")
        time.sleep(2.5)  # one resync later, still exactly the same set
        assert fleet.simulators() == running
        census = fleet.driver.live_per_slot(fleet.marker, "alpha")
        assert census == dict.fromkeys(range(6), 1)  # the census sees all six, one per slot

    def test_sigterm_stops_the_controller_cleanly(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        running = fleet.simulators()
        started = time.monotonic()
        assert fleet.terminate(timeout=30) == 0
        assert time.monotonic() - started < 15
        if fleet.driver.name == "local":
            assert fleet.simulators() == set()  # this machine's simulators stop with it
        else:
            assert fleet.simulators() == running  # Batch keeps running without us


class TestSecrets:
    def test_a_secret_reaches_the_simulator_and_nothing_else(self, fleet: Fleet) -> None:
        secret = "s3cr3t-" + fleet.marker[:8]
        fleet.env["SCENARIO_API_KEY"] = secret
        (fleet.root / "expected").write_text(secret)
        # The simulator runs only if it received the value (compared with a file the test
        # wrote, so the value never appears in the spec or a command line).
        command = """['sh', '-c', '[ "$API_KEY" = "$(cat ../expected)" ] && exec sleep 600']"""
        fleet.write("pool.yaml", fleet.pool())
        fleet.write(
            "alpha.yaml",
            fleet.simulation(
                "alpha",
                2,
                command=command,
                extra="  secretEnv:\n    API_KEY: {fromEnv: SCENARIO_API_KEY}\n",
            ),
        )
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2 and s["restarts"] == 0)
        wait_until(lambda: len(fleet.simulators()) == 2, what="2 simulators with the secret")
        assert secret not in fleet.raw_status()
        assert secret not in fleet.log()
        for path in fleet.state_dir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
        fleet.terminate()
        assert secret not in fleet.log()
        assert os.environ.get("SCENARIO_API_KEY") != secret  # only the daemon had it
