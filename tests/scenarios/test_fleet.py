"""Scenarios of issue 2, run against the real daemon and real simulator processes.

Each test reads like the behaviour it proves. Timeouts are generous; speed figures come
from ``make bench``, not from these tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from .conftest import REPO, Fleet, wait_until


class TestConverging:
    def test_a_fleet_comes_up_with_one_process_per_slot(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        assert [s["slot"] for s in sim["simulators"]] == [0, 1, 2]
        pids = {s["pid"] for s in sim["simulators"]}
        wait_until(lambda: set(fleet.simulators()) == pids, what="3 sleep processes")
        for pid in pids:  # each simulator leads its own process group (via its wrapper)
            assert os.getpgid(pid) != os.getpgid(os.getpid())

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
        fleet.wait_sim("alpha", lambda s: s["ready"] == 5, timeout=10)
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        sim = fleet.wait_sim(
            "alpha", lambda s: s["ready"] == 2 and len(s["simulators"]) == 2, timeout=15
        )
        assert [s["slot"] for s in sim["simulators"]] == [0, 1]  # highest slots went first
        wait_until(lambda: len(fleet.simulators()) == 2, what="2 processes after scale-down")

    def test_a_syntax_error_leaves_other_simulations_untouched(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
        fleet.write("beta.yaml", fleet.simulation("beta", 1))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        beta = fleet.wait_sim("beta", lambda s: s["ready"] == 1)
        beta_pids = {s["pid"] for s in beta["simulators"]}

        fleet.write("beta.yaml", fleet.simulation("beta", 3) + "  env: {broken: [\n")
        errors = wait_until(lambda: fleet.status()["errors"], what="the spec error")
        assert errors[0]["file"].endswith("beta.yaml")
        assert errors[0]["line"] >= 8
        # other files go on being reconciled, the broken one keeps its last good version
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        beta = fleet.sim("beta")
        assert beta is not None
        assert {s["pid"] for s in beta["simulators"]} == beta_pids
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
        wait_until(lambda: len(fleet.simulators()) == 2, what="only alpha's 2 processes")

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
        sim = fleet.wait_sim("alpha", lambda s: s["ready"] == 2)
        victim = sim["simulators"][1]
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)

        def slot1(s: dict[str, object]) -> dict[str, object]:
            return s["simulators"][1]  # type: ignore[index,no-any-return]

        waiting = fleet.wait_sim("alpha", lambda s: slot1(s)["state"] == "waiting", timeout=10)
        assert waiting["simulators"][1]["lastExit"]["exitCode"] == 137
        back = fleet.wait_sim(
            "alpha",
            lambda s: slot1(s)["state"] == "running" and slot1(s)["restarts"] == 1,
            timeout=15,
        )
        assert time.monotonic() - killed_at >= 1.0  # initial back-off in the spec: 1s
        assert back["restarts"] == 1
        assert back["simulators"][1]["pid"] != victim["pid"]


class TestControllerLifecycle:
    def test_kill9_mid_change_then_restart_ends_with_exactly_the_desired_processes(
        self, fleet: Fleet
    ) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        before = fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        fleet.write("alpha.yaml", fleet.simulation("alpha", 6))
        time.sleep(0.05)  # let the change start; the point is to die in the middle of it
        fleet.kill9()
        fleet.start()
        after = fleet.wait_sim("alpha", lambda s: s["ready"] == 6, timeout=20)
        pids = {s["pid"] for s in after["simulators"]}
        assert {s["pid"] for s in before["simulators"]} <= pids  # adopted, not restarted
        wait_until(lambda: set(fleet.simulators()) == pids, what="exactly 6 processes")
        time.sleep(2.5)  # one resync later, still exactly the same set
        assert set(fleet.simulators()) == pids

    def test_sigterm_stops_every_simulator_within_the_grace_period(self, fleet: Fleet) -> None:
        fleet.write("pool.yaml", fleet.pool())
        fleet.write("alpha.yaml", fleet.simulation("alpha", 3))
        fleet.start()
        fleet.wait_sim("alpha", lambda s: s["ready"] == 3)
        started = time.monotonic()
        assert fleet.terminate(timeout=30) == 0
        assert time.monotonic() - started < 15
        assert fleet.simulators() == {}


class TestSecrets:
    def test_a_secret_reaches_the_simulator_and_nothing_else(self, fleet: Fleet) -> None:
        secret = "s3cr3t-" + fleet.marker[:8]
        fleet.env["SCENARIO_API_KEY"] = secret
        (fleet.root / "expected").write_text(secret)
        # The simulator runs only if it received the value (compared with a file the test
        # wrote, so the value never appears in the spec or a command line).
        command = '["sh", "-c", "[ \\"$API_KEY\\" = \\"$(cat ../expected)\\" ] && exec sleep 600"]'
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


class TestExample:
    def test_the_example_specs_run_cartpole_and_logs_show_it(self, fleet: Fleet) -> None:
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

        output = wait_until(lambda: "episode=" in logs() and logs(), timeout=30)
        assert "cartpole simulator slot=1" in output or "episode=" in output
