"""The process table is the truth: adoption without (or despite) the state file, and a
controller that notices its state directory was taken away.

Regressions (issue 7, item 7): ``kill -9``, ``rm -rf state``, restart gave 10 processes
for 5 slots; a corrupt state file stopped the controller from starting; a controller
whose state directory was removed went on acting beside a second one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.backends import PermanentBackendError
from controller.backends.local import LocalBackend
from controller.planner import (
    AddTasks,
    Desired,
    DesiredSimulation,
    ExitReason,
    SimulatorState,
    StopReason,
    StopTask,
)
from controller.reconcile import run_pass
from controller.spec import PoolSpec, SimulationSpec

from .conftest import (
    BackendFactory,
    alive,
    kill_strays,
    killed_controller_pids,
    new_tasks,
    pool_and_job,
    secret,
    task,
    template,
    wait_for,
    wrappers_of,
)

SIMULATORS = 5

#: A controller in its own process: one pass for DESIRED, then it reports the running
#: simulators' pids and waits to be killed. With "never_write", its state file is never
#: written after open (as if it died between starting them and writing).
CONTROLLER = """
import asyncio, json, sys
from datetime import UTC, datetime
from pathlib import Path
import structlog
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
from controller.backends.local import LocalBackend, _store
from controller.reconcile import run_pass
from tests.backends.local.test_process_table import SIMULATORS, desired

async def main(state_dir, never_write):
    backend = LocalBackend(Path(state_dir))
    await backend.open()
    if never_write:
        async def no_flush(self): pass
        _store.Store.flush = no_flush
    await run_pass(desired(), backend, lambda: datetime.now(UTC))
    while True:
        observed = await backend.observe()
        pids = {t.id: t.pid for t in observed.jobs["sim"].tasks if t.pid}
        if len(pids) == SIMULATORS:
            break
        await asyncio.sleep(0.02)
    print(json.dumps(pids), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], sys.argv[2] == "1"))
"""


def desired(simulators: int = SIMULATORS) -> Desired:
    """One pool of 8 slots and simulation ``sim`` running ``sleep 300``."""
    pool = PoolSpec.model_validate(
        {"vmSize": "local", "taskSlotsPerNode": 8, "nodes": {"dedicated": 1}}
    )
    sim = SimulationSpec.model_validate(
        {"pool": "sims", "simulators": simulators, "image": "local/x", "command": "sleep 300"}
    )
    return Desired(pools={"sims": pool}, simulations={"sim": DesiredSimulation("sim", sim)})


async def killed_controller(state_dir: Path, *, never_write: bool = False) -> dict[str, int]:
    """Run :data:`CONTROLLER`, then ``kill -9`` it; the task ids' simulator pids."""
    return await killed_controller_pids(CONTROLLER, str(state_dir), "1" if never_write else "0")


async def one_pass(backend: LocalBackend) -> None:
    await run_pass(desired(), backend, lambda: datetime.now(UTC))


async def running_pids(backend: LocalBackend) -> dict[str, int | None]:
    observed = await backend.observe()
    return {t.id: t.pid for t in observed.jobs["sim"].tasks if t.state is SimulatorState.RUNNING}


