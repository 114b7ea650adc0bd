"""Faults that must never wedge the backend: starts that fail, records that cannot be
recovered, a state directory that cannot be written for a while.

Regressions (issue 7): a NUL byte made ``posix_spawn`` raise ``ValueError``, which left
the task launching forever and, after ``kill -9``, stopped the controller from starting
at all (item 4); a full disk or read-only state directory left tasks launching until a
restart (item 5).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

import pytest

from controller.backends import PermanentBackendError, TransientBackendError
from controller.backends.local import LocalBackend, ProcessRuntime
from controller.backends.local._runtime import Handle, Launch
from controller.planner import AddTasks, CreateJob, ExitReason, SimulatorState

from .conftest import (
    BackendFactory,
    alive,
    new_tasks,
    pool_and_job,
    task,
    template,
    wait_for,
)


async def state_of(backend: LocalBackend, task_id: str) -> SimulatorState:
    return (await task(backend, task_id)).state


async def exit_message(backend: LocalBackend, task_id: str) -> str:
    async def ended() -> bool:
        return await state_of(backend, task_id) is SimulatorState.EXITED

    await wait_for(ended, what=f"{task_id} to end")
    info = (await task(backend, task_id)).exit
    assert info is not None
    assert info.reason is ExitReason.FAILED
    return info.message


class Exploding(ProcessRuntime):
    """A runtime whose start fails with an exception nobody expected."""

    def spawn(self, launch: Launch) -> Handle:
        raise RuntimeError("the runtime broke")


class TestFailedStarts:
    @pytest.mark.parametrize(
        ("command", "env"),
        [
            pytest.param(("echo", "a\0b"), (), id="nul-in-argv"),
            pytest.param("echo a\0b", (), id="nul-in-command"),
            pytest.param(("true",), (("MODE", "x\0y"),), id="nul-in-env"),
        ],
    )
    async def test_a_value_the_os_cannot_pass_fails_the_task_with_a_reason(
        self,
        backend: LocalBackend,
        command: str | tuple[str, ...],
        env: tuple[tuple[str, str], ...],
    ) -> None:
        await backend.execute(AddTasks("sim", template(command, env=env), new_tasks("a")))
        message = await exit_message(backend, "a")
        assert "cannot be passed" in message
        assert "null byte" in message
        await backend.execute(AddTasks("sim", template("sleep 30"), new_tasks("b")))

        async def b_runs() -> bool:
            return await state_of(backend, "b") is SimulatorState.RUNNING

        await wait_for(b_runs, what="the next task to start as usual")

    async def test_any_exception_while_starting_fails_the_task(
        self, open_backend: BackendFactory
    ) -> None:
        backend = await open_backend(runtime=Exploding())
        await pool_and_job(backend)
        await backend.execute(AddTasks("sim", template("true"), new_tasks("a")))
        message = await exit_message(backend, "a")
        assert message == "could not start the simulator: RuntimeError: the runtime broke"


GOOD, BAD = "sim-s0-rab-a0", "sim-s1-rab-a0"


def edit_state(state_dir: Path, task_id: str, change: dict[str, object], *, copy: str = "") -> None:
    """Change one task record in the state file (or add ``task_id`` as a changed copy of
    ``copy``), as a damaged file or one written by an older controller would hold it."""
    path = state_dir / "local" / "state.json"
    state = json.loads(path.read_text())
    if copy:
        source = next(t for t in state["tasks"] if t["id"] == copy)
        record = json.loads(json.dumps(source)) | {"id": task_id, "slot": 1, "seq": 99}
        state["tasks"].append(record)
    else:
        record = next(t for t in state["tasks"] if t["id"] == task_id)
    for key, value in change.items():
        if key in ("command", "wallClockLimit"):
            record["template"][key] = value
        else:
            record[key] = value
    path.write_text(json.dumps(state))


async def killed_with(open_backend: BackendFactory, *ids: str) -> dict[str, int]:
    """A backend that started ``ids`` and was dropped without stopping them (kill -9)."""
    first = await open_backend()
    await pool_and_job(first)
    await first.execute(AddTasks("sim", template("sleep 300"), new_tasks(*ids)))

    async def all_run() -> bool:
        return all([(await task(first, i)).pid is not None for i in ids])

    await wait_for(all_run)
    pids = {i: (await task(first, i)).pid or 0 for i in ids}
    await first.close(stop_simulators=False)
    return pids


class TestRecordsThatCannotBeRecovered:
    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            pytest.param(
                {"phase": "launching", "pid": None, "command": ["echo", "a\0b"]},
                "null byte",
                id="launching-with-a-nul-byte",
            ),
            pytest.param(
                {"phase": "pending", "pid": None, "command": "echo a\0b"},
                "null byte",
                id="pending-with-a-nul-byte",
            ),
            pytest.param(
                {"phase": "running", "pid": None, "startTicks": None},
                "vanished",
                id="running-without-a-pid",
            ),
            pytest.param({"createdAt": None}, "could not be read", id="unreadable-record"),
        ],
    )
    async def test_a_bad_record_after_kill9_fails_alone_and_the_backend_opens(
        self,
        state_dir: Path,
        open_backend: BackendFactory,
        change: dict[str, object],
        reason: str,
    ) -> None:
        pids = await killed_with(open_backend, GOOD)
        edit_state(state_dir, BAD, change, copy=GOOD)

        second = await open_backend()  # on main: ValueError / AssertionError right here
        assert (await task(second, GOOD)).pid == pids[GOOD]
        info = (await task(second, BAD)).exit
        assert info is not None
        assert info.reason in (ExitReason.FAILED, ExitReason.LOST)
        assert reason in info.message
        assert alive(pids[GOOD])

    async def test_a_running_record_that_breaks_adoption_is_lost_and_its_process_stopped(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pids = await killed_with(open_backend, GOOD, BAD)
        edit_state(state_dir, BAD, {"wallClockLimit": "forever"})

        second = await open_backend()
        info = (await task(second, BAD)).exit
        assert info is not None
        assert info.reason is ExitReason.LOST
        assert "could not be taken over" in info.message
        assert "TypeError" in info.message
        await wait_for(lambda: not alive(pids[BAD]), what="the unwatched process to be stopped")
        assert (await task(second, GOOD)).pid == pids[GOOD]

    async def test_an_unreadable_record_of_a_running_simulator_is_adopted(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        pids = await killed_with(open_backend, GOOD, BAD)
        edit_state(state_dir, BAD, {"createdAt": None, "template": "?"})

        second = await open_backend()
        adopted = await task(second, BAD)
        assert (adopted.state, adopted.pid, adopted.slot) == (
            SimulatorState.RUNNING,
            pids[BAD],
            1,
        )

    async def test_a_lost_job_record_of_a_replacement_pool_comes_back_with_its_simulation(
        self, state_dir: Path, open_backend: BackendFactory
    ) -> None:
        """A job on a replacement pool is not named after its simulation: recovered from
        its running simulator, it is marked with the simulation the simulator was told,
        or the planner would take it for a job no spec defines and prune it."""
        first = await open_backend()
        await pool_and_job(first, pool="sims-g0123456789", job="other")
        await first.execute(CreateJob("sim-p0123456789", "sims-g0123456789", "sim"))
        moved = template("sleep 300")
        ids = new_tasks("sim-p0123456789-s0-rab-a0")
        await first.execute(AddTasks("sim-p0123456789", moved, ids, simulation="sim"))

        async def runs() -> bool:
            return (await task(first, ids[0].id, "sim-p0123456789")).pid is not None

        await wait_for(runs)
        await first.close(stop_simulators=False)
        path = state_dir / "local" / "state.json"
        state = json.loads(path.read_text())
        # the job record is lost; its simulator still runs
        state["jobs"] = [j for j in state["jobs"] if j["name"] != "sim-p0123456789"]
        path.write_text(json.dumps(state))

        second = await open_backend()
        job = (await second.observe()).jobs["sim-p0123456789"]
        assert (job.pool, job.simulation) == ("sims-g0123456789", "sim")


class FullDisk:
    """Makes every write of the state file fail with ENOSPC while ``full`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        original = Path.write_text

        def write_text(path: Path, data: str, *args: object, **kwargs: object) -> int:
            if self.full and path.name.startswith("state.json"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return original(path, data, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Path, "write_text", write_text)


class TestStateDirectoryFaults:
    async def test_a_full_disk_refuses_actions_until_the_state_can_be_written_again(
        self, state_dir: Path, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        disk = FullDisk(monkeypatch)
        with contextlib.suppress(TransientBackendError):  # main refused it, then stuck
            await backend.execute(AddTasks("sim", template("sleep 30"), new_tasks("a", "b")))
        await backend.observe()  # the snapshot still comes: nothing is wrong with it
        with pytest.raises(TransientBackendError) as error:
            await backend.execute(AddTasks("sim", template("sleep 30"), new_tasks("c")))
        assert error.value.code == "StateWriteFailed"
        assert "No space left on device" in str(error.value)
        assert str(state_dir) in str(error.value)
        assert "c" not in {t.id for t in (await backend.observe()).jobs["sim"].tasks}

        disk.full = False
        await backend.execute(AddTasks("sim", template("sleep 30"), new_tasks("c")))

        async def running() -> bool:
            tasks = (await backend.observe()).jobs["sim"].tasks
            return {t.id: t.state for t in tasks} == dict.fromkeys(
                ("a", "b", "c"), SimulatorState.RUNNING
            )

        await wait_for(running, what="the simulators to run")
        state = json.loads((state_dir / "local" / "state.json").read_text())
        assert {t["id"] for t in state["tasks"]} == {"a", "b", "c"}

    async def test_task_folders_that_cannot_be_made_wait_and_start_once_they_can(
        self, state_dir: Path, backend: LocalBackend
    ) -> None:
        jobs = state_dir / "local" / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        jobs.rename(state_dir / "jobs.away")
        jobs.write_text("not a folder")  # every task folder now fails (ENOTDIR)

        await backend.execute(AddTasks("sim", template("sleep 30"), new_tasks("a", "b")))

        failures: list[TransientBackendError] = []

        async def refused() -> bool:
            try:
                await backend.observe()
            except TransientBackendError as error:
                failures.append(error)
            return bool(failures)

        await wait_for(refused, what="the storage error to be reported")
        assert failures[0].code == "StateWriteFailed"
        assert "Not a directory" in str(failures[0])

        def phases() -> dict[str, str]:
            state = json.loads((state_dir / "local" / "state.json").read_text())
            return {t["id"]: t["phase"] for t in state["tasks"]}

        # they wait (never stuck launching), and the state file says so
        await wait_for(lambda: phases() == {"a": "pending", "b": "pending"}, what="pending")

        jobs.unlink()
        (state_dir / "jobs.away").rename(jobs)

        async def running() -> bool:
            try:
                states = [await state_of(backend, i) for i in ("a", "b")]
            except TransientBackendError:
                return False
            return states == [SimulatorState.RUNNING, SimulatorState.RUNNING]

        await wait_for(running, what="the waiting tasks to start by themselves")

    async def test_a_lost_lock_is_permanent_but_a_full_disk_is_not(
        self, state_dir: Path, backend: LocalBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await backend.observe()  # written: nothing waits to be written
        FullDisk(monkeypatch)
        await backend.execute(AddTasks("sim", template("true"), new_tasks("a")))
        await backend.observe()
        with pytest.raises(TransientBackendError):
            await backend.execute(AddTasks("sim", template("true"), new_tasks("b")))
        (state_dir / "local" / "lock").unlink()
        with pytest.raises(PermanentBackendError) as error:
            await backend.observe()
        assert error.value.code == "StateDirLost"
