"""Pools, jobs and task records on the local backend: what only it does with them
(processes stopped, files removed). The rules every backend shares are in
``tests/backends/contract``."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.backends import (
    OutputStream,
    PermanentBackendError,
    TransientBackendError,
)
from controller.backends.local import LocalBackend
from controller.planner import (
    DeleteJob,
    DeletePool,
    DeleteTask,
    ExitReason,
    JobState,
    SimulatorState,
)

from .conftest import BackendFactory, add, alive, pool_and_job, task, wait_for
from .test_tasks import IGNORES_SIGTERM, exited, printed, running


class TestPools:
    async def test_deleting_a_pool_stops_its_simulators_then_removes_it(
        self, backend: LocalBackend
    ) -> None:
        await add(backend, "sleep 30", "a")
        await wait_for(lambda: running(backend, "a"))
        await backend.execute(DeletePool(name="sims"))
        await wait_for(lambda: exited(backend, "a"))

        async def pool_gone() -> bool:
            return "sims" not in (await backend.observe()).pools

        await wait_for(pool_gone)
        exit_info = (await task(backend, "a")).exit
        assert exit_info is not None
        assert exit_info.reason is ExitReason.STOPPED
        await backend.execute(DeletePool(name="sims"))  # already gone: done


class TestJobs:
    async def test_deleting_a_job_shows_deleting_until_its_tasks_die_then_removes_all(
        self, backend: LocalBackend, state_dir: Path
    ) -> None:
        await add(backend, IGNORES_SIGTERM, "a")
        await add(backend, "exit 1", "b")
        await wait_for(lambda: printed(backend, "a", b"ready"))
        pid = (await task(backend, "a")).pid
        assert (state_dir / "local" / "jobs" / "sim" / "a" / "stdout.txt").exists()

        await backend.execute(DeleteJob(name="sim"))
        assert (await backend.observe()).jobs["sim"].state is JobState.DELETING
        with pytest.raises(TransientBackendError) as error:
            await add(backend, "true", "c")
        assert error.value.code == "JobBeingDeleted"

        async def job_gone() -> bool:
            return "sim" not in (await backend.observe()).jobs

        await wait_for(job_gone)
        assert pid is not None
        assert not alive(pid)
        assert not (state_dir / "local" / "jobs" / "sim").exists()
        with pytest.raises(PermanentBackendError):
            await backend.read_output("sim", "a", OutputStream.STDOUT)
        await backend.execute(DeleteJob(name="sim"))  # already gone: done


class TestDeleteTask:
    async def test_an_exited_task_is_forgotten_with_its_files(
        self, backend: LocalBackend, state_dir: Path
    ) -> None:
        await add(backend, "echo bye", "a")
        await wait_for(lambda: exited(backend, "a"))
        await backend.execute(DeleteTask(job="sim", task_id="a"))
        assert (await backend.observe()).jobs["sim"].tasks == ()
        assert not (state_dir / "local" / "jobs" / "sim" / "a").exists()

    async def test_a_live_task_is_left_alone(self, backend: LocalBackend) -> None:
        await add(backend, "sleep 30", "a")
        await wait_for(lambda: running(backend, "a"))
        await backend.execute(DeleteTask(job="sim", task_id="a"))
        assert (await task(backend, "a")).state is SimulatorState.RUNNING


class TestReadOutput:
    async def test_a_pending_task_has_empty_output(self, open_backend: BackendFactory) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=1)
        await add(backend, "sleep 30", "a", "b")
        chunk = await backend.read_output("sim", "b", OutputStream.STDOUT)
        assert (chunk.data, chunk.size) == (b"", 0)
