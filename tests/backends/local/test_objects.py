"""Pools, jobs and task records on the local backend: Batch's object semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.backends import (
    Backend,
    OutputStream,
    PermanentBackendError,
    TransientBackendError,
)
from controller.backends.local import LocalBackend
from controller.planner import (
    CreateJob,
    CreatePool,
    DeleteJob,
    DeletePool,
    DeleteTask,
    ExitReason,
    JobState,
    PoolConfig,
    PoolState,
    ResizePool,
    SimulatorState,
)
from controller.spec import PoolSpec

from .conftest import BackendFactory, add, alive, pool_and_job, task, wait_for
from .test_tasks import IGNORES_SIGTERM, exited, printed, running


class TestPools:
    async def test_a_pool_has_its_nodes_at_once_and_is_owned(self, backend: LocalBackend) -> None:
        pool = (await backend.observe()).pools["sims"]
        assert pool.owned
        assert pool.state is PoolState.STEADY
        assert (pool.target_dedicated, pool.current_dedicated) == (1, 1)
        assert pool.config.task_slots_per_node == 4

    async def test_creating_an_existing_pool_changes_nothing(self, backend: LocalBackend) -> None:
        spec = PoolSpec(vm_size="other", task_slots_per_node=9)
        await backend.execute(CreatePool(name="sims", spec=spec, dedicated=5, spot=5))
        pool = (await backend.observe()).pools["sims"]
        assert (pool.target_dedicated, pool.target_spot) == (1, 0)
        assert pool.config != PoolConfig.of(spec)

    async def test_resizing_sets_targets_and_current_counts(self, backend: LocalBackend) -> None:
        await backend.execute(ResizePool(name="sims", dedicated=0, spot=3))
        pool = (await backend.observe()).pools["sims"]
        assert (pool.target_spot, pool.current_spot, pool.current_dedicated) == (3, 3, 0)

    async def test_resizing_an_unknown_pool_is_pool_not_found(self, backend: LocalBackend) -> None:
        with pytest.raises(PermanentBackendError) as error:
            await backend.execute(ResizePool(name="nope", dedicated=1, spot=0))
        assert error.value.code == "PoolNotFound"

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
    async def test_creating_an_existing_job_changes_nothing(self, backend: LocalBackend) -> None:
        await backend.execute(CreateJob(name="sim", pool="elsewhere"))
        job = (await backend.observe()).jobs["sim"]
        assert (job.pool, job.owned, job.state) == ("sims", True, JobState.ACTIVE)

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
    async def test_offsets_count_from_the_start_or_from_the_end(
        self, backend: LocalBackend
    ) -> None:
        await add(backend, "printf 0123456789; printf oops >&2", "a")
        await wait_for(lambda: exited(backend, "a"))
        whole = await backend.read_output("sim", "a", OutputStream.STDOUT)
        assert (whole.data, whole.offset, whole.size) == (b"0123456789", 0, 10)
        last = await backend.read_output("sim", "a", OutputStream.STDOUT, offset=-3)
        assert (last.data, last.offset) == (b"789", 7)
        middle = await backend.read_output("sim", "a", OutputStream.STDOUT, offset=2, length=3)
        assert (middle.data, middle.offset) == (b"234", 2)
        err = await backend.read_output("sim", "a", OutputStream.STDERR)
        assert err.data == b"oops"

    async def test_a_pending_task_has_empty_output(self, open_backend: BackendFactory) -> None:
        backend = await open_backend()
        await pool_and_job(backend, slots=1)
        await add(backend, "sleep 30", "a", "b")
        chunk = await backend.read_output("sim", "b", OutputStream.STDOUT)
        assert (chunk.data, chunk.size) == (b"", 0)

    async def test_an_unknown_task_is_task_not_found(self, backend: LocalBackend) -> None:
        with pytest.raises(PermanentBackendError) as error:
            await backend.read_output("sim", "nope", OutputStream.STDOUT)
        assert error.value.code == "TaskNotFound"


class TestProtocol:
    def test_it_is_a_backend_named_local(self, state_dir: Path) -> None:
        backend: Backend = LocalBackend(state_dir)  # mypy checks the structure here
        assert isinstance(backend, Backend)
        assert backend.name == "local"
