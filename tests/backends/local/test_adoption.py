"""Controller restarts: adoption after ``kill -9``, the lock, read-only use, and close."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from controller.backends import OutputStream, PermanentBackendError
from controller.backends.local import LocalBackend
from controller.planner import ExitReason, SimulatorState, StopReason, StopTask

from .conftest import (
    BackendFactory,
    add,
    alive,
    comm,
    group_members,
    killed_controller_pids,
    pool_and_job,
    task,
    wait_for,
    wrappers_of,
)
from .test_tasks import IGNORES_SIGTERM, exited, printed, running

#: A controller in its own process: opens the backend, adds tasks, reports the running
#: tasks' pids on stdout, then waits to be killed.
CONTROLLER = """
import asyncio, json, sys
from datetime import timedelta
from pathlib import Path
from controller.backends.local import LocalBackend
from controller.planner import AddTasks, CreateJob, CreatePool, NewTask, TaskTemplate
from controller.spec import NodeCounts, PoolSpec

async def main(state_dir, config):
    backend = LocalBackend(Path(state_dir))
    await backend.open()
    slots = config["slots"]
    spec = PoolSpec(vm_size="local", task_slots_per_node=slots, nodes=NodeCounts(dedicated=1))
    await backend.execute(CreatePool("sims", spec, 1, 0))
    await backend.execute(CreateJob("sim", "sims"))
    for slot, (task_id, command) in enumerate(config["tasks"]):
        template = TaskTemplate("local/test:1", tuple(command), (), (), "", timedelta(days=1))
        new = (NewTask(task_id, slot, "r1", 0),)
        await backend.execute(AddTasks("sim", template, new, config["workdir"]))
    while True:
        observed = await backend.observe()
        pids = {t.id: t.pid for t in observed.jobs["sim"].tasks if t.pid}
        if len(pids) == config["running"]:
            break
        await asyncio.sleep(0.02)
    print(json.dumps(pids), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""

SLEEP = ["sleep", "300"]


async def killed_controller(
    state_dir: Path,
    tasks: list[tuple[str, list[str]]],
    *,
    slots: int = 4,
    running: int | None = None,
    workdir: Path | None = None,
) -> dict[str, int]:
    """Run :data:`CONTROLLER` in another process, then ``kill -9`` it; the tasks' pids."""
    config = {
        "tasks": tasks,
        "slots": slots,
        "running": len(tasks) if running is None else running,
        "workdir": None if workdir is None else str(workdir),
    }
    return await killed_controller_pids(CONTROLLER, str(state_dir), json.dumps(config))


class TestAdoptionAfterKill9:
    async def test_a_new_controller_adopts_the_running_simulators_and_starts_none(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pids = await killed_controller(state_dir, [("a", SLEEP), ("b", SLEEP)])
        assert len(wrappers_of(state_dir)) == 2

        backend = await open_backend()
        observed = await backend.observe()
        assert {t.id: (t.state, t.pid) for t in observed.jobs["sim"].tasks} == {
            "a": (SimulatorState.RUNNING, pids["a"]),
            "b": (SimulatorState.RUNNING, pids["b"]),
        }
        assert len(wrappers_of(state_dir)) == 2  # nothing started twice
        for pid in pids.values():
            members = group_members(os.getpgid(pid))
            assert [p for p in members if comm(p) == "sleep"] == [pid]  # one simulator each

        os.kill(pids["a"], signal.SIGKILL)
        await wait_for(lambda: exited(backend, "a"))
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert (exit_info.reason, exit_info.exit_code) == (ExitReason.FAILED, 137)
        assert (await task(backend, "b")).state is SimulatorState.RUNNING

    async def test_a_simulator_that_exited_meanwhile_is_reported_with_its_code(
        self, state_dir: Path, tmp_path: Path, open_backend: BackendFactory
    ) -> None:
        workdir = tmp_path / "wd"
        workdir.mkdir()
        # A child that keeps its output open holds the wrapper draining after the code is
        # written: until the wrapper is gone, the simulator still counts as running.
        waits = ["sh", "-c", "while [ ! -e go ]; do sleep 0.02; done; sleep 0.5 & exit 5"]
        await killed_controller(state_dir, [("a", waits)], workdir=workdir)
        (workdir / "go").touch()
        exit_file = state_dir / "local" / "jobs" / "sim" / "a" / "exit"
        await wait_for(exit_file.exists, what="the simulator to exit")
        await wait_for(lambda: not wrappers_of(state_dir), what="its wrapper to end")

        backend = await open_backend()
        observed = await task(backend, "a")
        assert observed.state is SimulatorState.EXITED
        assert observed.exit is not None
        assert (observed.exit.reason, observed.exit.exit_code) == (ExitReason.FAILED, 5)
        assert observed.exited_at is not None
        assert abs(observed.exited_at.timestamp() - exit_file.stat().st_mtime) < 1

    async def test_a_simulator_that_vanished_without_a_code_is_lost(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pids = await killed_controller(state_dir, [("a", SLEEP)])
        pgid = os.getpgid(pids["a"])
        os.killpg(pgid, signal.SIGKILL)  # wrapper included: no exit code is written
        await wait_for(lambda: not group_members(pgid), what="the group to die")

        backend = await open_backend()
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert exit_info.reason is ExitReason.LOST
        assert exit_info.message == "the process vanished while the controller was down"

    async def test_a_task_left_pending_starts_once_a_slot_is_free(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pids = await killed_controller(state_dir, [("a", SLEEP), ("b", SLEEP)], slots=1, running=1)
        os.kill(pids["a"], signal.SIGKILL)
        exit_file = state_dir / "local" / "jobs" / "sim" / "a" / "exit"
        await wait_for(exit_file.exists, what="the simulator's exit code")

        backend = await open_backend()
        assert (await task(backend, "a")).state is SimulatorState.EXITED
        await wait_for(lambda: running(backend, "b"))

    async def test_a_spawn_whose_pid_was_never_saved_is_found_again(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pid = await started_but_pid_unsaved(state_dir, open_backend)

        second = await open_backend()
        assert (await task(second, "a")).pid == pid
        assert len(wrappers_of(state_dir)) == 1
        await second.close(stop_simulators=True)
        assert not alive(pid)

    async def test_a_spawn_whose_pid_was_never_saved_and_that_vanished_is_lost(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        # Regression: the state is written in batches, so a controller killed right after
        # a start may leave the task "launching" with no pid. If its simulator then dies
        # (no exit code: the wrapper died with it), it had still run: lost, not started
        # again as if it never had (CI saw this as a flaky adoption test).
        pid = await started_but_pid_unsaved(state_dir, open_backend)
        pgid = os.getpgid(pid)
        os.killpg(pgid, signal.SIGKILL)
        await wait_for(lambda: not group_members(pgid), what="the group to die")

        second = await open_backend()
        observed = await task(second, "a")
        assert observed.exit is not None
        assert observed.exit.reason is ExitReason.LOST
        assert len(wrappers_of(state_dir)) == 0  # not started again

    async def test_a_stop_in_progress_is_finished_by_the_next_controller(
        self, open_backend: BackendFactory
    ) -> None:
        first = await open_backend()
        await pool_and_job(first)
        await add(first, IGNORES_SIGTERM, "a")
        await wait_for(lambda: printed(first, "a", b"ready"))
        pid = (await task(first, "a")).pid
        await first.execute(StopTask("sim", "a", 0, StopReason.SCALE_DOWN))
        await first.close(stop_simulators=False)
        assert pid is not None
        assert alive(pid)

        second = await open_backend()
        await wait_for(lambda: exited(second, "a"))
        exit_info = (await task(second, "a")).exit
        assert exit_info is not None
        assert (exit_info.reason, exit_info.exit_code) == (ExitReason.STOPPED, 137)
        assert not alive(pid)


SLEEP_ARGV = ("sleep", "300")


async def started_but_pid_unsaved(state_dir: Path, open_backend: BackendFactory) -> int:
    """Start simulator "a" and leave its record as if the controller had died between
    spawning it and saving its pid; its pid."""
    first = await open_backend()
    await pool_and_job(first)
    await add(first, SLEEP_ARGV, "a")
    await wait_for(lambda: running(first, "a"))
    pid = (await task(first, "a")).pid
    assert pid is not None
    await first.close(stop_simulators=False)
    state_file = state_dir / "local" / "state.json"
    state = json.loads(state_file.read_text())
    state["tasks"][0].update(phase="launching", pid=None, startTicks=None)
    state_file.write_text(json.dumps(state))
    return pid


class TestLock:
    async def test_a_second_controller_on_the_same_state_dir_fails_fast(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        await open_backend()
        started = time.monotonic()
        with pytest.raises(PermanentBackendError) as error:
            await LocalBackend(state_dir).open()
        assert time.monotonic() - started < 1
        assert error.value.code == "StateDirLocked"
        assert str(os.getpid()) in str(error.value)

    async def test_closing_releases_the_lock(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        first = await open_backend()
        await first.close()
        await open_backend()

    async def test_a_read_only_instance_works_beside_the_controller(
        self, state_dir: Path, backend: LocalBackend
    ) -> None:
        reader = LocalBackend(state_dir, read_only=True)
        await reader.open()

        async def reader_sees(state: SimulatorState | None) -> bool:
            jobs = (await reader.observe()).jobs
            tasks = jobs["sim"].tasks if "sim" in jobs else None
            return tasks == () if state is None else bool(tasks) and tasks[0].state is state

        try:  # the controller writes its state shortly after each change
            await wait_for(lambda: reader_sees(None), what="the reader to see the job")
            await add(backend, "echo hello", "a")
            await wait_for(lambda: exited(backend, "a"))
            await wait_for(lambda: reader_sees(SimulatorState.EXITED), what="the exit")
            chunk = await reader.read_output("sim", "a", OutputStream.STDOUT)
            assert chunk.data == b"hello\n"
            with pytest.raises(PermanentBackendError) as error:
                await add(reader, "true", "b")
            assert error.value.code == "ReadOnly"
        finally:
            await reader.close(stop_simulators=True)
        assert (await task(backend, "a")).state is SimulatorState.EXITED


class TestClose:
    async def test_closing_with_stop_simulators_leaves_no_process(
        self, state_dir: Path, backend: LocalBackend, open_backend: BackendFactory
    ) -> None:
        await add(backend, SLEEP_ARGV, "a")
        await add(backend, "sleep 300 & sleep 300", "b")
        await add(backend, IGNORES_SIGTERM, "c")
        await wait_for(lambda: printed(backend, "c", b"ready"))
        await wait_for(lambda: running(backend, "a", "b"))
        groups = [os.getpgid((await task(backend, i)).pid or 0) for i in "abc"]
        assert all(group_members(g) for g in groups)

        await backend.close(stop_simulators=True)
        assert [group_members(g) for g in groups] == [[], [], []]
        assert wrappers_of(state_dir) == []

        reopened = await open_backend()
        for task_id in "abc":
            exit_info = (await task(reopened, task_id)).exit
            assert exit_info is not None
            assert exit_info.reason is ExitReason.STOPPED

    async def test_closing_without_stopping_leaves_simulators_for_the_next_controller(
        self, backend: LocalBackend, open_backend: BackendFactory
    ) -> None:
        await add(backend, SLEEP_ARGV, "a")
        await wait_for(lambda: running(backend, "a"))
        pid = (await task(backend, "a")).pid
        await backend.close(stop_simulators=False)
        assert pid is not None
        assert alive(pid)

        reopened = await open_backend()
        observed = await task(reopened, "a")
        assert (observed.state, observed.pid) == (SimulatorState.RUNNING, pid)
        await reopened.close(stop_simulators=True)
        assert not alive(pid)

    async def test_a_closed_backend_refuses_work(self, backend: LocalBackend) -> None:
        await backend.close()
        with pytest.raises(PermanentBackendError) as error:
            await backend.observe()
        assert error.value.code == "NotOpen"