class TestAdoptionFromTheProcessTable:
    @pytest.mark.parametrize(
        "lose",
        [
            pytest.param("rm -rf", id="state-dir-removed"),
            pytest.param("never written", id="killed-before-writing"),
        ],
    )
    async def test_simulators_the_state_does_not_know_are_adopted_not_doubled(
        self, state_dir: Path, open_backend: BackendFactory, lose: str
    ) -> None:
        pids = await killed_controller(state_dir, never_write=lose == "never written")
        assert len(pids) == SIMULATORS
        if lose == "rm -rf":
            shutil.rmtree(state_dir)

        backend = await open_backend()
        assert await running_pids(backend) == pids  # the very processes, as running tasks
        await one_pass(backend)
        await one_pass(backend)
        assert await running_pids(backend) == pids
        assert sorted(wrappers_of(state_dir)) == sorted(
            os.getpgid(p) for p in pids.values()
        )  # exactly 5, never 10
        observed = await backend.observe()
        assert observed.jobs["sim"].pool == "sims"  # the job came back on its pool
        assert sorted(t.slot for t in observed.jobs["sim"].tasks) == list(range(SIMULATORS))

    async def test_an_adopted_simulator_that_ends_is_replaced_once(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pids = await killed_controller(state_dir)
        shutil.rmtree(state_dir)
        backend = await open_backend()
        victim = next(iter(pids))
        os.kill(pids[victim], signal.SIGKILL)

        async def replaced() -> bool:
            await one_pass(backend)
            now = await running_pids(backend)
            return victim not in now and len(now) == SIMULATORS

        await wait_for(replaced, timeout=30, what="the slot to be filled again")
        assert len(wrappers_of(state_dir)) == SIMULATORS

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"[]", id="a-list"),
            pytest.param(b'{"createdAt": null}', id="created-at-null"),
            pytest.param(b'{"version": 1, "seq": 1, "pools": [], "\xff\xfe', id="invalid-utf8"),
            pytest.param(b'{"version": 1, "seq": 3, "pools": [{"name": "sims"', id="truncated"),
        ],
    )
    async def test_a_corrupt_state_file_is_one_logged_error_and_nothing_is_lost(
        self, state_dir: Path, open_backend: BackendFactory, content: bytes
    ) -> None:
        pids = await killed_controller(state_dir)
        (state_dir / "local" / "state.json").write_bytes(content)

        with capture_logs() as logs:
            backend = await open_backend()
        errors = [e for e in logs if e["log_level"] == "error"]
        assert [e["event"] for e in errors] == ["state_file_unreadable"]
        assert all("exc_info" not in e for e in logs)
        assert (state_dir / "local" / "state.json.corrupt").read_bytes() == content
        assert await running_pids(backend) == pids
        await one_pass(backend)
        assert await running_pids(backend) == pids
        assert len(wrappers_of(state_dir)) == SIMULATORS

    async def test_a_simulator_whose_id_is_not_simfleets_is_stopped(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        first = await open_backend()
        await pool_and_job(first)
        await first.execute(AddTasks("sim", template("sleep 300"), new_tasks("stray")))

        async def started() -> bool:
            return (await task(first, "stray")).pid is not None

        await wait_for(started)
        pid = (await task(first, "stray")).pid
        assert pid is not None
        await first.close(stop_simulators=False)
        shutil.rmtree(state_dir)

        with capture_logs() as logs:
            second = await open_backend()
        assert "stopping_unknown_simulator" in [e["event"] for e in logs]
        await wait_for(lambda: not alive(pid), what="the unknown simulator to be stopped")
        await wait_for(lambda: wrappers_of(state_dir) == [], what="its wrapper to end")
        assert (await second.observe()).jobs == {}


async def one_running_one_waiting(backend: LocalBackend) -> int:
    """One slot: simulator "a" runs (its pid is returned), "b" waits for the slot."""
    await pool_and_job(backend, slots=1)
    await backend.execute(AddTasks("sim", template("sleep 300"), new_tasks("a", "b")))

    async def a_runs() -> bool:
        return (await task(backend, "a")).pid is not None

    await wait_for(a_runs)
    pid = (await task(backend, "a")).pid
    assert pid is not None
    return pid


class TestLostStateDirectory:
    async def test_a_removed_state_dir_stops_the_controller_acting(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        pid = await one_running_one_waiting(backend)
        with capture_logs() as logs:
            shutil.rmtree(state_dir)
            with pytest.raises(PermanentBackendError) as error:
                await backend.observe()
        assert error.value.code == "StateDirLost"
        assert "removed or replaced" in str(error.value)
        assert [e["event"] for e in logs] == ["state_dir_lost"]
        for _ in range(2):  # it never acts again, whatever it is asked
            with pytest.raises(PermanentBackendError, match="removed or replaced"):
                await backend.execute(StopTask("sim", "a", 0, StopReason.SCALE_DOWN))
            with pytest.raises(PermanentBackendError, match="removed or replaced"):
                await backend.observe()
        os.kill(pid, signal.SIGKILL)  # a slot frees up: a working backend would start "b"
        await wait_for(lambda: wrappers_of(state_dir) == [], what="a's wrapper to end")
        await asyncio.sleep(0.5)
        assert wrappers_of(state_dir) == []  # "b" was never started
        assert not state_dir.exists()  # and it wrote nothing
        await backend.close(stop_simulators=True)
        assert not state_dir.exists()

    async def test_an_idle_controller_notices_by_itself_and_starts_nothing_after(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend()
        pid = await one_running_one_waiting(backend)
        woken = asyncio.Event()
        backend.on_change(woken.set)
        await asyncio.sleep(0.5)  # what the start changed is written
        woken.clear()

        shutil.rmtree(state_dir)
        os.kill(pid, signal.SIGKILL)  # a slot frees up, and nobody calls observe
        await asyncio.wait_for(woken.wait(), timeout=10)  # the daemon is told
        await wait_for(lambda: wrappers_of(state_dir) == [], what="a's wrapper to end")
        await asyncio.sleep(0.5)
        assert wrappers_of(state_dir) == []  # "b" was never started
        with pytest.raises(PermanentBackendError, match="state directory lost"):
            await backend.observe()

    async def test_a_second_controller_on_a_recreated_dir_takes_over_alone(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        first = await open_backend()
        await pool_and_job(first)
        await first.execute(AddTasks("sim", template("sleep 300"), new_tasks("sim-s0-rab-a0")))

        async def started() -> bool:
            return (await task(first, "sim-s0-rab-a0")).pid is not None

        await wait_for(started)
        pid = (await task(first, "sim-s0-rab-a0")).pid
        shutil.rmtree(state_dir)

        second = await open_backend()  # the lock is new: nothing stops it
        adopted = await task(second, "sim-s0-rab-a0")
        assert (adopted.state, adopted.pid) == (SimulatorState.RUNNING, pid)
        with pytest.raises(PermanentBackendError) as error:
            await first.execute(StopTask("sim", "sim-s0-rab-a0", 0, StopReason.SCALE_DOWN))
        assert error.value.code == "StateDirLost"
        await first.close(stop_simulators=True)  # a lost controller stops nothing
        assert pid is not None
        assert alive(pid)
        assert (await task(second, "sim-s0-rab-a0")).state is SimulatorState.RUNNING


async def test_a_relative_state_dir_is_resolved_once_when_the_backend_is_made(
    in_tmp: Path,
) -> None:
    backend = LocalBackend(Path("state"), stop_grace=1)
    (in_tmp / "elsewhere").mkdir()
    os.chdir(in_tmp / "elsewhere")
    await backend.open()
    try:
        await pool_and_job(backend)
        await backend.execute(AddTasks("sim", template("exit 3"), new_tasks("a")))

        async def exited() -> bool:
            return (await task(backend, "a")).state is SimulatorState.EXITED

        await wait_for(exited)
        info = (await task(backend, "a")).exit
        assert info is not None
        assert (info.reason, info.exit_code) == (ExitReason.FAILED, 3)
        assert (in_tmp / "state" / "local" / "lock").exists()
        assert not (in_tmp / "elsewhere" / "state").exists()
    finally:
        await backend.close(stop_simulators=True)
        kill_strays(in_tmp / "state")


TASK = "sim-s0-r0123456789-a0"


async def test_an_adopted_simulator_without_a_record_keeps_no_tail(
    state_dir: Path, open_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its template (and so which variables are secret) is unknown: its stderr may hold a
    secret nothing can mask, so the tail is withheld (the soak found it in state.json)."""
    value = "soak-like-secret-value-123"
    monkeypatch.setenv("SIMFLEET_TEST_TOKEN", value)
    first = await open_backend()
    await pool_and_job(first)
    prints = ("sh", "-c", 'echo "token $TOKEN" >&2; trap "exit 3" TERM; sleep 300 & wait')
    tmpl = template(
        prints, secrets=(secret("TOKEN", "SIMFLEET_TEST_TOKEN", "soak-like-secret-value-123"),)
    )
    await first.execute(AddTasks("sim", tmpl, new_tasks(TASK)))
    await wait_for((state_dir / "local/jobs/sim/sim-s0-r0123456789-a0/pid").exists)
    await first.close(stop_simulators=False)
    (state_dir / "local" / "state.json").unlink()  # as if killed before the state was written

    second = await open_backend()
    await second.execute(StopTask("sim", TASK, 0, StopReason.SCALE_DOWN))

    async def ended() -> bool:
        return (await task(second, TASK)).state is SimulatorState.EXITED

    await wait_for(ended)
    info = (await task(second, TASK)).exit
    assert info is not None
    assert info.stderr_tail.startswith("(stderr tail withheld")
    await second.observe()
    assert value not in (state_dir / "local" / "state.json").read_text()
