"""``simfleet delete`` on both backends: the real command against real simulators (local
processes, or the Batch emulator through the real SDK).

It removes exactly what its fleet owns — another fleet's pool and job and a pool simfleet
did not create survive it — asks before it deletes (and refuses without a terminal unless
``--yes``), rejects a wrong name before touching anything, keeps a pool something else
still uses, never deletes beside a running daemon, and with ``--wait`` ends once Batch
has really finished deleting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EmulatorDriver, Fleet, wait_until


def simfleet(fleet: Fleet, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a script runs it: stdin is not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "controller", *args, "--backend", fleet.driver.name],
        cwd=fleet.root,
        env={**os.environ, **fleet.driver.env(), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def applied(fleet: Fleet, *args: str) -> None:
    done = simfleet(fleet, "apply", "--wait", "--timeout", "120", *args)
    assert done.returncode == 0, done.stdout + done.stderr


def two_simulations(fleet: Fleet) -> None:
    """Pool ``sims`` with ``alpha`` (2 simulators) and ``beta`` (1) on it, converged."""
    fleet.write("pool.yaml", fleet.pool("sims", nodes=1))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
    fleet.write("beta.yaml", fleet.simulation("beta", 1))
    applied(fleet)
    wait_until(lambda: len(fleet.simulators()) == 3, timeout=60, what="3 simulators")


def objects(fleet: Fleet) -> tuple[set[str], set[str]]:
    """The pools and jobs the backend holds: the emulator's, or the local state file's."""
    if isinstance(fleet.driver, EmulatorDriver):
        state = fleet.driver.state()
        return set(state["pools"]), set(state["jobs"])
    state = json.loads((fleet.state_dir / "local" / "state.json").read_text())
    return {p["name"] for p in state["pools"]}, {j["name"] for j in state["jobs"]}


def foreign_objects(driver: EmulatorDriver) -> None:
    """A pool simfleet did not create (no marks at all), made through the SDK."""
    from azure.batch.aio import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from controller.backends.azure import _mapping
    from controller.planner import CreatePool
    from tests.batch_emulator._config import DEFAULT_ACCOUNT, DEFAULT_KEY
    from tests.planner.conftest import pool_spec

    async def create() -> None:
        made = _mapping.pool_create(CreatePool("raw", pool_spec(), 0, 0), "default")
        made.metadata = None
        credential = AzureNamedKeyCredential(DEFAULT_ACCOUNT, DEFAULT_KEY)
        async with BatchClient(driver.url, credential) as client:
            await client.create_pool(made)

    asyncio.run(create())


def test_delete_tears_down_the_whole_fleet_and_only_its_own(fleet: Fleet) -> None:
    two_simulations(fleet)
    others: set[str] = set()
    if isinstance(fleet.driver, EmulatorDriver):
        # another fleet's pool and job, and a pool nobody marked, on the same account
        other = fleet.root / "other"
        other.mkdir()
        (other / "pool.yaml").write_text(fleet.pool("their-pool", nodes=1))
        (other / "sim.yaml").write_text(fleet.simulation("theirs", 1, pool="their-pool"))
        applied(fleet, "--fleet", "other", "--specs", str(other), "--state-dir", ".other")
        foreign_objects(fleet.driver)
        others = {"their-pool", "raw", "theirs"}
    pools, jobs = objects(fleet)
    assert {"sims", "alpha", "beta"} <= pools | jobs

    done = simfleet(fleet, "delete", "--yes", "--wait", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"delete on {fleet.driver.name}:\n{done.stdout}{done.stderr}")
    assert "simulation alpha (2 simulators)" in done.stdout
    assert "simulation beta (1 simulator)" in done.stdout
    assert "pool sims (1 node)" in done.stdout
    assert "gone: 2 simulations with 3 simulators, 1 pool" in done.stdout
    assert "Traceback" not in done.stderr

    pools, jobs = objects(fleet)
    assert not {"sims", "alpha", "beta"} & (pools | jobs)  # really gone once --wait ended
    if others:
        assert others <= pools | jobs  # nothing of anyone else's was touched
        assert {"simfleet-lease-default", "simfleet-lease-other"} <= jobs  # released, kept
        assert fleet.driver.tasks()["theirs"]
    else:
        wait_until(lambda: not fleet.simulators(), timeout=30, what="no simulator process")
    again = simfleet(fleet, "delete", "--yes")
    assert again.returncode == 0, again.stderr
    assert "nothing to delete in fleet 'default'" in again.stdout


def test_delete_by_name_refuses_wrong_names_and_keeps_a_pool_in_use(fleet: Fleet) -> None:
    two_simulations(fleet)
    before = fleet.simulators()

    unknown = simfleet(fleet, "delete", "nope", "alpha", "--yes")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == (
        "Error: no simulation named nope in fleet 'default'; nothing deleted"
    )
    unasked = simfleet(fleet, "delete", "alpha")  # stdin is no terminal, no --yes
    assert unasked.returncode == 1
    assert "simulation alpha (2 simulators)" in unasked.stdout  # what it would delete
    assert "pass --yes" in unasked.stderr
    assert fleet.simulators() == before
    assert {"alpha", "beta"} <= objects(fleet)[1]

    (fleet.specs / "alpha.yaml").unlink()  # the spec goes too, or apply would bring it back
    done = simfleet(fleet, "delete", "ALPHA", "--yes", "--wait", "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delete simulation alpha and its simulators" in done.stdout
    assert "kept: pool sims is still used by simulation beta; not deleted" in done.stderr
    assert "gone: 1 simulation with 2 simulators, 0 pools" in done.stdout
    pools, jobs = objects(fleet)
    assert "alpha" not in jobs
    assert "beta" in jobs
    assert "sims" in pools
    wait_until(lambda: len(fleet.simulators()) == 1, timeout=30, what="beta's simulator alone")

    # while a spec file fails to load, it may name any pool: the pool is kept
    fleet.write("broken.yaml", "kind: [\n")
    held = simfleet(fleet, "delete", "beta")  # no --yes: it lists, then refuses
    assert held.returncode == 1
    assert (
        "kept: pool sims may be named in specs/broken.yaml, which failed to load; not deleted"
        in held.stderr
    )
    assert "pool sims" not in held.stdout
    (fleet.specs / "broken.yaml").unlink()

    # the last simulation on the pool: the pool goes with it, unless the specs name it
    named = simfleet(fleet, "delete", "beta", "--yes", "--wait", "--timeout", "120")
    assert named.returncode == 0, named.stdout + named.stderr
    assert "note: simulation beta is still defined in specs/beta.yaml" in named.stderr
    assert "pool sims (1 node)" in named.stdout
    pools, jobs = objects(fleet)
    assert "sims" not in pools
    assert not {"alpha", "beta"} & jobs


def test_delete_beside_a_running_daemon_deletes_nothing(fleet: Fleet) -> None:
    fleet.write("pool.yaml", fleet.pool("sims", nodes=1))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 2))
    fleet.start()
    fleet.wait_sim("alpha", lambda s: s["ready"] == 2, timeout=60)
    before = fleet.simulators()
    done = simfleet(fleet, "delete", "--yes")
    assert done.returncode == 1
    assert "fleet 'default' is led by" in done.stderr
    assert "delete changed nothing" in done.stderr
    assert "Traceback" not in done.stderr
    assert fleet.simulators() == before
    assert fleet.sim("alpha") is not None


@pytest.mark.parametrize("answer", ["n", "y", "Ctrl-C"])
def test_delete_asks_on_a_terminal(local_fleet: Fleet, answer: str) -> None:
    """On a terminal it lists what it deletes and asks; only "y" deletes, and Ctrl-C at
    the question ends the command at once (nothing deleted, the lease released)."""
    import pty

    fleet = local_fleet
    fleet.write("pool.yaml", fleet.pool("sims", nodes=1))
    fleet.write("alpha.yaml", fleet.simulation("alpha", 1))
    applied(fleet)
    primary, secondary = pty.openpty()
    with os.fdopen(primary, "rb", buffering=0) as terminal:
        process = subprocess.Popen(
            [sys.executable, "-m", "controller", "delete", "--wait"],
            cwd=fleet.root,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
        )
        os.close(secondary)
        seen = b""
        while b"Delete these?" not in seen:
            chunk = terminal.read(1024)
            assert chunk, seen
            seen += chunk
        if answer == "Ctrl-C":
            process.send_signal(signal.SIGINT)
            assert process.wait(120) == 1
        else:
            os.write(primary, f"{answer}\n".encode())
            assert process.wait(120) == 0
        with contextlib.suppress(OSError):  # EIO: the other end is closed, all read
            while chunk := terminal.read(4096):
                seen += chunk
    assert b"simulation alpha (1 simulator)" in seen
    jobs = objects(fleet)[1]
    if answer == "y":
        assert b"gone: 1 simulation with 1 simulator, 1 pool" in seen
        assert "alpha" not in jobs
    else:
        assert b"nothing deleted" in seen or b"Aborted" in seen
        assert "alpha" in jobs
        assert len(fleet.simulators()) == 1
        assert simfleet(fleet, "delete", "--yes").returncode == 0  # the lease is free


def test_delete_waits_out_a_retry_after_and_sends_the_rest_again(tmp_path: Path) -> None:
    """Batch throttles the first deletion: the executor stops sending (as in any pass),
    and ``delete`` sends what is left once the Retry-After has passed."""
    driver = EmulatorDriver(tmp_path, "--request-log")
    fleet = Fleet(root=tmp_path, driver=driver)
    fleet.specs.mkdir()
    try:
        two_simulations(fleet)
        driver.control(
            "POST",
            "faults",
            {"fault": "throttle", "retryAfter": 2, "times": 1, "operations": ["Jobs_DeleteJob"]},
        )
        done = simfleet(fleet, "delete", "--yes", "--wait", "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "backend busy; retrying" in done.stderr
        assert "gone: 2 simulations with 3 simulators, 1 pool" in done.stdout
        pools, jobs = objects(fleet)
        assert "sims" not in pools
        assert not {"alpha", "beta"} & jobs
        deletions = [
            e for e in driver.requests() if e.operation in ("Jobs_DeleteJob", "Pools_DeletePool")
        ]
        assert len(deletions) == 4, deletions  # the throttled one, then each object once
    finally:
        fleet.cleanup()


def test_local_delete_always_waits_so_nothing_is_left_half_deleted(local_fleet: Fleet) -> None:
    """Locally no service finishes a deletion after the command: without --wait it still
    ends with the processes gone and the state directory empty of the fleet's objects."""
    fleet = local_fleet
    two_simulations(fleet)
    done = simfleet(fleet, "delete", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gone: 2 simulations with 3 simulators, 1 pool" in done.stdout
    assert objects(fleet) == (set(), set())
    assert fleet.simulators() == set()
